use leptos::prelude::*;

use crate::{error::AppError, types::FailedRestore};

/// The environment's failed, cancelled or interrupted restores that nobody has undone, retried
/// or acknowledged yet, newest first, each with its safety backup.
#[server(prefix = "/api", endpoint = "restores/failed")]
pub async fn list_failed_restores(environment: String) -> Result<Vec<FailedRestore>, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    if engine.config().environment(&environment).is_none() {
        return Err(AppError::not_found(format!("Environment \"{environment}\"")));
    }
    let failed = engine.failed_restores(&environment).await?;
    Ok(failed.into_iter().map(Into::into).collect())
}
