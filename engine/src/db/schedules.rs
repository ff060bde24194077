//! The `schedule_state` and `schedule_slot` tables. The rules (which fire time is due, what a
//! busy environment means) live in [`crate::schedules`]; here is only SQL.
//!
//! A slot is claimed by inserting its row: the primary key (environment, schedule, fire time)
//! lets exactly one instance have it. The job it requests carries the slot's key too
//! (`job.slot_key`, unique), so that even an instance retrying a waiting slot cannot queue it
//! twice.

use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct StateRow {
    pub environment: String,
    pub schedule: String,
    pub since: i64,
    pub paused_at: Option<i64>,
    pub paused_by: Option<String>,
    pub pause_reason: Option<String>,
}

const STATE_COLUMNS: &str = "environment, schedule, since, paused_at, paused_by, pause_reason";

#[derive(Debug, Clone, FromRow)]
pub struct SlotRow {
    pub environment: String,
    pub schedule: String,
    pub fire_at: i64,
    pub state: String,
    pub missed: i64,
    pub missed_first: Option<i64>,
    pub claimed_by: String,
    pub claimed_at: i64,
    pub started_at: Option<i64>,
    pub job_id: Option<i64>,
    pub blocked_by: Option<i64>,
    pub note: Option<String>,
}

const SLOT_COLUMNS: &str = "environment, schedule, fire_at, state, missed, missed_first, claimed_by, claimed_at, \
     started_at, job_id, blocked_by, note";

/// The schedule's state row, created with `since = now` when this is its first sight. Only a
/// first sight writes: the scheduler reads this every second, and on SQLite every write
/// takes the database's one write lock.
pub async fn ensure_state(
    conn: &mut sqlx::AnyConnection,
    environment: &str,
    schedule: &str,
    now: i64,
) -> sqlx::Result<StateRow> {
    let existing = sqlx::query_as(&format!(
        "SELECT {STATE_COLUMNS} FROM schedule_state WHERE environment = $1 AND schedule = $2"
    ))
    .bind(environment)
    .bind(schedule)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(state) = existing {
        return Ok(state);
    }
    sqlx::query(
        "INSERT INTO schedule_state (environment, schedule, since) VALUES ($1, $2, $3)
         ON CONFLICT (environment, schedule) DO NOTHING",
    )
    .bind(environment)
    .bind(schedule)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(&format!(
        "SELECT {STATE_COLUMNS} FROM schedule_state WHERE environment = $1 AND schedule = $2"
    ))
    .bind(environment)
    .bind(schedule)
    .fetch_one(&mut *conn)
    .await
}

/// Pauses (`Some((at, by, reason))`) or resumes (`None`, with `since = now`) a schedule.
/// Returns whether the row changed: pausing a paused schedule changes nothing.
pub async fn set_paused<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
    schedule: &str,
    pause: Option<(i64, &str, &str)>,
    now: i64,
) -> sqlx::Result<bool> {
    let done = match pause {
        Some((at, by, reason)) => {
            sqlx::query(
                "UPDATE schedule_state SET paused_at = $3, paused_by = $4, pause_reason = $5
                 WHERE environment = $1 AND schedule = $2 AND paused_at IS NULL",
            )
            .bind(environment)
            .bind(schedule)
            .bind(at)
            .bind(by)
            .bind(reason)
            .execute(executor)
            .await?
        }
        None => {
            sqlx::query(
                "UPDATE schedule_state SET paused_at = NULL, paused_by = NULL, pause_reason = NULL, since = $3
                 WHERE environment = $1 AND schedule = $2 AND paused_at IS NOT NULL",
            )
            .bind(environment)
            .bind(schedule)
            .bind(now)
            .execute(executor)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Whether a schedule is paused now.
pub async fn is_paused<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
    schedule: &str,
) -> sqlx::Result<bool> {
    let paused: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT paused_at FROM schedule_state WHERE environment = $1 AND schedule = $2")
            .bind(environment)
            .bind(schedule)
            .fetch_optional(executor)
            .await?;
    Ok(paused.is_some_and(|(at,)| at.is_some()))
}

/// The latest fire time claimed for a schedule.
pub async fn last_fire<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
    schedule: &str,
) -> sqlx::Result<Option<i64>> {
    let (last,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(fire_at) FROM schedule_slot WHERE environment = $1 AND schedule = $2")
            .bind(environment)
            .bind(schedule)
            .fetch_one(executor)
            .await?;
    Ok(last)
}

/// Claims a slot by inserting it as `due`. `Ok(false)`: another instance claimed it first.
pub async fn claim<'e>(executor: impl Executor<'e, Database = Any>, slot: &SlotRow) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO schedule_slot (environment, schedule, fire_at, state, missed, missed_first, claimed_by, claimed_at)
         VALUES ($1, $2, $3, 'due', $4, $5, $6, $7)
         ON CONFLICT (environment, schedule, fire_at) DO NOTHING",
    )
    .bind(&slot.environment)
    .bind(&slot.schedule)
    .bind(slot.fire_at)
    .bind(slot.missed)
    .bind(slot.missed_first)
    .bind(&slot.claimed_by)
    .bind(slot.claimed_at)
    .execute(executor)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Slots not yet started, skipped or failed, oldest first.
