use leptos::prelude::*;

use crate::{error::AppError, types::MaintenanceState};

/// The environment's maintenance mode, if it is in it.
#[server(prefix = "/api", endpoint = "maintenance/get")]
pub async fn get_maintenance(environment: String) -> Result<Option<MaintenanceState>, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    if engine.config().environment(&environment).is_none() {
        return Err(AppError::not_found(format!("Environment \"{environment}\"")));
    }
    Ok(engine.maintenance(&environment).await?.map(Into::into))
}
