//! The notification outbox (`notification`, `notification_delivery`, `notification_attempt`)
//! and the `alert_condition` table. The rules (what is news, the flap window, backoff) live in
//! [`crate::notifications`]; here is only SQL.
//!
//! A delivery is claimed like a job: one conditional `UPDATE` that sets a lease, so of two
//! instances looking at the same due delivery exactly one gets it; only the lease holder may
//! record how it went.

use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub created_at: i64,
    pub kind: String,
    pub condition_key: Option<String>,
    pub environment: Option<String>,
    pub severity: String,
    pub recovery: i64,
    pub summary: String,
    pub detail: Option<String>,
    pub link: String,
    pub job_id: Option<i64>,
}

const COLUMNS: &str =
    "id, created_at, kind, condition_key, environment, severity, recovery, summary, detail, link, job_id";

/// A notification to write; `id` and `created_at` are the database's.
pub struct NewNotification<'a> {
    pub kind: &'a str,
    pub condition_key: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub severity: &'a str,
    pub recovery: bool,
    pub summary: &'a str,
    pub detail: Option<&'a str>,
    pub link: &'a str,
    pub job_id: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub notification_id: i64,
    pub target: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
}

const CONDITION_COLUMNS: &str = "key, firing, since, occurrences, first_kind, notified_at, episode_notified, comebacks";

const DELIVERY_COLUMNS: &str = "notification_id, target, state, attempts, next_attempt_at, last_error, finished_at";

#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub at: i64,
    pub instance: String,
    pub ok: i64,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ConditionRow {
    pub key: String,
    pub firing: i64,
    pub since: i64,
    pub occurrences: i64,
    pub first_kind: Option<String>,
    pub notified_at: Option<i64>,
    pub episode_notified: i64,
    pub comebacks: i64,
}

pub async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    new: &NewNotification<'_>,
    now: i64,
) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO notification (created_at, kind, condition_key, environment, severity, recovery, summary, detail, link, job_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(now)
    .bind(new.kind)
    .bind(new.condition_key)
    .bind(new.environment)
    .bind(new.severity)
    .bind(i64::from(new.recovery))
    .bind(new.summary)
    .bind(new.detail)
    .bind(new.link)
    .bind(new.job_id)
    .fetch_one(executor)
    .await?;
    Ok(id)
}

pub async fn insert_delivery<'e>(
    executor: impl Executor<'e, Database = Any>,
    notification_id: i64,
    target: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notification_delivery (notification_id, target, state, attempts, next_attempt_at)
         VALUES ($1, $2, 'pending', 0, $3)",
    )
    .bind(notification_id)
    .bind(target)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn get<'e>(executor: impl Executor<'e, Database = Any>, id: i64) -> sqlx::Result<Option<NotificationRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM notification WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// Deliveries that are due at `now` and not leased by a live sender, oldest first.
pub async fn due<'e>(
    executor: impl Executor<'e, Database = Any>,
    now: i64,
    limit: i64,
) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "SELECT notification_id, target FROM notification_delivery
         WHERE state = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
         ORDER BY next_attempt_at, notification_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Takes a due delivery for `owner` until `lease_until`. False when another sender has it or
/// it is no longer pending.
pub async fn claim<'e>(
    executor: impl Executor<'e, Database = Any>,
    notification_id: i64,
    target: &str,
    owner: &str,
    now: i64,
    lease_until: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE notification_delivery SET lease_owner = $1, lease_until = $2
         WHERE notification_id = $3 AND target = $4 AND state = 'pending'
           AND (lease_until IS NULL OR lease_until < $5)",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(notification_id)
    .bind(target)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends `owner`'s lease on a delivery it holds to `lease_until`. False when it no longer
/// holds it (its lease ran out and another sender claimed it) or the delivery is not pending.
pub async fn renew<'e>(
    executor: impl Executor<'e, Database = Any>,
    notification_id: i64,
    target: &str,
    owner: &str,
    lease_until: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE notification_delivery SET lease_until = $1
         WHERE notification_id = $2 AND target = $3 AND lease_owner = $4 AND state = 'pending'",
    )
    .bind(lease_until)
    .bind(notification_id)
    .bind(target)
    .bind(owner)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How one attempt went, for the history.
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt<'e>(
    executor: impl Executor<'e, Database = Any>,
    notification_id: i64,
    target: &str,
    instance: &str,
    at: i64,
    error: Option<&str>,
    duration_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notification_attempt (notification_id, target, at, instance, ok, error, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(notification_id)
    .bind(target)
    .bind(at)
    .bind(instance)
    .bind(i64::from(error.is_none()))
    .bind(error)
    .bind(duration_ms)
    .execute(executor)
    .await?;
    Ok(())
}

/// Records the end of an attempt by the lease holder: `state` is `delivered`, `failed` (no
/// more attempts) or `pending` (tried again at `next_attempt_at`). False when `owner` no
/// longer held the lease.
#[allow(clippy::too_many_arguments)]
pub async fn after_attempt<'e>(
    executor: impl Executor<'e, Database = Any>,
    notification_id: i64,
    target: &str,
    owner: &str,
    state: &str,
    next_attempt_at: i64,
    error: Option<&str>,
    now: i64,
) -> sqlx::Result<bool> {
    let finished_at = (state != "pending").then_some(now);
    let done = sqlx::query(
        "UPDATE notification_delivery
         SET state = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3, finished_at = $4,
             lease_owner = NULL, lease_until = NULL
         WHERE notification_id = $5 AND target = $6 AND lease_owner = $7 AND state = 'pending'",
    )
    .bind(state)
    .bind(next_attempt_at)
    .bind(error)
    .bind(finished_at)
    .bind(notification_id)
    .bind(target)
    .bind(owner)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delivery<'e>(
    executor: impl Executor<'e, Database = Any>,
    notification_id: i64,
    target: &str,
) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notification_delivery WHERE notification_id = $1 AND target = $2"
    ))
    .bind(notification_id)
    .bind(target)
    .fetch_optional(executor)
    .await
}

