use serde::{Deserialize, Serialize};

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: Option<String>,
    pub client_ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    /// The detail object as compact JSON text.
    pub detail: String,
}

#[cfg(feature = "ssr")]
impl From<engine::audit::Event> for AuditEntry {
    fn from(event: engine::audit::Event) -> Self {
        AuditEntry {
            id: event.id,
            at_ms: event.at_ms,
            actor: event.actor,
            client_ip: event.client_ip,
            action: event.action,
            target: event.target,
            outcome: event.outcome.as_str().to_string(),
            detail: if event.detail == serde_json::json!({}) {
                String::new()
            } else {
                event.detail.to_string()
            },
        }
    }
}
