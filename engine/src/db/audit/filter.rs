//! Reading the audit log through a filter: a page of the newest matches before a cursor, or
//! every match streamed oldest first for an export.
//!
//! Each condition has an index that starts with its column and ends with `id` (migration 0010),
//! so "the newest 100 of alice's events" walks alice's part of one index backwards and stops
//! after 100 rows, at any size of the log. The time range uses `at`'s index. Text in the target
//! or the detail is a substring search; it stops as soon as a page is full, and the bench
//! (`bench/src/audit.rs`) reports what a rare word costs.

use futures::{SinkExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Executor};

use super::{EVENT_COLUMNS, Event, EventRow, Outcome};
use crate::db::{Backend, Db};

/// What to look for. Every field narrows; the default matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// From this time (Unix milliseconds), inclusive.
    pub from_ms: Option<i64>,
    /// Until this time, exclusive.
    pub until_ms: Option<i64>,
    /// Who acted: a username, `cli`, or `token:NAME`.
    pub actor: Option<String>,
    /// An action (`backup.pin`) or a family of them (`restore.*`, or `restore`).
    pub action: Option<String>,
    pub environment: Option<String>,
    pub outcome: Option<Outcome>,
    /// What the event is about, exactly: a job id, a backup id, a username.
    pub target: Option<String>,
    /// Text anywhere in the target or the detail, ignoring case for ASCII letters.
    pub text: Option<String>,
    /// Only events up to this id: an export ends where the log stood when it was asked for.
    pub through_id: Option<i64>,
}

/// A value bound to a `$n` placeholder.
enum Value {
    Int(i64),
    Text(String),
}

impl Filter {
    /// The `WHERE` conditions (joined by AND, `1 = 1` when there are none) and their values,
    /// numbered from `$1`.
    fn conditions(&self, backend: Backend) -> (String, Vec<Value>) {
        let mut sql = vec!["1 = 1".to_string()];
        let mut values = Vec::new();
        // Each `?1`, `?2` … of a condition becomes the `$n` of the first, second … of its values.
        let mut push_all = |condition: &str, new: Vec<Value>| {
            let mut condition = condition.to_string();
            for (k, value) in new.into_iter().enumerate() {
                values.push(value);
                condition = condition.replace(&format!("?{}", k + 1), &format!("${}", values.len()));
            }
            sql.push(condition);
        };
        if let Some(from) = self.from_ms {
            push_all("at >= ?1", vec![Value::Int(from)]);
        }
        if let Some(until) = self.until_ms {
            push_all("at < ?1", vec![Value::Int(until)]);
        }
        if let Some(actor) = non_empty(&self.actor) {
            push_all("actor = ?1", vec![Value::Text(actor.to_string())]);
        }
        if let Some(action) = non_empty(&self.action) {
            match (family(action), backend) {
                // SQLite's LIKE cannot use an index on a column of the default collation; the
                // same prefix as a range of bytes can ('/' follows '.').
                (Some(family), Backend::Sqlite) => push_all(
                    "(action = ?1 OR (action >= ?2 AND action < ?3))",
                    vec![
                        Value::Text(family.to_string()),
                        Value::Text(format!("{family}.")),
                        Value::Text(format!("{family}/")),
                    ],
                ),
                // PostgreSQL compares text by the database's locale, which may ignore
                // punctuation; LIKE walks the `text_pattern_ops` index byte-wise.
                (Some(family), Backend::Postgres) => push_all(
                    "(action = ?1 OR action LIKE ?2 ESCAPE '\\')",
                    vec![
                        Value::Text(family.to_string()),
                        Value::Text(format!("{}.%", escape_like(family))),
                    ],
                ),
                (None, _) => push_all("action = ?1", vec![Value::Text(action.to_string())]),
            }
        }
        if let Some(environment) = non_empty(&self.environment) {
            push_all("environment = ?1", vec![Value::Text(environment.to_string())]);
        }
        if let Some(outcome) = self.outcome {
            push_all("outcome = ?1", vec![Value::Text(outcome.as_str().to_string())]);
        }
        if let Some(target) = non_empty(&self.target) {
            push_all("target = ?1", vec![Value::Text(target.to_string())]);
        }
        if let Some(through) = self.through_id {
            push_all("id <= ?1", vec![Value::Int(through)]);
        }
        if let Some(text) = non_empty(&self.text) {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            // `?1` twice: the target and the detail are searched for the one value.
            push_all(
                "(LOWER(target) LIKE ?1 ESCAPE '\\' OR LOWER(detail) LIKE ?1 ESCAPE '\\')",
                vec![Value::Text(pattern)],
            );
        }
        (sql.join(" AND "), values)
    }

