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
    pub environment: Option<String>,
    pub outcome: String,
    /// The detail object as compact JSON text.
    pub detail: String,
}

impl AuditEntry {
    /// The page of what the event is about: its job, backup, user or environment.
    pub fn subject_href(&self) -> Option<String> {
        let target = self.target.as_deref().filter(|t| !t.is_empty());
        let family = self.action.split('.').next().unwrap_or_default();
        let numeric = target.filter(|t| t.bytes().all(|b| b.is_ascii_digit()));
        match (family, target) {
            ("job" | "restore", _) if numeric.is_some() => numeric.map(|id| format!("/jobs/{id}")),
            ("backup", Some(id)) => Some(format!("/backups/{}", encode(id))),
            ("user" | "login" | "logout", Some(name)) => Some(format!("/users#user-{}", encode(name))),
            _ => self
                .environment
                .as_deref()
                .map(|env| format!("/environments/{}", encode(env))),
        }
    }
}

/// The audit page's filter as it stands in the address (`/audit?actor=alice&action=restore.*`):
/// every field a plain string as typed, so a shared link or a form sent without JavaScript
/// reads back the same. Dates are UTC days, `to` included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    pub from: String,
    pub to: String,
    pub actor: String,
    pub action: String,
    pub environment: String,
    pub outcome: String,
    pub target: String,
    pub q: String,
    /// The paging cursor: only events older than this id.
    pub before: Option<i64>,
}

impl AuditQuery {
    /// The keys of the address, in the order the form shows them.
    pub const KEYS: [&'static str; 8] = ["from", "to", "actor", "action", "environment", "outcome", "target", "q"];

    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> AuditQuery {
        let value = |key: &str| get(key).unwrap_or_default();
        AuditQuery {
            from: value("from"),
            to: value("to"),
            actor: value("actor"),
            action: value("action"),
            environment: value("environment"),
            outcome: value("outcome"),
            target: value("target"),
            q: value("q"),
            before: get("before").and_then(|b| b.parse().ok()),
        }
    }

    fn values(&self) -> [(&'static str, &str); 8] {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("actor", &self.actor),
            ("action", &self.action),
            ("environment", &self.environment),
            ("outcome", &self.outcome),
            ("target", &self.target),
            ("q", &self.q),
        ]
    }

    /// The filter (no cursor) as an encoded query string, empty when nothing filters.
    pub fn query_string(&self) -> String {
        self.values()
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// `path` with this filter (no cursor), e.g. the export links.
    pub fn href(&self, path: &str) -> String {
        match self.query_string() {
            q if q.is_empty() => path.to_string(),
            q => format!("{path}?{q}"),
        }
    }

    /// The next page: this filter, events older than `before`.
    pub fn older(&self, before: i64) -> String {
        match self.query_string() {
            q if q.is_empty() => format!("/audit?before={before}"),
            q => format!("/audit?{q}&before={before}"),
        }
    }

    pub fn is_filtered(&self) -> bool {
        !self.query_string().is_empty()
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a value in an address.
/// Written here rather than pulling a URL crate into the browser bundle for one function.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The last walk of the audit log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheck {
    pub at_ms: i64,
    pub ok: bool,
    pub checked: i64,
    pub head_id: Option<i64>,
    /// The first problem found, naming the event.
    pub problem: Option<String>,
    /// `steward` (the hourly check), `cli`, or a username.
    pub by: String,
}

/// A page of the audit log under a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub events: Vec<AuditEntry>,
    /// The cursor of the next (older) page; `None` on the last.
    pub older: Option<i64>,
    /// A text search that stopped at its window before the oldest event: the id it read back
    /// to (the "older" page goes on from there).
    pub searched_to: Option<i64>,
    pub chain: Option<ChainCheck>,
    /// The configured environments, for the filter's choices.
    pub environments: Vec<String>,
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::error::AppError;

    impl From<engine::audit::Event> for AuditEntry {
        fn from(event: engine::audit::Event) -> Self {
            AuditEntry {
                id: event.id,
                at_ms: event.at_ms,
                actor: event.actor,
                client_ip: event.client_ip,
                action: event.action,
                target: event.target,
                environment: event.environment,
                outcome: event.outcome.as_str().to_string(),
                detail: if event.detail == serde_json::json!({}) {
                    String::new()
                } else {
                    event.detail.to_string()
                },
            }
        }
    }

    impl From<engine::audit::chain::Verification> for ChainCheck {
        fn from(v: engine::audit::chain::Verification) -> Self {
            ChainCheck {
                at_ms: v.at_ms,
                ok: v.ok,
                checked: v.checked,
                head_id: v.head_id,
                problem: v.problem,
                by: v.by,
            }
        }
    }

    impl AuditQuery {
        /// The engine's filter; a date or outcome that does not parse is refused naming its field.
        pub fn to_filter(&self) -> Result<engine::audit::Filter, AppError> {
            let day = |field: &str, value: &str| -> Result<Option<i64>, AppError> {
                let value = value.trim();
                if value.is_empty() {
                    return Ok(None);
                }
                engine::text::utc_day_start_ms(value)
                    .map(Some)
                    .ok_or_else(|| AppError::Invalid {
                        field: field.into(),
                        message: format!("“{value}” is not a date like 2026-12-01."),
                    })
            };
            let text = |value: &str| Some(value.trim().to_string()).filter(|v| !v.is_empty());
            let outcome = match self.outcome.trim() {
                "" => None,
                name => Some(
                    engine::audit::Outcome::from_name(name).ok_or_else(|| AppError::Invalid {
                        field: "outcome".into(),
                        message: format!("“{name}” is not an outcome: ok, refused or failed."),
                    })?,
                ),
            };
            const DAY_MS: i64 = 24 * 3600 * 1000;
            Ok(engine::audit::Filter {
                from_ms: day("from", &self.from)?,
                until_ms: day("to", &self.to)?.map(|start| start + DAY_MS),
                actor: text(&self.actor),
                action: text(&self.action),
                environment: text(&self.environment),
                outcome,
                target: text(&self.target),
                text: text(&self.q),
                through_id: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_round_trips_through_the_address() {
        let query = AuditQuery {
            action: "restore.*".into(),
            q: "50% done & more".into(),
            ..AuditQuery::default()
        };
        assert_eq!(
            query.href("/audit"),
            "/audit?action=restore.%2A&q=50%25%20done%20%26%20more"
        );
        assert_eq!(
            query.older(40),
            "/audit?action=restore.%2A&q=50%25%20done%20%26%20more&before=40"
        );
        assert_eq!(AuditQuery::default().older(40), "/audit?before=40");
    }

    #[test]
    fn events_link_what_they_are_about() {
        let entry = |action: &str, target: &str, environment: Option<&str>| AuditEntry {
            id: 1,
            at_ms: 0,
            actor: None,
            client_ip: None,
            action: action.into(),
            target: Some(target.into()),
            environment: environment.map(Into::into),
            outcome: "ok".into(),
            detail: String::new(),
        };
        assert_eq!(
            entry("restore.start", "12", Some("prod")).subject_href().as_deref(),
            Some("/jobs/12")
        );
        assert_eq!(
            entry("backup.pin", "prod-1", Some("prod")).subject_href().as_deref(),
            Some("/backups/prod-1")
        );
        assert_eq!(
            entry("login", "alice", None).subject_href().as_deref(),
            Some("/users#user-alice")
        );
        assert_eq!(
            entry("maintenance.on", "prod", Some("prod")).subject_href().as_deref(),
            Some("/environments/prod")
        );
        assert_eq!(entry("access.refused", "/jobs", None).subject_href(), None);
    }
}
