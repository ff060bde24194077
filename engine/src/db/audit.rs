//! The audit log's table: append and read, nothing else.
//!
//! `audit_event` is append-only by construction (database triggers refuse UPDATE and DELETE),
//! so a compromised or buggy caller cannot rewrite history through Steward. Functions take any
//! executor, so an event is written in the same transaction as the change it describes.

pub mod chain;
pub mod filter;

pub use filter::Filter;

use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, AnyPool, Executor, FromRow};

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

    /// `ok`, `refused` or `failed`; anything else is `None`.
    pub fn from_name(s: &str) -> Option<Outcome> {
        [Outcome::Ok, Outcome::Refused, Outcome::Failed]
            .into_iter()
            .find(|outcome| outcome.as_str() == s)
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
    /// The environment the event is about; when `None`, taken from the detail's
    /// `"environment"` or, for `maintenance.*` and `schedule.*`, from the target.
    pub environment: Option<&'a str>,
}

impl<'a> NewEvent<'a> {
    pub fn in_environment(mut self, environment: &'a str) -> Self {
        self.environment = Some(environment);
        self
    }

    /// What [`NewEvent::environment`] says, or what the detail and target say.
    fn environment(&self) -> Option<&str> {
        if let Some(environment) = self.environment {
            return Some(environment);
        }
        if let Some(environment) = self.detail.get("environment").and_then(|e| e.as_str()) {
            return Some(environment);
        }
        let target = self.target?;
        if self.action.starts_with("maintenance.") {
            Some(target)
        } else if self.action.starts_with("schedule.") {
            target.split_once('/').map(|(environment, _)| environment)
        } else {
            None
        }
    }

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
    pub environment: Option<String>,
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
    environment: Option<String>,
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
            environment: row.environment,
            outcome: Outcome::parse(&row.outcome),
            // Written by `record` from a `Value`, so it parses; an unreadable row still shows.
            detail: serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::String(row.detail)),
        }
    }
}

/// How often a writer that lost the race for the chain's head reads the new head and tries
/// again before giving up (each loss means another event was written meanwhile).
const CHAIN_ATTEMPTS: usize = 1_000;

/// Appends one event to the chain and returns its id.
///
/// The event's id is one past the largest and its `prev_id` the head's id; the primary key and the
/// unique `prev_id` make a concurrent writer that read the same head insert nothing
/// (`ON CONFLICT DO NOTHING`), so it reads the new head and tries again — on SQLite and on
/// PostgreSQL, from one instance or several, the chain stays one line. Inside a caller's
/// transaction on PostgreSQL a competing writer waits for that transaction to end.
pub async fn record(writer: impl Into<Writer<'_>>, event: &NewEvent<'_>) -> sqlx::Result<i64> {
    match writer.into() {
        Writer::Pool(pool) => append(&mut *pool.acquire().await?, event).await,
        Writer::Connection(conn) => append(conn, event).await,
    }
}

/// Where [`record`] writes: a pooled connection of its own, or the caller's connection or
/// transaction (`&mut *tx`), so that the event commits with the change it describes.
pub enum Writer<'a> {
    Pool(&'a AnyPool),
    Connection(&'a mut AnyConnection),
}

impl<'a> From<&'a AnyPool> for Writer<'a> {
    fn from(pool: &'a AnyPool) -> Self {
        Writer::Pool(pool)
    }
}

impl<'a> From<&'a mut AnyConnection> for Writer<'a> {
    fn from(conn: &'a mut AnyConnection) -> Self {
        Writer::Connection(conn)
    }
}

async fn append(conn: &mut AnyConnection, event: &NewEvent<'_>) -> sqlx::Result<i64> {
    let mut sealed = chain::Sealed {
        id: 0,
        prev_id: 0,
        at: now_ms(),
        actor: event.actor.map(str::to_string),
        client_ip: event.client_ip.map(str::to_string),
        action: event.action.to_string(),
        target: event.target.map(str::to_string),
        environment: event.environment().map(str::to_string),
        outcome: event.outcome.as_str().to_string(),
        detail: event.detail.to_string(),
    };
    for _ in 0..CHAIN_ATTEMPTS {
        let (id, prev_id, prev_hash) = chain::head_for_append(&mut *conn).await?;
        sealed.id = id;
        sealed.prev_id = prev_id;
        let hash = sealed.hash(&prev_hash);
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO audit_event (id, prev_id, at, actor, client_ip, action, target, environment, outcome, detail, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(sealed.id)
        .bind(sealed.prev_id)
        .bind(sealed.at)
        .bind(&sealed.actor)
        .bind(&sealed.client_ip)
        .bind(&sealed.action)
        .bind(&sealed.target)
        .bind(&sealed.environment)
        .bind(&sealed.outcome)
        .bind(&sealed.detail)
        .bind(&hash)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((id,)) = inserted {
            return Ok(id);
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "the audit log's head moved {CHAIN_ATTEMPTS} times while an event was being recorded"
    )))
}

const EVENT_COLUMNS: &str = "id, at, actor, client_ip, action, target, environment, outcome, detail";

/// The newest events first, `limit` of them, older than `before_id` when paging.
pub async fn recent<'e>(
    executor: impl Executor<'e, Database = Any>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM audit_event WHERE id < $1 ORDER BY id DESC LIMIT $2"
    ))
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
            environment: None,
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

    pub fn event<'a>(&'a self, action: &'a str, target: Option<&'a str>, outcome: Outcome) -> NewEvent<'a> {
        NewEvent {
            actor: self.username.as_deref(),
            client_ip: self.client_ip.as_deref(),
            action,
            target,
            outcome,
            detail: serde_json::json!({}),
            environment: None,
        }
    }
}
