use leptos::prelude::*;

use crate::{error::AppError, types::JobSummary};

/// Runs a failed, cancelled or interrupted job again as a new job linked to it. Operators and
/// admins. On a production environment `confirm` must repeat the environment's name, as when
/// the job was first started.
#[server(prefix = "/api", endpoint = "jobs/retry")]
pub async fn retry_job(
    id: i64,
    #[server(default)] reason: String,
    #[server(default)] confirm: String,
) -> Result<JobSummary, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Operator).await?;
    let engine = crate::api::engine()?;
    let old = engine
        .job(id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Job #{id}")))?;
    if let Some(env) = engine.config().environment(&old.environment)
        && env.production
        && confirm.trim() != env.name
    {
        return Err(AppError::invalid(
            "confirm",
            format!(
                "{} is a production environment: type its name, {}, to confirm.",
                env.label, env.name
            ),
        ));
    }
    let job = engine.retry_job(&caller.actor, id, &reason).await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{}", job.id)).await;
    Ok(job.into())
}
