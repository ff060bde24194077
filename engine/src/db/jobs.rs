//! The `job` and `job_log` tables. The rules (who may cancel what, the busy message) live in
//! [`crate::jobs`]; here is only SQL, in the dialect SQLite and PostgreSQL share.
//!
//! Text filters use `''` for "any": `($1 = '' OR environment = $1)` needs no typed NULL, which
//! PostgreSQL could not infer through the `Any` driver.

use sqlx::{Any, Executor, FromRow};

use crate::db::Backend;

/// `'command', 'backup'`: the kinds a worker claims, as an SQL list. A worker never claims a
/// job that an instance of a newer version queued and only it can run (rolling upgrades on
/// PostgreSQL). Kind names are identifiers of the code (letters and `_`); anything else is
/// left out rather than quoted.
fn kind_list(kinds: &[&str]) -> String {
    let known: Vec<String> = kinds
        .iter()
        .filter(|kind| !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(|kind| format!("'{kind}'"))
        .collect();
    if known.is_empty() {
        // `IN ()` is not SQL; a kind name nothing has.
        "''".to_string()
    } else {
        known.join(", ")
    }
}

/// Every column of `job`, in [`JobRow`]'s order.
const COLUMNS: &str = "id, kind, environment, input, exclusive_key, state, requested_by, reason, created_at, \
     started_at, finished_at, attempt, parent_id, retry_of, steps, step_index, bytes_done, bytes_total, error, \
     lease_owner, lease_until, cancel_requested_by, acknowledged_by, acknowledged_at";

#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub environment: String,
    pub input: String,
    pub exclusive_key: Option<String>,
    pub state: String,
    pub requested_by: String,
    pub reason: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub attempt: i64,
    pub parent_id: Option<i64>,
    pub retry_of: Option<i64>,
    pub steps: String,
    pub step_index: i64,
    pub bytes_done: Option<i64>,
    pub bytes_total: Option<i64>,
    pub error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub cancel_requested_by: Option<String>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<i64>,
}

/// A job to insert as `queued`.
pub struct NewJobRow<'a> {
    pub kind: &'a str,
    pub environment: &'a str,
    pub input: &'a str,
    pub exclusive_key: Option<&'a str>,
    pub requested_by: &'a str,
    pub reason: &'a str,
    pub created_at: i64,
    pub attempt: i64,
    pub parent_id: Option<i64>,
    pub retry_of: Option<i64>,
    pub steps: &'a str,
    /// The schedule slot this job runs (`prod/nightly/1764554400000`); at most one job each.
    pub slot_key: Option<&'a str>,
}

/// Inserts a queued job. Fails with a unique violation when its exclusive key or its slot key
/// is taken.
pub async fn insert<'e>(executor: impl Executor<'e, Database = Any>, job: &NewJobRow<'_>) -> sqlx::Result<JobRow> {
    sqlx::query_as(&format!(
        "INSERT INTO job (kind, environment, input, exclusive_key, state, requested_by, reason, created_at,
                          attempt, parent_id, retry_of, steps, slot_key)
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING {COLUMNS}"
    ))
    .bind(job.kind)
    .bind(job.environment)
    .bind(job.input)
    .bind(job.exclusive_key)
    .bind(job.requested_by)
    .bind(job.reason)
    .bind(job.created_at)
    .bind(job.attempt)
    .bind(job.parent_id)
    .bind(job.retry_of)
    .bind(job.steps)
    .bind(job.slot_key)
    .fetch_one(executor)
    .await
}

/// The job requested for schedule slot `slot_key`, if any.
pub async fn by_slot<'e>(executor: impl Executor<'e, Database = Any>, slot_key: &str) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM job WHERE slot_key = $1"))
        .bind(slot_key)
        .fetch_optional(executor)
        .await
}

pub async fn get<'e>(executor: impl Executor<'e, Database = Any>, id: i64) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM job WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// The queued or running job holding `key`, if any.
pub async fn holder<'e>(executor: impl Executor<'e, Database = Any>, key: &str) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM job WHERE exclusive_key = $1 AND state IN ('queued', 'running')"
    ))
    .bind(key)
    .fetch_optional(executor)
    .await
}

