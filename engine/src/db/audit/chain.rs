//! The audit log's hash chain: each event's `hash` is
//! `hex(SHA-256(previous hash ‖ canonical form))`, the first event's previous hash being
//! [`GENESIS`], and its `prev_id` names the event before it.
//!
//! The canonical form is the compact JSON array
//! `[id, prev_id, at, actor, client_ip, action, target, environment, outcome, detail]` with
//! `detail` as the text stored in the row, so anyone can re-check the chain from a database dump
//! with a few lines of any language (the README shows one in Python). A change to any column
//! breaks that event's hash; a removed event leaves its successor naming a predecessor that is
//! gone; an event inserted by hand has no hash or one the chain does not continue.
//!
//! What the chain cannot show by itself is a truncated tail, or a tail extended by someone who
//! recomputed hashes: for that the head (last id + hash) goes to Steward's log every hour and on
//! every verification, and each verification is compared with the head the previous one saw.

use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyConnection, Executor, FromRow};

use crate::db::{Backend, Db, now_ms};

/// The "previous hash" of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The columns of one event that its hash covers.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Sealed {
    pub id: i64,
    pub prev_id: i64,
    pub at: i64,
    pub actor: Option<String>,
    pub client_ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub environment: Option<String>,
    pub outcome: String,
    pub detail: String,
}

impl Sealed {
    pub fn canonical(&self) -> String {
        serde_json::json!([
            self.id,
            self.prev_id,
            self.at,
            self.actor,
            self.client_ip,
            self.action,
            self.target,
            self.environment,
            self.outcome,
            self.detail,
        ])
        .to_string()
    }

    /// This event's hash when the event before it has `prev_hash`.
    pub fn hash(&self, prev_hash: &str) -> String {
        let mut sha = Sha256::new();
        sha.update(prev_hash.as_bytes());
        sha.update(self.canonical().as_bytes());
        hex::encode(sha.finalize())
    }
}

/// Where the next event goes: its id (one past the largest) and the event it follows (the
/// newest event that is part of the chain, and its hash).
pub(super) async fn head_for_append(conn: &mut AnyConnection) -> sqlx::Result<(i64, i64, String)> {
    let (max_id,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM audit_event")
        .fetch_one(&mut *conn)
        .await?;
    let Some(max_id) = max_id else {
        return Ok((1, 0, GENESIS.to_string()));
    };
    // Rows without a hash after the head were written outside Steward; `verify` names them, and
    // the chain goes on from the last event Steward wrote.
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT id, hash FROM audit_event WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    match head {
        Some((prev_id, prev_hash)) => Ok((max_id + 1, prev_id, prev_hash)),
        None => Err(sqlx::Error::Protocol(
            "the audit log's events have no hash chain yet; `steward migrate` gives them one".into(),
        )),
    }
}

/// Gives the events recorded before the chain existed (a prefix of the log with no hash) their
/// `prev_id` and `hash`, in id order, in one transaction that keeps writers out meanwhile.
/// Returns how many it chained; 0 at once when the first event has a hash already.
pub async fn backfill(db: &Db) -> sqlx::Result<u64> {
    let first: Option<(Option<String>,)> = sqlx::query_as("SELECT hash FROM audit_event ORDER BY id LIMIT 1")
        .fetch_optional(db.pool())
        .await?;
    if !matches!(first, Some((None,))) {
        return Ok(0);
    }
    let mut tx = db.begin_write().await?;
    if db.backend() == Backend::Postgres {
        // Blocks inserts, and a second instance's backfill, until this one commits.
        tx.execute("LOCK TABLE audit_event IN SHARE ROW EXCLUSIVE MODE").await?;
    }
    let (end,): (Option<i64>,) = sqlx::query_as("SELECT MIN(id) FROM audit_event WHERE hash IS NOT NULL")
        .fetch_one(&mut *tx)
        .await?;
    let end = end.unwrap_or(i64::MAX);
    let (mut prev_id, mut prev_hash) = (0_i64, GENESIS.to_string());
    let mut chained = 0;
    loop {
        let batch: Vec<Sealed> = sqlx::query_as(
            "SELECT id, 0 AS prev_id, at, actor, client_ip, action, target, environment, outcome, detail
             FROM audit_event WHERE hash IS NULL AND id > $1 AND id < $2 ORDER BY id LIMIT 1000",
        )
        .bind(prev_id)
        .bind(end)
        .fetch_all(&mut *tx)
        .await?;
        if batch.is_empty() {
            break;
        }
        for mut event in batch {
            event.prev_id = prev_id;
            let hash = event.hash(&prev_hash);
            sqlx::query("UPDATE audit_event SET prev_id = $1, hash = $2 WHERE id = $3")
                .bind(event.prev_id)
                .bind(&hash)
                .bind(event.id)
                .execute(&mut *tx)
                .await?;
            (prev_id, prev_hash) = (event.id, hash);
            chained += 1;
        }
    }
    tx.commit().await?;
    Ok(chained)
}

/// One row as the walk reads it: the sealed columns and the stored hash.
#[derive(Debug, Clone, FromRow)]
struct Link {
    #[sqlx(flatten)]
    sealed: Sealed,
    hash: Option<String>,
}

/// The first thing wrong with the chain, naming the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("event {id} was changed: its content no longer matches its hash")]
    Changed { id: i64 },
    #[error("event {id} was removed: event {next} follows it in the chain, but it is gone")]
    Removed { id: i64, next: i64 },
    #[error("event {id} was inserted outside Steward: {why}")]
    Inserted { id: i64, why: &'static str },
    #[error("event {id}, the newest, does not match its hash: it was changed, or appended outside Steward")]
    LastChanged { id: i64 },
    #[error(
        "the log was cut short: it ends at event {head}, but the verification of {seen_at} saw event {seen_head} with hash {seen_hash}, which it no longer holds"
    )]
    Truncated {
        head: i64,
        seen_head: i64,
        seen_hash: String,
        seen_at: String,
    },
}

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Events walked.
    pub checked: u64,
    /// The newest event that the chain vouches for, and its hash (`None`: the log is empty).
    pub head: Option<(i64, String)>,
    pub problem: Option<Problem>,
}

