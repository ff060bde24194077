use leptos::prelude::*;

use crate::{error::AppError, types::JobSummary};

/// Queues a restore of backup `backup_id` and returns its job. Operators and admins, who must
/// give a reason and type the environment's name (`confirm_environment`); a production
/// environment also needs `confirm_production`. The engine checks all of it and audits a
/// refusal. Without JavaScript the browser is sent on to the new job's page.
#[server(prefix = "/api", endpoint = "restores/start")]
pub async fn start_restore(
    backup_id: String,
    #[server(default)] reason: String,
    #[server(default)] confirm_environment: String,
    #[server(default)] confirm_production: bool,
) -> Result<JobSummary, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Operator).await?;
    let request = engine::restores::RestoreRequest {
        backup_id,
        reason,
        confirm_environment,
        confirm_production,
    };
    let job = crate::api::engine()?.request_restore(&caller.actor, &request).await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{}", job.id)).await;
    Ok(job.into())
}