/// The job that retries job `id`, if there is one.
pub async fn retry_of<'e>(executor: impl Executor<'e, Database = Any>, id: i64) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM job WHERE retry_of = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// The restore that undoes restore `id` (restores its safety backup), if there is one.
pub async fn undo_of<'e>(executor: impl Executor<'e, Database = Any>, id: i64) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM job WHERE parent_id = $1 AND kind = 'restore' ORDER BY id LIMIT 1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// Newest first; empty strings match everything.
pub async fn list<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
    kind: &str,
    state: &str,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM job
         WHERE ($1 = '' OR environment = $1) AND ($2 = '' OR kind = $2) AND ($3 = '' OR state = $3) AND id < $4
         ORDER BY id DESC LIMIT $5"
    ))
    .bind(environment)
    .bind(kind)
    .bind(state)
    .bind(before_id.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Interrupted jobs of an environment nobody has acknowledged or retried yet, newest first.
/// Restores are left out: a failed restore of any kind has a banner of its own
/// ([`unacknowledged_failures`]).
pub async fn unacknowledged_interrupted<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM job
         WHERE environment = $1 AND state = 'interrupted' AND acknowledged_by IS NULL AND kind <> 'restore'
         ORDER BY id DESC"
    ))
    .bind(environment)
    .fetch_all(executor)
    .await
}

/// Failed, cancelled and interrupted jobs of one kind in an environment that nobody has
/// acknowledged, retried or undone yet, newest first.
pub async fn unacknowledged_failures<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
    kind: &str,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM job
         WHERE environment = $1 AND kind = $2 AND state IN ('failed', 'cancelled', 'interrupted')
           AND acknowledged_by IS NULL
         ORDER BY id DESC"
    ))
    .bind(environment)
    .bind(kind)
    .fetch_all(executor)
    .await
}

/// Whether any job of `kinds` waits to be claimed.
pub async fn any_queued<'e>(executor: impl Executor<'e, Database = Any>, kinds: &[&str]) -> sqlx::Result<bool> {
    let found: Option<(i64,)> = sqlx::query_as(&format!(
        "SELECT id FROM job WHERE state = 'queued' AND kind IN ({}) LIMIT 1",
        kind_list(kinds)
    ))
    .fetch_optional(executor)
    .await?;
    Ok(found.is_some())
}

/// How many jobs are running and queued, by kind: `(kind, state, count)`, only the pairs that
/// have any (the metrics fill in the zeros).
pub async fn active_counts<'e>(
    executor: impl Executor<'e, Database = Any>,
) -> sqlx::Result<Vec<(String, String, i64)>> {
    sqlx::query_as(
        "SELECT kind, state, COUNT(*) FROM job WHERE state IN ('queued', 'running') GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(executor)
    .await
}

/// Takes the oldest queued job for `owner` until `lease_until`: one statement, so two workers
/// (or two instances) never take the same job. PostgreSQL skips rows another claim has locked;
/// SQLite runs it inside an immediate transaction, which serialises writers.
pub async fn claim<'e>(
    executor: impl Executor<'e, Database = Any>,
    backend: Backend,
    kinds: &[&str],
    owner: &str,
    now: i64,
    lease_until: i64,
) -> sqlx::Result<Option<JobRow>> {
    let known = kind_list(kinds);
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    sqlx::query_as(&format!(
        "UPDATE job SET state = 'running', started_at = $1, lease_owner = $2, lease_until = $3
         WHERE id = (SELECT id FROM job WHERE state = 'queued' AND kind IN ({known}) ORDER BY id LIMIT 1 {lock})
           AND state = 'queued'
         RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(owner)
    .bind(lease_until)
    .fetch_optional(executor)
    .await
}

/// Extends the lease of a job `owner` runs. `None`: the job is no longer this owner's (its
/// lease expired and it was marked interrupted); otherwise who asked to cancel it, if anyone.
pub async fn renew_lease<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: i64,
    owner: &str,
    lease_until: i64,
) -> sqlx::Result<Option<Option<String>>> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "UPDATE job SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'
         RETURNING cancel_requested_by",
    )
    .bind(lease_until)
    .bind(id)
    .bind(owner)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|(by,)| by))
}

/// Ends a job `owner` runs; `steps_done` replaces the step count when given. False when the job
/// was no longer this owner's.
pub async fn finish<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: i64,
    owner: &str,
    state: &str,
    error: Option<&str>,
    steps_done: Option<i64>,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE job SET state = $1, error = $2, finished_at = $3, lease_owner = NULL, lease_until = NULL,
                step_index = COALESCE($6, step_index)
         WHERE id = $4 AND lease_owner = $5 AND state = 'running'",
    )
    .bind(state)
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(owner)
    .bind(steps_done)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels a job that has not started. False when it is no longer queued.
