use leptos::prelude::*;

use crate::{error::AppError, types::ScheduleSummary};

/// An environment's schedules with their next runs and latest slots.
#[server(prefix = "/api", endpoint = "schedules/list")]
pub async fn list_schedules(environment: String) -> Result<Vec<ScheduleSummary>, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    let env = engine
        .config()
        .environment(&environment)
        .ok_or_else(|| AppError::not_found(format!("Environment \"{environment}\"")))?;
    let tz = env.tz();
    let now = engine::db::now_ms();
    Ok(engine
        .schedules(Some(&environment))
        .await?
        .into_iter()
        .map(|status| ScheduleSummary::new(status, tz, now))
        .collect())
}
