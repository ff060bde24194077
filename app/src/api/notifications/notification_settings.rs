use leptos::prelude::*;

use crate::{error::AppError, types::NotificationSettings};

/// The notification targets (without their secrets) and rules. Admins.
#[server(prefix = "/api", endpoint = "notifications/settings")]
pub async fn get_notification_settings() -> Result<NotificationSettings, AppError> {
    crate::api::guard::require(engine::users::Role::Admin).await?;
    let engine = crate::api::engine()?;
    let config = &engine.config().notifications;
    Ok(NotificationSettings {
        targets: engine
            .notification_targets()
            .into_iter()
            .map(|t| crate::types::NotificationTarget {
                name: t.name,
                kind: t.kind.to_string(),
                destination: t.destination,
            })
            .collect(),
        rules: config
            .rules
            .iter()
            .map(|rule| crate::types::NotificationRule {
                targets: rule.targets.clone(),
                environments: rule.environments.clone(),
                min_severity: rule.min_severity.map(|s| s.as_str().to_string()),
            })
            .collect(),
        flap_window_minutes: config.flap_window_minutes,
        maintenance_alert_minutes: config.maintenance_alert_minutes,
        max_attempts: config.max_attempts,
        kinds: engine::notifications::Kind::ALL
            .iter()
            .map(|kind| kind.as_str().to_string())
            .collect(),
    })
}
