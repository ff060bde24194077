use leptos::prelude::*;

use crate::{error::AppError, types::EnvironmentHealth};

/// Every environment's status at a glance, for the dashboard.
#[server(prefix = "/api", endpoint = "environments/dashboard")]
pub async fn get_dashboard() -> Result<Vec<EnvironmentHealth>, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    let now = engine::db::now_ms();
    let mut all = Vec::new();
    for env in &engine.config().environments {
        all.push(EnvironmentHealth::new(engine.health(&env.name).await?, now));
    }
    Ok(all)
}
