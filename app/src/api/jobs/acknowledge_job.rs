use leptos::prelude::*;

use crate::error::AppError;

/// Dismisses an interrupted job's banner without running it again: someone has looked at the
/// environment. Operators and admins.
#[server(prefix = "/api", endpoint = "jobs/acknowledge")]
pub async fn acknowledge_job(id: i64) -> Result<(), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Operator).await?;
    crate::api::engine()?.acknowledge_job(&caller.actor, id).await?;
    crate::api::guard::redirect_plain_form(&format!("/jobs/{id}")).await;
    Ok(())
}
