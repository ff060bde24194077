use leptos::prelude::*;

use crate::{error::AppError, types::NotificationEntry};

/// An environment's latest notifications (problems and recoveries), newest first, without
/// delivery details. Everyone signed in: what went wrong is no secret to the people who look
/// after it.
#[server(prefix = "/api", endpoint = "notifications/recent")]
pub async fn recent_alerts(environment: String) -> Result<Vec<NotificationEntry>, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    if engine.config().environment(&environment).is_none() {
        return Err(AppError::not_found(format!("Environment \"{environment}\"")));
    }
    let filter = engine::notifications::NotificationFilter {
        environment,
        ..Default::default()
    };
    Ok(engine
        .notification_history(&filter, None, 5)
        .await?
        .into_iter()
        .map(|n| NotificationEntry {
            deliveries: Vec::new(),
            ..n.into()
        })
        .collect())
}
