//! The `repository_use` table: the repository lock shared by every instance on one database.
//! Backups, restores and verifications take it to use (any number at once), a prune takes it alone; see
//! [`crate::backups`]' `use_repository`.

use sqlx::{Any, Transaction};

use super::Backend;

/// A use outside any job (negative id) older than this is stale: six hours.
const NON_JOB_STALE_MS: i64 = 6 * 3_600_000;

/// How a job uses the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Backing up, restoring, verifying: beside other users.
    Use,
    /// Deleting and repacking packs: alone.
    Prune,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Use => "use",
            Mode::Prune => "prune",
        }
    }
}

/// Takes the repository for `job_id` (a job's id, or a negative id for work outside a job)
/// unless a running job's use conflicts: returns the
/// conflicting jobs (empty: taken). Stale rows (their job no longer runs) are removed first.
/// Call in a write transaction; on PostgreSQL the table is locked for the transaction so two
/// instances cannot both see it free.
pub async fn try_take(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    job_id: i64,
    mode: Mode,
    now_ms: i64,
) -> sqlx::Result<Vec<(i64, String)>> {
    if backend == Backend::Postgres {
        sqlx::query("LOCK TABLE repository_use IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut **tx)
            .await?;
    }
    // A job's use ends when the job does; a use outside any job (an import, negative ids) is
    // given back by its own code, or taken as stale after NON_JOB_STALE_MS (its process died).
    sqlx::query(
        "DELETE FROM repository_use WHERE (job_id > 0 AND job_id NOT IN (SELECT id FROM job WHERE state = 'running'))
             OR (job_id < 0 AND since < $1)",
    )
    .bind(now_ms - NON_JOB_STALE_MS)
    .execute(&mut **tx)
    .await?;
    let others: Vec<(i64, String)> = sqlx::query_as("SELECT job_id, mode FROM repository_use WHERE job_id <> $1")
        .bind(job_id)
        .fetch_all(&mut **tx)
        .await?;
    let conflicts: Vec<(i64, String)> = others
        .into_iter()
        .filter(|(_, other)| mode == Mode::Prune || other == Mode::Prune.as_str())
        .collect();
    if conflicts.is_empty() {
        sqlx::query(
            "INSERT INTO repository_use (job_id, mode, since) VALUES ($1, $2, $3)
             ON CONFLICT (job_id) DO UPDATE SET mode = $2, since = $3",
        )
        .bind(job_id)
        .bind(mode.as_str())
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(conflicts)
}

/// Gives the repository back.
pub async fn release<'e>(executor: impl sqlx::Executor<'e, Database = Any>, job_id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM repository_use WHERE job_id = $1")
        .bind(job_id)
        .execute(executor)
        .await?;
    Ok(())
}
