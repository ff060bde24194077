//! The `backup` table: the catalog of complete backups, and `test_restore`: the history of
//! their test restores (the newest row of a backup is its badge). The rules live in
//! [`crate::backups`].

use sqlx::{Any, Executor, FromRow};

const COLUMNS: &str = "id, environment, created_at, finished_at, trigger_type, requested_by, description, \
     total_size, resources, pinned, verified_at, verify_ok, verify_error, job_id, manifest";

/// A backup's columns and its newest test restore's (`NULL`s when it never had one), for
/// `FROM backup b` + [`LATEST_TEST_RESTORE`].
const SELECT: &str = "SELECT b.id, b.environment, b.created_at, b.finished_at, b.trigger_type, b.requested_by, \
     b.description, b.total_size, b.resources, b.pinned, b.verified_at, b.verify_ok, b.verify_error, b.job_id, \
     b.manifest, t.at AS test_restore_at, t.ok AS test_restore_ok, t.checked AS test_restore_checked, \
     t.error AS test_restore_error, t.job_id AS test_restore_job FROM backup b";

/// Joins each backup's newest test restore (ids grow with time).
const LATEST_TEST_RESTORE: &str =
    "LEFT JOIN test_restore t ON t.id = (SELECT MAX(id) FROM test_restore WHERE backup_id = b.id)";

#[derive(Debug, Clone, FromRow)]
pub struct BackupRow {
    pub id: String,
    pub environment: String,
    pub created_at: i64,
    pub finished_at: i64,
    pub trigger_type: String,
    pub requested_by: String,
    pub description: String,
    pub total_size: i64,
    pub resources: String,
    pub pinned: i64,
    pub verified_at: Option<i64>,
    pub verify_ok: Option<i64>,
    pub verify_error: Option<String>,
    pub job_id: Option<i64>,
    pub manifest: String,
    /// The newest test restore, when there was one (read only: written by
    /// [`record_test_restore`]).
    #[sqlx(default)]
    pub test_restore_at: Option<i64>,
    #[sqlx(default)]
    pub test_restore_ok: Option<i64>,
    #[sqlx(default)]
    pub test_restore_checked: Option<String>,
    #[sqlx(default)]
    pub test_restore_error: Option<String>,
    #[sqlx(default)]
    pub test_restore_job: Option<i64>,
}

/// Adds a backup, or replaces the row of the same id (reindex).
pub async fn upsert<'e>(executor: impl Executor<'e, Database = Any>, row: &BackupRow) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO backup ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (id) DO UPDATE SET environment = $2, created_at = $3, finished_at = $4, trigger_type = $5,
             requested_by = $6, description = $7, total_size = $8, resources = $9, manifest = $15"
    ))
    .bind(&row.id)
    .bind(&row.environment)
    .bind(row.created_at)
    .bind(row.finished_at)
    .bind(&row.trigger_type)
    .bind(&row.requested_by)
    .bind(&row.description)
    .bind(row.total_size)
    .bind(&row.resources)
    .bind(row.pinned)
    .bind(row.verified_at)
    .bind(row.verify_ok)
    .bind(row.verify_error.as_deref())
    .bind(row.job_id)
    .bind(&row.manifest)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn get<'e>(executor: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<BackupRow>> {
    sqlx::query_as(&format!("{SELECT} {LATEST_TEST_RESTORE} WHERE b.id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// How a list of backups is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
    LargestFirst,
    SmallestFirst,
}

impl Order {
    fn sql(self) -> &'static str {
        match self {
            Order::NewestFirst => "b.created_at DESC, b.id DESC",
            Order::OldestFirst => "b.created_at ASC, b.id ASC",
            Order::LargestFirst => "b.total_size DESC, b.created_at DESC",
            Order::SmallestFirst => "b.total_size ASC, b.created_at DESC",
        }
    }
}

/// One page of an environment's backups.
pub async fn list<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
    order: Order,
    offset: i64,
    limit: i64,
) -> sqlx::Result<Vec<BackupRow>> {
    sqlx::query_as(&format!(
        "{SELECT} {LATEST_TEST_RESTORE} WHERE b.environment = $1 ORDER BY {} LIMIT $2 OFFSET $3",
        order.sql()
    ))
    .bind(environment)
    .bind(limit)
    .bind(offset)
    .fetch_all(executor)
    .await
}

pub async fn count<'e>(executor: impl Executor<'e, Database = Any>, environment: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM backup WHERE environment = $1")
        .bind(environment)
        .fetch_one(executor)
        .await
}

/// Every backup id in the catalog (reindex).
pub async fn all_ids<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT id FROM backup").fetch_all(executor).await
}

/// The newest backup of an environment.
pub async fn latest<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
) -> sqlx::Result<Option<BackupRow>> {
    sqlx::query_as(&format!(
        "{SELECT} {LATEST_TEST_RESTORE} WHERE b.environment = $1 ORDER BY b.created_at DESC, b.id DESC LIMIT 1"
    ))
    .bind(environment)
    .fetch_optional(executor)
    .await
}

pub async fn set_verified<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: &str,
    at: i64,
    ok: bool,
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE backup SET verified_at = $1, verify_ok = $2, verify_error = $3 WHERE id = $4")
        .bind(at)
        .bind(i64::from(ok))
        .bind(error)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn delete<'e>(executor: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM backup WHERE id = $1")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// One test restore of a backup.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TestRestoreRow {
    pub backup_id: String,
    pub job_id: Option<i64>,
    /// Unix milliseconds: when it ended.
    pub at: i64,
    /// 1 passed, 0 failed.
    pub ok: i64,
    /// What was checked, in words.
    pub checked: String,
    /// Why it failed, in the tools' words.
    pub error: Option<String>,
}