pub async fn deliveries_of<'e>(
    executor: impl Executor<'e, Database = Any>,
    notification_ids: &[i64],
) -> sqlx::Result<Vec<DeliveryRow>> {
    if notification_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = notification_ids.iter().map(i64::to_string).collect();
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notification_delivery WHERE notification_id IN ({}) ORDER BY notification_id, target",
        ids.join(", ")
    ))
    .fetch_all(executor)
    .await
}

pub async fn attempts<'e>(
    executor: impl Executor<'e, Database = Any>,
    notification_id: i64,
    target: &str,
) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as(
        "SELECT at, instance, ok, error, duration_ms FROM notification_attempt
         WHERE notification_id = $1 AND target = $2 ORDER BY id",
    )
    .bind(notification_id)
    .bind(target)
    .fetch_all(executor)
    .await
}

/// Which notifications the history shows; empty strings match everything.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub environment: String,
    pub kind: String,
    /// A delivery state: `pending`, `delivered` or `failed`.
    pub state: String,
    pub target: String,
}

/// Notifications newest first, before `before_id` when given. A state or target filter keeps
/// the notifications that have such a delivery.
pub async fn history<'e>(
    executor: impl Executor<'e, Database = Any>,
    filter: &HistoryFilter,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<NotificationRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notification n
         WHERE n.id < $1 AND ($2 = '' OR n.environment = $2) AND ($3 = '' OR n.kind = $3)
           AND ($4 = '' AND $5 = '' OR EXISTS (SELECT 1 FROM notification_delivery d
                WHERE d.notification_id = n.id AND ($4 = '' OR d.state = $4) AND ($5 = '' OR d.target = $5)))
         ORDER BY n.id DESC LIMIT $6"
    ))
    .bind(before_id.unwrap_or(i64::MAX))
    .bind(&filter.environment)
    .bind(&filter.kind)
    .bind(&filter.state)
    .bind(&filter.target)
    .bind(limit)
    .fetch_all(executor)
    .await
}

// --- Conditions ---

pub async fn condition<'e>(
    executor: impl Executor<'e, Database = Any>,
    key: &str,
) -> sqlx::Result<Option<ConditionRow>> {
    sqlx::query_as(&format!(
        "SELECT {CONDITION_COLUMNS} FROM alert_condition WHERE key = $1"
    ))
    .bind(key)
    .fetch_optional(executor)
    .await
}

/// The condition's row, created (not firing) when it was never seen.
pub async fn ensure_condition<'e>(
    executor: impl Executor<'e, Database = Any>,
    key: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO alert_condition (key, firing, since) VALUES ($1, 0, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(())
}

/// Starts an episode of a condition that was not firing. False when it was firing already
/// (another writer started it first): of two instances noticing the same thing, one wins.
pub async fn start_episode<'e>(
    executor: impl Executor<'e, Database = Any>,
    key: &str,
    kind: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE alert_condition SET firing = 1, since = $1, occurrences = 1, first_kind = $2, episode_notified = 0
         WHERE key = $3 AND firing = 0",
    )
    .bind(now)
    .bind(kind)
    .bind(key)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One more problem in the current episode.
pub async fn add_occurrence<'e>(executor: impl Executor<'e, Database = Any>, key: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE alert_condition SET occurrences = occurrences + 1 WHERE key = $1")
        .bind(key)
        .execute(executor)
        .await?;
    Ok(())
}

/// Records that a problem was notified now (which resets the count of unnotified comebacks).
pub async fn set_notified<'e>(executor: impl Executor<'e, Database = Any>, key: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE alert_condition SET notified_at = $1, episode_notified = 1, comebacks = 0 WHERE key = $2")
        .bind(now)
        .bind(key)
        .execute(executor)
        .await?;
    Ok(())
}

/// An episode that began inside the flap window, so it was not notified.
pub async fn add_comeback<'e>(executor: impl Executor<'e, Database = Any>, key: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE alert_condition SET comebacks = comebacks + 1 WHERE key = $1")
        .bind(key)
        .execute(executor)
        .await?;
    Ok(())
}

/// Ends the current episode. Returns the row as it was when it was firing; `None` when it was
/// not (nothing to recover from) or another writer ended it first.
pub async fn end_episode<'e>(
    executor: impl Executor<'e, Database = Any>,
    key: &str,
) -> sqlx::Result<Option<ConditionRow>> {
    sqlx::query_as(&format!(
        "UPDATE alert_condition SET firing = 0 WHERE key = $1 AND firing = 1 RETURNING {CONDITION_COLUMNS}"
    ))
    .bind(key)
    .fetch_optional(executor)
    .await
}

/// The conditions firing now, by key.
pub async fn firing<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<ConditionRow>> {
    sqlx::query_as(&format!(
        "SELECT {CONDITION_COLUMNS} FROM alert_condition WHERE firing = 1 ORDER BY key"
    ))
    .fetch_all(executor)
    .await
}
