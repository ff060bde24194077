//! The `maintenance` table: which environments are in maintenance mode. The rules live in
//! [`crate::maintenance`].

use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct MaintenanceRow {
    pub environment: String,
    pub since: i64,
    pub entered_by: String,
    pub reason: String,
    pub hook_state: String,
    pub job_id: Option<i64>,
}

/// Records that `environment` is in maintenance. Fails with a unique violation if it already is.
pub async fn insert<'e>(executor: impl Executor<'e, Database = Any>, row: &MaintenanceRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO maintenance (environment, since, entered_by, reason, hook_state, job_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&row.environment)
    .bind(row.since)
    .bind(&row.entered_by)
    .bind(&row.reason)
    .bind(&row.hook_state)
    .bind(row.job_id)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn get<'e>(
    executor: impl Executor<'e, Database = Any>,
    environment: &str,
) -> sqlx::Result<Option<MaintenanceRow>> {
    sqlx::query_as(
        "SELECT environment, since, entered_by, reason, hook_state, job_id FROM maintenance WHERE environment = $1",
    )
    .bind(environment)
    .fetch_optional(executor)
    .await
}

pub async fn delete<'e>(executor: impl Executor<'e, Database = Any>, environment: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM maintenance WHERE environment = $1")
        .bind(environment)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}