pub async fn cancel_queued<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: i64,
    by: &str,
    error: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE job SET state = 'cancelled', cancel_requested_by = $1, error = $2, finished_at = $3
         WHERE id = $4 AND state = 'queued'",
    )
    .bind(by)
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Asks the worker of a running job to stop it. False when it is not running.
pub async fn request_cancel<'e>(executor: impl Executor<'e, Database = Any>, id: i64, by: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE job SET cancel_requested_by = COALESCE(cancel_requested_by, $1) WHERE id = $2 AND state = 'running'",
    )
    .bind(by)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks running jobs whose lease ended before `expired_before` as interrupted. `lease_owner`
/// stays, naming the worker that ran it.
pub async fn interrupt_expired<'e>(
    executor: impl Executor<'e, Database = Any>,
    expired_before: i64,
    error: &str,
    now: i64,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(&format!(
        "UPDATE job SET state = 'interrupted', error = $1, finished_at = $2, lease_until = NULL
         WHERE state = 'running' AND lease_until < $3
         RETURNING {COLUMNS}"
    ))
    .bind(error)
    .bind(now)
    .bind(expired_before)
    .fetch_all(executor)
    .await
}

/// Records who dismissed an interrupted (or retried) job. False when there was nothing to do.
pub async fn acknowledge<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: i64,
    by: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE job SET acknowledged_by = $1, acknowledged_at = $2
         WHERE id = $3 AND acknowledged_by IS NULL AND state IN ('failed', 'cancelled', 'interrupted')",
    )
    .bind(by)
    .bind(now)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_progress<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: i64,
    done: i64,
    total: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE job SET bytes_done = $1, bytes_total = $2 WHERE id = $3")
        .bind(done)
        .bind(total)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct LogRow {
    pub seq: i64,
    pub at: i64,
    pub level: String,
    pub line: String,
}

/// Lines per INSERT: 5 parameters each stays far below SQLite's 32,766 and PostgreSQL's 65,535.
pub const LOG_ROWS_PER_INSERT: usize = 500;

/// Appends lines (at most [`LOG_ROWS_PER_INSERT`]) in one statement.
pub async fn append_log<'e>(
    executor: impl Executor<'e, Database = Any>,
    job_id: i64,
    rows: &[LogRow],
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let values = (0..rows.len())
        .map(|i| {
            let p = i * 5;
            format!("(${}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 5)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO job_log (job_id, seq, at, level, line) VALUES {values}");
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query
            .bind(job_id)
            .bind(row.seq)
            .bind(row.at)
            .bind(row.level.as_str())
            .bind(row.line.as_str());
    }
    query.execute(executor).await?;
    Ok(())
}

/// Lines after `after_seq`, oldest first, at most `limit`.
pub async fn log_after<'e>(
    executor: impl Executor<'e, Database = Any>,
    job_id: i64,
    after_seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<LogRow>> {
    sqlx::query_as("SELECT seq, at, level, line FROM job_log WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
        .bind(job_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(executor)
        .await
}

/// The last `limit` lines, oldest first.
pub async fn log_tail<'e>(
    executor: impl Executor<'e, Database = Any>,
    job_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<LogRow>> {
    let mut rows: Vec<LogRow> =
        sqlx::query_as("SELECT seq, at, level, line FROM job_log WHERE job_id = $1 ORDER BY seq DESC LIMIT $2")
            .bind(job_id)
            .bind(limit)
            .fetch_all(executor)
            .await?;
    rows.reverse();
    Ok(rows)
}

/// The highest line number of a job's log (0 when empty).
pub async fn last_seq<'e>(executor: impl Executor<'e, Database = Any>, job_id: i64) -> sqlx::Result<i64> {
    let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM job_log WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(executor)
        .await?;
    Ok(seq.unwrap_or(0))
}

pub async fn log_count<'e>(executor: impl Executor<'e, Database = Any>, job_id: i64) -> sqlx::Result<i64> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM job_log WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(executor)
        .await?;
    Ok(count)
}

/// Appends one line after the job's last (for lines written outside its log writer).
pub async fn append_one<'e>(
    executor: impl Executor<'e, Database = Any>,
    job_id: i64,
    level: &str,
    line: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO job_log (job_id, seq, at, level, line)
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM job_log WHERE job_id = $1",
    )
    .bind(job_id)
    .bind(now)
    .bind(level)
    .bind(line)
    .execute(executor)
    .await?;
    Ok(())
}

/// Records how many of a running job's steps are done.
pub async fn set_steps_done<'e>(executor: impl Executor<'e, Database = Any>, id: i64, done: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE job SET step_index = $1 WHERE id = $2")
        .bind(done)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

/// The inputs of the running jobs of `kind`.
pub async fn running_inputs<'e>(executor: impl Executor<'e, Database = Any>, kind: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT input FROM job WHERE kind = $1 AND state = 'running'")
        .bind(kind)
        .fetch_all(executor)
        .await
}
