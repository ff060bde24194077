use leptos::prelude::*;

use crate::{error::AppError, types::JobSummary};

/// Runs a schedule's job now (its own times are unaffected); audited. Admins. Without
/// JavaScript the browser is sent to the job's page.
#[server(prefix = "/api", endpoint = "schedules/run")]
pub async fn run_schedule(environment: String, name: String) -> Result<JobSummary, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    let job = crate::api::engine()?
        .run_schedule_now(&caller.actor, &environment, &name)
        .await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{}", job.id)).await;
    Ok(job.into())
}
