use leptos::prelude::*;

use crate::{error::AppError, types::JobSummary};

/// Queues one of an environment's configured actions. Operators and admins. On a production
/// environment `confirm` must repeat the environment's name. Without JavaScript the browser
/// is sent on to the new job's page.
#[server(prefix = "/api", endpoint = "jobs/start_command")]
pub async fn start_command(
    environment: String,
    action: String,
    reason: String,
    #[server(default)] confirm: String,
) -> Result<JobSummary, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Operator).await?;
    let engine = crate::api::engine()?;
    let env = engine
        .config()
        .environment(&environment)
        .ok_or_else(|| AppError::not_found(format!("Environment \"{environment}\"")))?;
    if env.production && confirm.trim() != environment {
        return Err(AppError::invalid(
            "confirm",
            format!(
                "{} is a production environment: type its name, {environment}, to confirm.",
                env.label
            ),
        ));
    }
    let request = engine::jobs::JobRequest {
        environment,
        spec: engine::jobs::JobSpec::new(engine::kinds::command::Command { action }),
        reason,
        parent_id: None,
    };
    let job = engine.request_job(&caller.actor, request).await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{}", job.id)).await;
    Ok(job.into())
}
