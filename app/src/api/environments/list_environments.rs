use leptos::prelude::*;

use crate::{error::AppError, types::EnvironmentSummary};

/// All configured environments, in the order of the configuration file.
#[server(prefix = "/api", endpoint = "environments/list")]
pub async fn list_environments() -> Result<Vec<EnvironmentSummary>, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    Ok(engine
        .config()
        .environments
        .iter()
        .map(EnvironmentSummary::from)
        .collect())
}
