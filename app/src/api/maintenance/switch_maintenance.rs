use leptos::prelude::*;

use crate::{error::AppError, types::MaintenanceSwitch};

/// Puts the environment into maintenance (`on`) or takes it out, by hand, with a reason: runs
/// its `enter` or `leave` hook and records the mode, audited. Admins. Refused while a job holds
/// the environment. Without JavaScript the browser is sent back to the environment's page.
#[server(prefix = "/api", endpoint = "maintenance/switch")]
pub async fn switch_maintenance(
    environment: String,
    on: bool,
    #[server(default)] reason: String,
) -> Result<MaintenanceSwitch, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    let switched = crate::api::engine()?
        .switch_maintenance(&caller.actor, &environment, on, &reason)
        .await?;
    crate::api::guard::redirect_plain_form(&format!("/environments/{environment}")).await;
    Ok(switched.into())
}
