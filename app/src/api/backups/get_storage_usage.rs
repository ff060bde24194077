use leptos::prelude::*;

use crate::{error::AppError, types::EnvironmentStorage};

/// The space an environment's backups take in the repository and what they would take as full
/// copies; a repository that cannot be read is said in `problem` (the page still shows the
/// backups, which come from the catalog).
#[server(prefix = "/api", endpoint = "backups/storage")]
pub async fn get_storage_usage(environment: String) -> Result<EnvironmentStorage, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    if engine.config().environment(&environment).is_none() {
        return Err(AppError::not_found(format!("Environment \"{environment}\"")));
    }
    let upload_limit_bytes = engine.config().storage.upload_limit_bytes();
    Ok(match engine.storage_usage().await {
        Ok(usage) => {
            let mine = usage.environments.into_iter().find(|e| e.environment == environment);
            EnvironmentStorage {
                location: usage.location,
                backups: mine.as_ref().map_or(0, |e| e.backups as u64),
                full_bytes: mine.as_ref().map_or(0, |e| e.full_bytes),
                stored_bytes: mine.as_ref().map_or(0, |e| e.stored_bytes),
                repository_bytes: usage.repository_bytes,
                upload_limit_bytes,
                problem: None,
            }
        }
        Err(e) => EnvironmentStorage {
            location: engine.repository_location(),
            upload_limit_bytes,
            problem: Some(e.to_string()),
            ..EnvironmentStorage::default()
        },
    })
}