/// Walks every event in id order (streamed: a million events take a few seconds and no more
/// memory than one), then compares the head with the one the last good verification saw.
pub async fn verify(db: &Db) -> sqlx::Result<Report> {
    let mut walk = Walk::default();
    let mut rows = sqlx::query_as::<_, Link>(
        "SELECT id, COALESCE(prev_id, -1) AS prev_id, at, actor, client_ip, action, target, environment, outcome, detail, hash
         FROM audit_event ORDER BY id",
    )
    .fetch(db.pool());
    while let Some(link) = rows.try_next().await? {
        if walk.push(link).is_some() {
            break;
        }
    }
    drop(rows);
    walk.finish();
    let mut report = walk.report();
    if report.problem.is_none()
        && let Some(earlier) = last_good_verification(db.pool()).await?
        && let (Some(seen_head), Some(seen_hash)) = (earlier.head_id, earlier.head_hash)
    {
        let now: Option<(Option<String>,)> = sqlx::query_as("SELECT hash FROM audit_event WHERE id = $1")
            .bind(seen_head)
            .fetch_optional(db.pool())
            .await?;
        // Gone, or there again with another hash: the tail was cut (and perhaps written anew).
        if now.map(|(hash,)| hash) != Some(Some(seen_hash.clone())) {
            report.problem = Some(Problem::Truncated {
                head: report.head.as_ref().map_or(0, |(id, _)| *id),
                seen_head,
                seen_hash,
                seen_at: crate::text::local(earlier.at_ms, chrono_tz::UTC, "%Y-%m-%d %H:%M UTC"),
            });
        }
    }
    Ok(report)
}

/// The walk as a state machine over rows in id order; each row is judged once the row after it
/// is known, because that one tells a changed event from an inserted one.
#[derive(Default)]
struct Walk {
    prev: Option<(i64, String)>,
    pending: Option<Link>,
    checked: u64,
    problem: Option<Problem>,
}

impl Walk {
    fn push(&mut self, link: Link) -> Option<&Problem> {
        if let Some(current) = self.pending.take() {
            self.judge(current, Some(&link));
        }
        if self.problem.is_none() {
            self.pending = Some(link);
        }
        self.problem.as_ref()
    }