pub async fn open_slots<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<SlotRow>> {
    sqlx::query_as(&format!(
        "SELECT {SLOT_COLUMNS} FROM schedule_slot WHERE state IN ('due', 'waiting') ORDER BY fire_at"
    ))
    .fetch_all(executor)
    .await
}

/// Records the job an open slot started.
pub async fn set_started<'e>(
    executor: impl Executor<'e, Database = Any>,
    slot: &SlotRow,
    job_id: i64,
    at: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE schedule_slot SET state = 'started', job_id = $4, started_at = $5
         WHERE environment = $1 AND schedule = $2 AND fire_at = $3 AND state IN ('due', 'waiting')",
    )
    .bind(&slot.environment)
    .bind(&slot.schedule)
    .bind(slot.fire_at)
    .bind(job_id)
    .bind(at)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records that an open slot waits for `blocked_by` to end.
pub async fn set_waiting<'e>(
    executor: impl Executor<'e, Database = Any>,
    slot: &SlotRow,
    blocked_by: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE schedule_slot SET state = 'waiting', blocked_by = $4
         WHERE environment = $1 AND schedule = $2 AND fire_at = $3 AND state IN ('due', 'waiting')",
    )
    .bind(&slot.environment)
    .bind(&slot.schedule)
    .bind(slot.fire_at)
    .bind(blocked_by)
    .execute(executor)
    .await?;
    Ok(())
}

/// Ends an open slot without a job (`skipped` or `failed`), saying why. Returns whether this
/// call ended it (another instance may have first).
pub async fn set_ended<'e>(
    executor: impl Executor<'e, Database = Any>,
    slot: &SlotRow,
    state: &str,
    blocked_by: Option<i64>,
    note: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE schedule_slot SET state = $4, blocked_by = $5, note = $6
         WHERE environment = $1 AND schedule = $2 AND fire_at = $3 AND state IN ('due', 'waiting')",
    )
    .bind(&slot.environment)
    .bind(&slot.schedule)
    .bind(slot.fire_at)
    .bind(state)
    .bind(blocked_by)
    .bind(note)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every schedule's state row.
pub async fn states<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<StateRow>> {
    sqlx::query_as(&format!("SELECT {STATE_COLUMNS} FROM schedule_state"))
        .fetch_all(executor)
        .await
}

/// A schedule's latest slots, newest first.
pub async fn recent<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
    schedule: &str,
    limit: i64,
) -> sqlx::Result<Vec<SlotRow>> {
    sqlx::query_as(&format!(
        "SELECT {SLOT_COLUMNS} FROM schedule_slot WHERE environment = $1 AND schedule = $2
         ORDER BY fire_at DESC LIMIT $3"
    ))
    .bind(environment)
    .bind(schedule)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Started slots whose job has ended and whose follow-up is not done yet.
pub async fn ended_unfollowed<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<(SlotRow, String)>> {
    let rows: Vec<(String, String, i64, i64, String)> = sqlx::query_as(
        "SELECT s.environment, s.schedule, s.fire_at, s.job_id, j.state FROM schedule_slot s JOIN job j ON j.id = s.job_id
         WHERE s.state = 'started' AND s.followed_up = 0
           AND j.state IN ('succeeded', 'failed', 'cancelled', 'interrupted')",
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(environment, schedule, fire_at, job_id, state)| {
            (
                SlotRow {
                    environment,
                    schedule,
                    fire_at,
                    state: "started".into(),
                    missed: 0,
                    missed_first: None,
                    claimed_by: String::new(),
                    claimed_at: 0,
                    started_at: None,
                    job_id: Some(job_id),
                    blocked_by: None,
                    note: None,
                },
                state,
            )
        })
        .collect())
}

/// Records that a slot's follow-up is done (or not needed).
pub async fn set_followed_up<'e>(executor: impl Executor<'e, Database = Any>, slot: &SlotRow) -> sqlx::Result<()> {
    sqlx::query("UPDATE schedule_slot SET followed_up = 1 WHERE environment = $1 AND schedule = $2 AND fire_at = $3")
        .bind(&slot.environment)
        .bind(&slot.schedule)
        .bind(slot.fire_at)
        .execute(executor)
        .await?;
    Ok(())
}