/// Adds a test restore to a backup's history (its newest is the backup's badge).
pub async fn record_test_restore<'e>(
    executor: impl Executor<'e, Database = Any>,
    row: &TestRestoreRow,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO test_restore (backup_id, job_id, at, ok, checked, error) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&row.backup_id)
        .bind(row.job_id)
        .bind(row.at)
        .bind(row.ok)
        .bind(&row.checked)
        .bind(row.error.as_deref())
        .execute(executor)
        .await?;
    Ok(())
}

/// A backup's test restores, newest first.
pub async fn test_restores<'e>(
    executor: impl Executor<'e, Database = Any>,
    backup_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<TestRestoreRow>> {
    sqlx::query_as(
        "SELECT backup_id, job_id, at, ok, checked, error FROM test_restore WHERE backup_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(backup_id)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// The newest backup of `environment` whose newest test restore passed: the one retention
/// must never remove.
pub async fn newest_proven<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
) -> sqlx::Result<Option<String>> {
    Ok(newest_proven_at(executor, environment).await?.map(|(id, _)| id))
}

/// [`newest_proven`], and when that test restore ended (Unix milliseconds): the dashboard's
/// "last proven restore".
pub async fn newest_proven_at<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
) -> sqlx::Result<Option<(String, i64)>> {
    sqlx::query_as(&format!(
        "SELECT b.id, t.at FROM backup b {LATEST_TEST_RESTORE} WHERE b.environment = $1 AND t.ok = 1 \
         ORDER BY b.created_at DESC, b.id DESC LIMIT 1"
    ))
    .bind(environment)
    .fetch_optional(executor)
    .await
}

/// Every backup of `environment` with when it was taken and when its last test restore ended
/// (`None`: never), for choosing what a verify run checks.
pub async fn verification_candidates<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
) -> sqlx::Result<Vec<(String, i64, Option<i64>)>> {
    sqlx::query_as(
        "SELECT b.id, b.created_at, (SELECT MAX(at) FROM test_restore WHERE backup_id = b.id) \
         FROM backup b WHERE b.environment = $1 ORDER BY b.created_at, b.id",
    )
    .bind(environment)
    .fetch_all(executor)
    .await
}

/// Who pinned a backup, when and why.
#[derive(Debug, Clone, FromRow)]
pub struct PinRow {
    pub id: String,
    pub pinned_by: Option<String>,
    pub pinned_at: Option<i64>,
    pub pin_reason: Option<String>,
}

/// The pinned backups of an environment.
pub async fn pins<'e>(executor: impl Executor<'e, Database = Any>, environment: &str) -> sqlx::Result<Vec<PinRow>> {
    sqlx::query_as("SELECT id, pinned_by, pinned_at, pin_reason FROM backup WHERE environment = $1 AND pinned <> 0")
        .bind(environment)
        .fetch_all(executor)
        .await
}

/// Pins (`Some((by, at, reason))`) or unpins a backup. Returns whether the row changed:
/// pinning a pinned backup changes nothing.
pub async fn set_pinned<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: &str,
    pin: Option<(&str, i64, &str)>,
) -> sqlx::Result<bool> {
    let done = match pin {
        Some((by, at, reason)) => {
            sqlx::query(
                "UPDATE backup SET pinned = 1, pinned_by = $2, pinned_at = $3, pin_reason = $4
                 WHERE id = $1 AND pinned = 0",
            )
            .bind(id)
            .bind(by)
            .bind(at)
            .bind(reason)
            .execute(executor)
            .await?
        }
        None => {
            sqlx::query(
                "UPDATE backup SET pinned = 0, pinned_by = NULL, pinned_at = NULL, pin_reason = NULL
                 WHERE id = $1 AND pinned <> 0",
            )
            .bind(id)
            .execute(executor)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// What an environment's backups take now: bytes and how many.
pub async fn usage<'e>(executor: impl Executor<'e, Database = Any>, environment: &str) -> sqlx::Result<(i64, i64)> {
    // PostgreSQL sums BIGINTs as NUMERIC: cast back for the Any driver.
    sqlx::query_as("SELECT CAST(COALESCE(SUM(total_size), 0) AS BIGINT), COUNT(*) FROM backup WHERE environment = $1")
        .bind(environment)
        .fetch_one(executor)
        .await
}

/// Records what the environment's backups take now (after a backup was added: `backup_id`).
/// Run it in the transaction that changed the catalog.
pub async fn record_usage<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
    at: i64,
    backup_id: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO storage_sample (environment, at, bytes, backups, backup_id)
         SELECT $1, $2, CAST(COALESCE(SUM(total_size), 0) AS BIGINT), COUNT(*), $3 FROM backup WHERE environment = $1",
    )
    .bind(environment)
    .bind(at)
    .bind(backup_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// The total kept right after each backup added since `since` (Unix milliseconds), by backup id.
pub async fn usage_after<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
    since: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT backup_id, bytes FROM storage_sample
         WHERE environment = $1 AND at >= $2 AND backup_id IS NOT NULL ORDER BY at",
    )
    .bind(environment)
    .bind(since)
    .fetch_all(executor)
    .await
}
