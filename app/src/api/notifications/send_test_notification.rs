use leptos::prelude::*;

use crate::{error::AppError, types::TestNotificationResult};

/// Sends a test notification to `target` now and says how it went (it also shows in the
/// history); audited. Admins. Without JavaScript the browser is sent back to the history.
#[server(prefix = "/api", endpoint = "notifications/test")]
pub async fn send_test_notification(target: String) -> Result<TestNotificationResult, AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    let engine = crate::api::engine()?;
    let result = engine.send_test_notification(&caller.actor, &target).await?;
    crate::api::guard::redirect_plain_form(&format!("/notifications?target={target}")).await;
    Ok(TestNotificationResult {
        target,
        notification_id: result.notification_id,
        error: result.error,
        duration_ms: result.duration_ms,
    })
}
