//! The audit log's table: append and read, nothing else.
//!
//! `audit_event` is append-only by construction (database triggers refuse UPDATE and DELETE),
//! so a compromised or buggy caller cannot rewrite history through Steward. Functions take any
//! executor, so an event is written in the same transaction as the change it describes.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Executor, FromRow};

use crate::db::now_ms;

/// What happened to the action being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Stopped by a rule before anything changed (wrong password, busy environment, …).
    Refused,
    /// Attempted, and went wrong.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "ok" => Outcome::Ok,
            "refused" => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }
}

/// An event to record. `at` is set on insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent<'a> {
    pub actor: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub outcome: Outcome,
    pub detail: serde_json::Value,
}

impl NewEvent<'_> {
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Why the outcome is what it is, e.g. "wrong password".
    pub fn with_reason(self, reason: &str) -> Self {
        self.with_detail(serde_json::json!({ "reason": reason }))
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub at_ms: i64,
    pub actor: Option<String>,
    pub client_ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub detail: serde_json::Value,
}

#[derive(FromRow)]
struct EventRow {
    id: i64,
    at: i64,
    actor: Option<String>,
    client_ip: Option<String>,
    action: String,
    target: Option<String>,
    outcome: String,
    detail: String,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Self {
        Event {
            id: row.id,
            at_ms: row.at,
            actor: row.actor,
            client_ip: row.client_ip,
            action: row.action,
            target: row.target,
            outcome: Outcome::parse(&row.outcome),
            // Written by `record` from a `Value`, so it parses; an unreadable row still shows.
            detail: serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::String(row.detail)),
        }
    }
}

/// Appends one event and returns its id.
pub async fn record<'e>(executor: impl Executor<'e, Database = Any>, event: &NewEvent<'_>) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO audit_event (at, actor, client_ip, action, target, outcome, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(now_ms())
    .bind(event.actor)
    .bind(event.client_ip)
    .bind(event.action)
    .bind(event.target)
    .bind(event.outcome.as_str())
    .bind(event.detail.to_string())
    .fetch_one(executor)
    .await?;
    Ok(id)
}

/// The newest events first, `limit` of them, older than `before_id` when paging.
pub async fn recent<'e>(
    executor: impl Executor<'e, Database = Any>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT id, at, actor, client_ip, action, target, outcome, detail FROM audit_event
         WHERE id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before_id.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(Event::from).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn login(actor: &str, outcome: Outcome) -> NewEvent<'_> {
        NewEvent {
            actor: Some(actor),
            client_ip: Some("127.0.0.1"),
            action: "login",
            target: None,
            outcome,
            detail: json!({"reason": "test"}),
        }
    }

    crate::db_tests! {
        async fn events_come_back_newest_first_and_page(db) {
            let first = record(db.pool(), &login("alice", Outcome::Ok)).await.unwrap();
            let second = record(db.pool(), &login("bob", Outcome::Refused)).await.unwrap();
            assert!(second > first);

            let events = recent(db.pool(), None, 10).await.unwrap();
            assert_eq!(events.len(), 2);
            assert_eq!(events[0].actor.as_deref(), Some("bob"));
            assert_eq!(events[0].outcome, Outcome::Refused);
            assert_eq!(events[0].detail, json!({"reason": "test"}));
            assert!(events[0].at_ms > 1_700_000_000_000);

            let older = recent(db.pool(), Some(second), 10).await.unwrap();
            assert_eq!(older.len(), 1);
            assert_eq!(older[0].id, first);
        }

        async fn the_log_cannot_be_rewritten(db) {
            let id = record(db.pool(), &login("alice", Outcome::Ok)).await.unwrap();
            let update = sqlx::query("UPDATE audit_event SET actor = 'mallory' WHERE id = $1")
                .bind(id).execute(db.pool()).await;
            assert!(update.is_err(), "an UPDATE must be refused");
            let delete = sqlx::query("DELETE FROM audit_event WHERE id = $1").bind(id).execute(db.pool()).await;
            assert!(delete.is_err(), "a DELETE must be refused");
            assert_eq!(recent(db.pool(), None, 10).await.unwrap()[0].actor.as_deref(), Some("alice"));
        }

        async fn an_event_in_a_rolled_back_transaction_is_not_kept(db) {
            let mut tx = db.pool().begin().await.unwrap();
            record(&mut *tx, &login("carol", Outcome::Ok)).await.unwrap();
            tx.rollback().await.unwrap();
            assert!(recent(db.pool(), None, 10).await.unwrap().is_empty());
        }
    }
}

/// Who is acting, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The signed-in username; `None` for the command line run by the machine's operator
    /// (recorded as `cli`) or an anonymous client.
    pub username: Option<String>,
    pub client_ip: Option<String>,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor {
            username: Some("cli".into()),
            client_ip: None,
        }
    }

    pub(crate) fn event<'a>(&'a self, action: &'a str, target: Option<&'a str>, outcome: Outcome) -> NewEvent<'a> {
        NewEvent {
            actor: self.username.as_deref(),
            client_ip: self.client_ip.as_deref(),
            action,
            target,
            outcome,
            detail: serde_json::json!({}),
        }
    }
}
