use leptos::prelude::*;

use crate::error::AppError;

/// Pauses (`pause = true`) or resumes a schedule, with a reason; audited. Admins. Without
/// JavaScript the browser is sent back to the environment's page.
#[server(prefix = "/api", endpoint = "schedules/pause")]
pub async fn pause_schedule(
    environment: String,
    name: String,
    pause: bool,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    let engine = crate::api::engine()?;
    if pause {
        engine
            .pause_schedule(&caller.actor, &environment, &name, &reason)
            .await?;
    } else {
        engine
            .resume_schedule(&caller.actor, &environment, &name, &reason)
            .await?;
    }
    crate::api::guard::redirect_plain_form(&format!("/environments/{environment}")).await;
    Ok(())
}
