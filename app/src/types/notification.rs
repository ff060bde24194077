use serde::{Deserialize, Serialize};

/// A notification target as the console shows it: where it delivers, never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationTarget {
    pub name: String,
    /// `webhook`, `slack` or `email`.
    pub kind: String,
    pub destination: String,
}

/// A routing rule: events passing its filters go to its targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRule {
    pub targets: Vec<String>,
    /// Empty: every environment.
    pub environments: Vec<String>,
    pub min_severity: Option<String>,
}

/// The Notifications page's configuration part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    pub targets: Vec<NotificationTarget>,
    /// Empty: every event goes to every target.
    pub rules: Vec<NotificationRule>,
    pub flap_window_minutes: u32,
    pub maintenance_alert_minutes: u32,
    pub max_attempts: u32,
    /// The kinds of notification, for the history's filter.
    pub kinds: Vec<String>,
}

/// One notification and how each of its deliveries went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEntry {
    pub id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub environment: Option<String>,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub recovery: bool,
    pub summary: String,
    pub detail: Option<String>,
    /// The console page that explains it.
    pub link: String,
    pub deliveries: Vec<NotificationDelivery>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationDelivery {
    pub target: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// A page of the history, newest first; `older` is the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationHistory {
    pub entries: Vec<NotificationEntry>,
    pub older: Option<i64>,
}

/// How a test notification went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestNotificationResult {
    pub target: String,
    pub notification_id: i64,
    /// `None`: delivered.
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[cfg(feature = "ssr")]
impl From<engine::notifications::Notification> for NotificationEntry {
    fn from(n: engine::notifications::Notification) -> Self {
        NotificationEntry {
            id: n.id,
            at_ms: n.at_ms,
            kind: n.kind,
            environment: n.environment,
            severity: n.severity,
            recovery: n.recovery,
            summary: n.summary,
            detail: n.detail,
            link: n.link,
            deliveries: n
                .deliveries
                .into_iter()
                .map(|d| NotificationDelivery {
                    target: d.target,
                    state: d.state,
                    attempts: d.attempts,
                    next_attempt_ms: d.next_attempt_ms,
                    last_error: d.last_error,
                })
                .collect(),
        }
    }
}