    fn finish(&mut self) {
        if let Some(current) = self.pending.take() {
            self.judge(current, None);
        }
    }

    fn report(self) -> Report {
        Report {
            checked: self.checked,
            head: self.prev,
            problem: self.problem,
        }
    }

    fn judge(&mut self, current: Link, next: Option<&Link>) {
        let (prev_id, prev_hash) = self.prev.clone().unwrap_or((0, GENESIS.to_string()));
        let id = current.sealed.id;
        let Some(hash) = current.hash.clone() else {
            self.problem = Some(Problem::Inserted {
                id,
                why: "it has no hash",
            });
            return;
        };
        // Does `next` continue the chain from `current` as it is stored?
        let continues =
            |next: &Link| next.sealed.prev_id == id && next.hash.as_deref() == Some(next.sealed.hash(&hash).as_str());
        let claimed = current.sealed.prev_id;
        if claimed != prev_id {
            self.problem = Some(if claimed > prev_id && claimed < id && next.is_none_or(continues) {
                Problem::Removed { id: claimed, next: id }
            } else {
                Problem::Inserted {
                    id,
                    why: "it does not follow the event before it",
                }
            });
            return;
        }
        if current.sealed.hash(&prev_hash) != hash {
            self.problem = Some(match next {
                None => Problem::LastChanged { id },
                Some(next) if next.sealed.prev_id == prev_id => Problem::Inserted {
                    id,
                    why: "the chain goes on from the event before it",
                },
                Some(_) => Problem::Changed { id },
            });
            return;
        }
        self.checked += 1;
        self.prev = Some((id, hash));
    }
}

/// One recorded verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub at_ms: i64,
    pub checked: i64,
    pub head_id: Option<i64>,
    pub head_hash: Option<String>,
    pub ok: bool,
    pub problem: Option<String>,
    pub by: String,
}

pub async fn save_verification<'e>(
    executor: impl Executor<'e, Database = Any>,
    report: &Report,
    by: &str,
) -> sqlx::Result<Verification> {
    let verification = Verification {
        at_ms: now_ms(),
        checked: report.checked as i64,
        head_id: report.head.as_ref().map(|(id, _)| *id),
        head_hash: report.head.as_ref().map(|(_, hash)| hash.clone()),
        ok: report.problem.is_none(),
        problem: report.problem.as_ref().map(ToString::to_string),
        by: by.to_string(),
    };
    sqlx::query(
        "INSERT INTO audit_verification (at, checked, head_id, head_hash, ok, problem, by_whom)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(verification.at_ms)
    .bind(verification.checked)
    .bind(verification.head_id)
    .bind(&verification.head_hash)
    .bind(i64::from(verification.ok))
    .bind(&verification.problem)
    .bind(&verification.by)
    .execute(executor)
    .await?;
    Ok(verification)
}

/// The newest verification, whatever it found.
pub async fn last_verification<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<Option<Verification>> {
    verification_where(executor, "1 = 1").await
}

/// The newest verification that found the chain whole: the head a later one must still find.
async fn last_good_verification<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<Option<Verification>> {
    verification_where(executor, "ok = 1").await
}

async fn verification_where<'e>(
    executor: impl Executor<'e, Database = Any>,
    condition: &str,
) -> sqlx::Result<Option<Verification>> {
    let row: Option<VerificationRow> = sqlx::query_as(&format!(
        "SELECT at, checked, head_id, head_hash, ok, problem, by_whom FROM audit_verification
         WHERE {condition} ORDER BY id DESC LIMIT 1"
    ))
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|row| Verification {
        at_ms: row.at,
        checked: row.checked,
        head_id: row.head_id,
        head_hash: row.head_hash,
        ok: row.ok != 0,
        problem: row.problem,
        by: row.by_whom,
    }))
}

#[derive(FromRow)]
struct VerificationRow {
    at: i64,
    checked: i64,
    head_id: Option<i64>,
    head_hash: Option<String>,
    ok: i64,
    problem: Option<String>,
    by_whom: String,
}

#[cfg(test)]
mod tests;
