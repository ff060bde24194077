use leptos::prelude::*;

use crate::{error::AppError, types::EnvironmentBackupStatus};

/// What an environment's backups capture, its latest backup, and whether that is older than
/// the configured expectation (`backup_expected_within_hours`).
#[server(prefix = "/api", endpoint = "backups/status")]
pub async fn get_backup_status(environment: String) -> Result<EnvironmentBackupStatus, AppError> {
    use crate::types::{BackupSummary, ResourceSummary, is_overdue};

    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    let env = engine
        .config()
        .environment(&environment)
        .ok_or_else(|| AppError::not_found(format!("Environment \"{environment}\"")))?;
    let resources = env
        .resources
        .iter()
        .map(|(name, resource)| ResourceSummary {
            name: name.clone(),
            driver: resource.driver().to_string(),
        })
        .collect();
    let latest = engine.latest_backup(&environment).await?;
    let now = engine::db::now_ms();
    let expected_within_hours = env.backup_expected_within_hours;
    Ok(EnvironmentBackupStatus {
        resources,
        overdue: is_overdue(latest.as_ref().map(|b| b.created_at_ms), expected_within_hours, now),
        latest: latest.as_ref().map(BackupSummary::from),
        expected_within_hours,
        as_of_ms: now,
    })
}
