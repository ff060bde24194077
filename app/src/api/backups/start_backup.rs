use leptos::prelude::*;

use crate::{error::AppError, types::JobSummary};

/// Queues a backup of every resource of `environment`, described by `description` (may be
/// empty), and returns its job. Operators and admins. Refused while another job has the
/// environment. Without JavaScript the browser is sent on to the new job's page.
#[server(prefix = "/api", endpoint = "backups/start")]
pub async fn start_backup(environment: String, #[server(default)] description: String) -> Result<JobSummary, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Operator).await?;
    let job = crate::api::engine()?
        .request_backup(&caller.actor, &environment, &description, engine::jobs::Trigger::Manual)
        .await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{}", job.id)).await;
    Ok(job.into())
}
