use leptos::prelude::*;

use crate::error::AppError;

/// Cancels a queued job, or stops a running one (it ends `cancelled` once its program has
/// stopped). Operators and admins.
#[server(prefix = "/api", endpoint = "jobs/cancel")]
pub async fn cancel_job(id: i64) -> Result<(), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Operator).await?;
    crate::api::engine()?.cancel_job(&caller.actor, id).await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{id}")).await;
    Ok(())
}
