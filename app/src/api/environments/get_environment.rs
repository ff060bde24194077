use leptos::prelude::*;

use crate::{error::AppError, types::EnvironmentSummary};

/// One environment by its name.
#[server(prefix = "/api", endpoint = "environments/get")]
pub async fn get_environment(name: String) -> Result<EnvironmentSummary, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    engine
        .config()
        .environment(&name)
        .map(EnvironmentSummary::from)
        .ok_or_else(|| AppError::not_found(format!("Environment \"{name}\"")))
}
