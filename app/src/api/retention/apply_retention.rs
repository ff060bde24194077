use leptos::prelude::*;

use crate::{error::AppError, types::JobSummary};

/// Applies the environment's retention rules now: queues a `prune` job that removes what the
/// preview marks "remove", each removal audited. Admins. Without JavaScript the browser is
/// sent to the job's page.
#[server(prefix = "/api", endpoint = "retention/apply")]
pub async fn apply_retention(environment: String) -> Result<JobSummary, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    let job = crate::api::engine()?
        .request_prune(&caller.actor, &environment, false)
        .await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{}", job.id)).await;
    Ok(job.into())
}
