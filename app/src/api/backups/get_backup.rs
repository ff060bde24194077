use leptos::prelude::*;

use crate::{error::AppError, types::BackupDetail};

/// One backup with its manifest: artifacts, checksums, facts, its last test restores; and its
/// environment's maintenance mode, which the backup's page announces.
#[server(prefix = "/api", endpoint = "backups/get")]
pub async fn get_backup(id: String) -> Result<BackupDetail, AppError> {
    use crate::types::EnvironmentSummary;

    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    let backup = engine
        .backup(&id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Backup \"{id}\"")))?;
    let environment = engine
        .config()
        .environment(&backup.environment)
        .map(EnvironmentSummary::from);
    let maintenance = engine.maintenance(&backup.environment).await?.map(Into::into);
    let test_restores = engine.test_restores(&backup.id, 10).await?;
    let pin = engine.pin_of(&backup.id).await?;
    Ok(BackupDetail {
        pin: pin.map(|pin| (pin.by, pin.at_ms, pin.reason)),
        ..BackupDetail::new(backup, environment, maintenance, &test_restores)
    })
}
