use leptos::prelude::*;

use crate::{error::AppError, types::EnvironmentActivity};

/// An environment's actions, its unacknowledged interrupted jobs and its latest jobs.
#[server(prefix = "/api", endpoint = "jobs/environment_activity")]
pub async fn get_environment_activity(environment: String) -> Result<EnvironmentActivity, AppError> {
    use crate::types::ActionSummary;
    /// Recent jobs shown on an environment's page.
    const RECENT: i64 = 10;

    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    let env = engine
        .config()
        .environment(&environment)
        .ok_or_else(|| AppError::not_found(format!("Environment \"{environment}\"")))?;
    let actions = env
        .actions
        .iter()
        .map(|(name, action)| ActionSummary {
            name: name.clone(),
            label: action.label.clone(),
            exclusive: action.exclusive,
        })
        .collect();
    let interrupted = engine.interrupted_jobs(&environment).await?;
    let filter = engine::jobs::JobFilter {
        environment: Some(environment.clone()),
        ..Default::default()
    };
    let recent = engine.jobs(&filter, None, RECENT).await?;
    Ok(EnvironmentActivity {
        actions,
        interrupted: interrupted.into_iter().map(Into::into).collect(),
        recent: recent.into_iter().map(Into::into).collect(),
    })
}
