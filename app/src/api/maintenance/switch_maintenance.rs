use leptos::prelude::*;

use crate::{error::AppError, types::JobSummary};

/// Puts the environment into maintenance (`on`) or takes it out, by hand, with a reason: queues
/// a `maintenance` job that runs its `enter` or `leave` hook and records the mode, audited, and
/// returns the job at once. Admins. Refused while a job holds the environment. Without
/// JavaScript the browser is sent to the job's page.
#[server(prefix = "/api", endpoint = "maintenance/switch")]
pub async fn switch_maintenance(
    environment: String,
    on: bool,
    #[server(default)] reason: String,
) -> Result<JobSummary, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    let job = crate::api::engine()?
        .switch_maintenance(&caller.actor, &environment, on, &reason)
        .await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{}", job.id)).await;
    Ok(job.into())
}
