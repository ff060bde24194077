use leptos::prelude::*;

use crate::{error::AppError, types::JobSummary};

/// Undo of a failed, cancelled or interrupted restore `id`: queues a restore of its safety
/// backup (`reason` may be empty) and returns that job. Operators and admins. Without
/// JavaScript the browser is sent on to the new job's page.
#[server(prefix = "/api", endpoint = "restores/undo")]
pub async fn undo_restore(id: i64, #[server(default)] reason: String) -> Result<JobSummary, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Operator).await?;
    let job = crate::api::engine()?.request_undo(&caller.actor, id, &reason).await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{}", job.id)).await;
    Ok(job.into())
}
