use leptos::prelude::*;

use crate::{error::AppError, types::NotificationHistory};

/// The delivery history, newest first, filtered (empty filters match everything) and paged by
/// `before` (a notification id). Admins.
#[server(prefix = "/api", endpoint = "notifications/list")]
pub async fn list_notifications(
    #[server(default)] environment: String,
    #[server(default)] kind: String,
    #[server(default)] state: String,
    #[server(default)] target: String,
    #[server(default)] before: Option<i64>,
) -> Result<NotificationHistory, AppError> {
    const PAGE: i64 = 50;
    crate::api::guard::require(engine::users::Role::Admin).await?;
    let engine = crate::api::engine()?;
    if !matches!(state.as_str(), "" | "pending" | "delivered" | "failed") {
        return Err(AppError::invalid("state", "Choose pending, delivered or failed."));
    }
    let filter = engine::notifications::NotificationFilter {
        environment,
        kind,
        state,
        target,
    };
    let mut entries = engine.notification_history(&filter, before, PAGE + 1).await?;
    let older = (entries.len() > PAGE as usize).then(|| {
        entries.truncate(PAGE as usize);
        entries.last().map(|n| n.id)
    });
    Ok(NotificationHistory {
        entries: entries.into_iter().map(Into::into).collect(),
        older: older.flatten(),
    })
}