    /// Whether any condition is set.
    pub fn is_empty(&self) -> bool {
        self.conditions(Backend::Sqlite).1.is_empty()
    }

    fn has_text(&self) -> bool {
        non_empty(&self.text).is_some()
    }
}

/// `restore.*`, `restore.` and `restore` (no dot) name the family `restore` — the action of
/// that name, if any (`login`), and every `restore.…`; `restore.start` names one action.
fn family(action: &str) -> Option<&str> {
    if let Some(family) = action.strip_suffix(".*").or_else(|| action.strip_suffix('.')) {
        return Some(family);
    }
    (!action.contains('.')).then_some(action)
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `%`, `_` and `\` match themselves.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

fn bind_all<'q>(
    mut query: sqlx::query::QueryAs<'q, Any, EventRow, sqlx::any::AnyArguments<'q>>,
    values: Vec<Value>,
) -> sqlx::query::QueryAs<'q, Any, EventRow, sqlx::any::AnyArguments<'q>> {
    for value in values {
        query = match value {
            Value::Int(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
        };
    }
    query
}

/// How many events a text search reads per page at most. A word that is in almost no event
/// would otherwise read the whole log for one page (0.7 s at a million events on SQLite, 1 s on
/// PostgreSQL); the page then says how far back it looked and offers to go on from there.
/// Sized from `bench/` so that a page stays under 50 ms: PostgreSQL's `LOWER … LIKE` reads
/// rows at about half SQLite's pace.
pub fn text_window(backend: Backend) -> i64 {
    match backend {
        Backend::Sqlite => 40_000,
        Backend::Postgres => 20_000,
    }
}

/// A page of matches, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub events: Vec<Event>,
    /// A text search that read its [`text_window`] before the oldest event: the id it looked
    /// back to (exclusive). The next page goes on from there (`before_id`).
    pub searched_to: Option<i64>,
}

/// The statement of [`page`] and its values, and the text window's lower bound.
async fn page_query(
    db: &Db,
    filter: &Filter,
    before_id: Option<i64>,
    limit: i64,
    text_window: i64,
) -> sqlx::Result<(String, Vec<Value>, Option<i64>)> {
    let (conditions, mut values) = filter.conditions(db.backend());
    let before = match before_id {
        Some(id) => id,
        None => newest_id(db.pool()).await? + 1,
    };
    values.push(Value::Int(before));
    let before_n = values.len();
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM audit_event WHERE {conditions} AND id < ${before_n}");
    let window = (filter.has_text() && before - text_window > 1).then_some(before - text_window);
    if let Some(lower) = window {
        values.push(Value::Int(lower));
        sql.push_str(&format!(" AND id >= ${}", values.len()));
    }
    values.push(Value::Int(limit));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", values.len()));
    Ok((sql, values, window))
}

/// The newest `limit` events that match, older than event `before_id` when paging.
pub async fn page(db: &Db, filter: &Filter, before_id: Option<i64>, limit: i64) -> sqlx::Result<Page> {
    page_in_window(db, filter, before_id, limit, text_window(db.backend())).await
}

async fn page_in_window(
    db: &Db,
    filter: &Filter,
    before_id: Option<i64>,
    limit: i64,
    text_window: i64,
) -> sqlx::Result<Page> {
    let (sql, values, window) = page_query(db, filter, before_id, limit, text_window).await?;
    let rows = bind_all(sqlx::query_as(&sql), values).fetch_all(db.pool()).await?;
    let full = rows.len() as i64 >= limit;
    Ok(Page {
        events: rows.into_iter().map(Event::from).collect(),
        searched_to: window.filter(|_| !full),
    })
}

/// The database's plan for [`page`] (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL),
/// one line per step: how the indexes were chosen, and what the bench reports.
pub async fn explain(db: &Db, filter: &Filter, before_id: Option<i64>, limit: i64) -> sqlx::Result<Vec<String>> {
    use sqlx::Row;
    let (sql, values, _) = page_query(db, filter, before_id, limit, text_window(db.backend())).await?;
    let explain = match db.backend() {
        Backend::Sqlite => "EXPLAIN QUERY PLAN",
        Backend::Postgres => "EXPLAIN",
    };
    let sql = format!("{explain} {sql}");
    let mut query = sqlx::query(&sql);
    for value in values {
        query = match value {
            Value::Int(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
        };
    }
    let rows = query.fetch_all(db.pool()).await?;
    // SQLite: (id, parent, notused, detail); PostgreSQL: one text column.
    rows.iter().map(|row| row.try_get::<String, _>(row.len() - 1)).collect()
}

/// The id of the newest event (0 when the log is empty).
pub async fn newest_id<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<i64> {
    let (id,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM audit_event")
        .fetch_one(executor)
        .await?;
    Ok(id.unwrap_or(0))
}

/// Every event that matches, oldest first, as the database hands them over: a task reads them
/// into a channel of a few dozen rows, so an export of a million holds a few dozen at a time and
/// goes no faster than its reader. Dropping the stream stops the task.
pub fn stream(db: &Db, filter: &Filter) -> impl Stream<Item = sqlx::Result<Event>> + Send + 'static {
    let pool = db.pool().clone();
    let (conditions, values) = filter.conditions(db.backend());
    let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_event WHERE {conditions} ORDER BY id");
    let (mut sender, receiver) = futures::channel::mpsc::channel(64);
    tokio::spawn(async move {
        let mut rows = bind_all(sqlx::query_as(&sql), values).fetch(&pool);
        while let Some(row) = rows.next().await {
            let failed = row.is_err();
            if sender.send(row.map(Event::from)).await.is_err() || failed {
                break;
            }
        }
    });
    receiver
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;
    use serde_json::json;

    use super::*;
    use crate::db::audit::{NewEvent, record};

    async fn seed(db: &crate::db::Db) {
        let events = [
            ("alice", "login", Some("alice"), Outcome::Ok, json!({})),
            (
                "bob",
                "restore.request",
                Some("prod-1"),
                Outcome::Refused,
                json!({"environment": "prod", "reason": "Busy: backup #4"}),
            ),
            (
                "alice",
                "restore.start",
                Some("12"),
                Outcome::Ok,
                json!({"environment": "prod"}),
            ),
            (
                "alice",
                "restore.finish",
                Some("12"),
                Outcome::Failed,
                json!({"environment": "prod", "error": "50%_done"}),
            ),
            (
                "carol",
                "backup.pin",
                Some("test-3"),
                Outcome::Ok,
                json!({"environment": "test"}),
            ),
            ("alice", "restores.custom", Some("x"), Outcome::Ok, json!({})),
        ];
        for (actor, action, target, outcome, detail) in events {
            let event = NewEvent {
                actor: Some(actor),
                client_ip: None,
                action,
                target,
                outcome,
                detail,
                environment: None,
            };
            record(db.pool(), &event).await.unwrap();
        }
    }

    async fn actions(db: &crate::db::Db, filter: Filter) -> Vec<String> {
        page(db, &filter, None, 100)
            .await
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    crate::db_tests! {
        async fn each_filter_narrows_newest_first(db) {
            seed(db).await;
            assert_eq!(actions(db, Filter::default()).await.len(), 6);
            let by = |f: fn(&mut Filter)| { let mut filter = Filter::default(); f(&mut filter); filter };
            assert_eq!(actions(db, by(|f| f.actor = Some("alice".into()))).await,
                ["restores.custom", "restore.finish", "restore.start", "login"]);
            assert_eq!(actions(db, by(|f| f.action = Some("restore.*".into()))).await,
                ["restore.finish", "restore.start", "restore.request"], "a family, not restores.*");
            assert_eq!(actions(db, by(|f| f.action = Some("restore".into()))).await.len(), 3);
            assert_eq!(actions(db, by(|f| f.action = Some("login".into()))).await, ["login"], "the action named like the family");
            assert_eq!(actions(db, by(|f| f.action = Some("restore.start".into()))).await, ["restore.start"]);
            assert_eq!(actions(db, by(|f| f.environment = Some("prod".into()))).await.len(), 3);
            assert_eq!(actions(db, by(|f| f.outcome = Some(Outcome::Refused))).await, ["restore.request"]);
            assert_eq!(actions(db, by(|f| f.target = Some("12".into()))).await, ["restore.finish", "restore.start"]);
            assert_eq!(actions(db, by(|f| f.text = Some("BUSY".into()))).await, ["restore.request"], "case-insensitive");
            assert_eq!(actions(db, by(|f| f.text = Some("50%_".into()))).await, ["restore.finish"], "% and _ are literal");
            assert_eq!(actions(db, by(|f| f.text = Some("0%x".into()))).await.len(), 0);
            let all = page(db, &Filter::default(), None, 100).await.unwrap().events;
            let (newest, oldest) = (all[0].at_ms, all[5].at_ms);
            assert_eq!(actions(db, by(|f| f.from_ms = Some(i64::MAX))).await.len(), 0);
            let mut range = Filter { from_ms: Some(oldest), until_ms: Some(newest + 1), ..Filter::default() };
            assert_eq!(actions(db, range.clone()).await.len(), 6);
            range.until_ms = Some(oldest);
            assert_eq!(actions(db, range).await.len(), 0, "until is exclusive");
            let both = Filter { actor: Some("alice".into()), environment: Some("prod".into()), outcome: Some(Outcome::Failed), ..Filter::default() };
            assert_eq!(actions(db, both).await, ["restore.finish"]);
        }

        async fn a_text_search_reads_a_window_at_a_time_and_says_how_far(db) {
            seed(db).await;
            seed(db).await;
            // 12 events; "busy" is in events 2 and 8; a window of 3 events.
            let busy = Filter { text: Some("busy".into()), ..Filter::default() };
            let first = page_in_window(db, &busy, None, 10, 3).await.unwrap();
            assert_eq!(first.events.len(), 0);
            assert_eq!(first.searched_to, Some(10), "read 12, 11, 10");
            let second = page_in_window(db, &busy, first.searched_to, 10, 3).await.unwrap();
            assert_eq!(second.events.iter().map(|e| e.id).collect::<Vec<_>>(), [8]);
            assert_eq!(second.searched_to, Some(7));
            let last = page_in_window(db, &busy, Some(3), 10, 3).await.unwrap();
            assert_eq!(last.events.iter().map(|e| e.id).collect::<Vec<_>>(), [2]);
            assert_eq!(last.searched_to, None, "the window reached the first event");
            let full = page_in_window(db, &busy, None, 1, 100).await.unwrap();
            assert_eq!((full.events.len(), full.searched_to), (1, None));
        }

        async fn pages_follow_the_cursor_and_the_export_streams_oldest_first(db) {
            seed(db).await;
            let filter = Filter { actor: Some("alice".into()), ..Filter::default() };
            let first = page(db, &filter, None, 3).await.unwrap().events;
            assert_eq!(first.len(), 3);
            let rest = page(db, &filter, Some(first[2].id), 3).await.unwrap().events;
            assert_eq!(rest.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["login"]);
            let streamed: Vec<Event> = stream(db, &filter).try_collect().await.unwrap();
            assert_eq!(streamed.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
                ["login", "restore.start", "restore.finish", "restores.custom"]);
        }
    }

    #[test]
    fn families_and_empty_filters() {
        assert_eq!(family("restore.*"), Some("restore"));
        assert_eq!(family("restore"), Some("restore"));
        assert_eq!(family("restore.start"), None);
        assert!(
            Filter {
                actor: Some("  ".into()),
                ..Filter::default()
            }
            .is_empty()
        );
        assert!(
            !Filter {
                outcome: Some(Outcome::Ok),
                ..Filter::default()
            }
            .is_empty()
        );
    }
}
