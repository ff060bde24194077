//! `[notifications]`: where Steward sends what goes wrong (targets), which events go where
//! (rules), and how often a condition that keeps coming back may notify (the flap window).
//!
//! ```toml
//! [notifications]
//! console_url = "https://steward.example.com"
//!
//! [notifications.targets.ops-mail]
//! type = "email"
//! host = "smtp.example.com"
//! username = "steward"
//! password = { env = "SMTP_PASSWORD" }
//! from = "Steward <steward@example.com>"
//! to = ["ops@example.com"]
//!
//! [[notifications.rules]]
//! targets = ["ops-mail"]
//! environments = ["prod"]
//! min_severity = "warning"
//! ```
//!
//! Without any `[[notifications.rules]]`, every event goes to every target: a target that was
//! configured and then heard nothing would be a surprise.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use crate::config::{SecretHeader, SecretSource};

/// How bad an event is; rules pick events by it. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Test notifications and nothing-is-wrong news.
    Info,
    /// Needs a look soon: a cleanup action failed, a user was locked out, maintenance is long.
    Warning,
    /// Backups are not being made or proven, or a restore failed: someone must act.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[notifications]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// The address people open Steward at, e.g. `https://steward.example.com`: the links in
    /// notifications start with it. Default: `http://` + `server.listen`.
    pub console_url: Option<String>,
    /// Where notifications go, keyed by the target's name.
    pub targets: BTreeMap<String, Target>,
    /// Which events go to which targets. None: every event to every target.
    pub rules: Vec<Rule>,
    /// A condition that keeps coming back (a backup failing, succeeding, failing again) notifies
    /// at most once per this many minutes; the next notification says how often it came back.
    pub flap_window_minutes: u32,
    /// An environment in maintenance for longer than this many minutes notifies (0: never).
    pub maintenance_alert_minutes: u32,
    /// How often a delivery is tried before it is recorded as failed.
    pub max_attempts: u32,
    /// The wait after the first failed attempt, in seconds; it doubles after each further
    /// failure, up to an hour.
    pub retry_seconds: u32,
    /// How long one attempt may take (connecting, sending, the answer), in seconds.
    pub timeout_seconds: u32,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            console_url: None,
            targets: BTreeMap::new(),
            rules: Vec::new(),
            flap_window_minutes: 60,
            maintenance_alert_minutes: 120,
            max_attempts: 10,
            retry_seconds: 30,
            timeout_seconds: 30,
        }
    }
}

/// `[notifications.targets.NAME]`: one place notifications are delivered to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Target {
    /// A POST of the notification as JSON (the body is documented in the README).
    Webhook {
        url: String,
        /// A header that proves the request comes from Steward, e.g.
        /// `{ name = "X-Steward-Token", value = { env = "HOOK_TOKEN" } }`.
        #[serde(default)]
        secret_header: Option<SecretHeader>,
    },
    /// A Slack (or Mattermost, Rocket.Chat) incoming webhook. Its URL is the secret.
    Slack { url: SecretSource },
    /// Mail through an SMTP server.
    Email {
        host: String,
        /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        security: SmtpSecurity,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<SecretSource>,
        /// The sender, e.g. `Steward <steward@example.com>`.
        from: String,
        to: Vec<String>,
    },
}

/// How the connection to an SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same machine or network (port 25).
    None,
}

impl SmtpSecurity {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Webhook { .. } => "webhook",
            Target::Slack { .. } => "slack",
            Target::Email { .. } => "email",
        }
    }

    /// Where it delivers, as the console may show it: no secret, no query string, no password.
    pub fn destination(&self) -> String {
        match self {
            Target::Webhook { url, secret_header } => {
                let shown = url::Url::parse(url)
                    .map(|u| crate::http_client::shown(&u))
                    .unwrap_or_else(|_| "(invalid URL)".into());
                match secret_header {
                    Some(header) => format!("POST {shown} (with header {})", header.name),
                    None => format!("POST {shown}"),
                }
            }
            Target::Slack { url } => match url {
                SecretSource::Env(name) => format!("Slack webhook (URL from ${name})"),
                SecretSource::File(path) => format!("Slack webhook (URL from {})", path.display()),
                SecretSource::Written => "Slack webhook".into(),
            },
            Target::Email {
                host,
                port,
                security,
                to,
                ..
            } => format!(
                "mail to {} via {host}:{} ({})",
                to.join(", "),
                port.unwrap_or(security.default_port()),
                match security {
                    SmtpSecurity::Starttls => "STARTTLS",
                    SmtpSecurity::Tls => "TLS",
                    SmtpSecurity::None => "unencrypted",
                }
            ),
        }
    }

    /// The secrets this target reads, by their key under the target.
    pub fn secret_sources(&self) -> Vec<(&'static str, &SecretSource)> {
        match self {
            Target::Webhook { secret_header, .. } => secret_header
                .iter()
                .map(|h| ("secret_header.value", &h.value))
                .collect(),
            Target::Slack { url } => vec![("url", url)],
            Target::Email { password, .. } => password.iter().map(|p| ("password", p)).collect(),
        }
    }
}

/// `[[notifications.rules]]`: events that pass every filter given go to `targets`. A filter
/// left out lets everything through, so a rule with only `targets` sends them everything.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub targets: Vec<String>,
    /// Only events of these environments (events of no environment, e.g. a locked-out user,
    /// pass only a rule without this filter).
    #[serde(default)]
    pub environments: Vec<String>,
    /// Only events at least this bad. A recovery counts as bad as what it recovers from, so a
    /// target told of a failure is told when it is over.
    #[serde(default)]
    pub min_severity: Option<Severity>,
}

impl Rule {
    pub fn matches(&self, environment: Option<&str>, severity: Severity) -> bool {
        let environment_ok =
            self.environments.is_empty() || environment.is_some_and(|env| self.environments.iter().any(|e| e == env));
        environment_ok && self.min_severity.is_none_or(|min| severity >= min)
    }
}

impl NotificationsConfig {
    /// The targets an event of `environment` and `severity` goes to, each once, in name order.
    pub fn route(&self, environment: Option<&str>, severity: Severity) -> Vec<String> {
        if self.rules.is_empty() {
            return self.targets.keys().cloned().collect();
        }
        let mut names: Vec<String> = self
            .rules
            .iter()
            .filter(|rule| rule.matches(environment, severity))
            .flat_map(|rule| rule.targets.iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Checks what serde cannot; returns the offending key (under `notifications.`) and why.
    pub(crate) fn validate(&self, environments: &[&str]) -> Result<(), (String, String)> {
        if let Some(url) = &self.console_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err((
                "console_url".into(),
                "must start with http:// or https://, e.g. \"https://steward.example.com\"".into(),
            ));
        }
        for (key, value) in [
            ("max_attempts", self.max_attempts),
            ("retry_seconds", self.retry_seconds),
            ("timeout_seconds", self.timeout_seconds),
            ("flap_window_minutes", self.flap_window_minutes),
        ] {
            if value == 0 {
                return Err((key.into(), "must be at least 1".into()));
            }
        }
        for (name, target) in &self.targets {
            let key = |field: &str| format!("targets.{name}.{field}");
            if !crate::config::is_slug(name) {
                return Err((
                    "targets".into(),
                    format!(
                        "\"{name}\" is not a valid target name: use 1 to 32 lowercase letters, digits and '-', starting with a letter"
                    ),
                ));
            }
            for (field, source) in target.secret_sources() {
                if *source == SecretSource::Written {
                    return Err((key(field), crate::config::WRITTEN_SECRET.into()));
                }
            }
            match target {
                Target::Webhook { url, .. } => {
                    if !matches!(url::Url::parse(url), Ok(u) if u.scheme() == "http" || u.scheme() == "https") {
                        return Err((key("url"), "must be an http:// or https:// URL".into()));
                    }
                }
                Target::Slack { .. } => {}
                Target::Email { host, from, to, .. } => {
                    if host.trim().is_empty() {
                        return Err((key("host"), "must name the SMTP server".into()));
                    }
                    if let Err(e) = from.parse::<lettre::message::Mailbox>() {
                        return Err((
                            key("from"),
                            format!("\"{from}\" is not a mail address ({e}), e.g. \"Steward <steward@example.com>\""),
                        ));
                    }
                    if to.is_empty() {
                        return Err((key("to"), "must list at least one address".into()));
                    }
                    if let Some(bad) = to.iter().find(|a| a.parse::<lettre::message::Mailbox>().is_err()) {
                        return Err((key("to"), format!("\"{bad}\" is not a mail address")));
                    }
                }
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.targets.is_empty() {
                return Err((format!("rules[{i}].targets"), "must name at least one target".into()));
            }
            if let Some(unknown) = rule.targets.iter().find(|t| !self.targets.contains_key(*t)) {
                return Err((
                    format!("rules[{i}].targets"),
                    format!("there is no target \"{unknown}\" under [notifications.targets]"),
                ));
            }
            if let Some(unknown) = rule.environments.iter().find(|e| !environments.contains(&e.as_str())) {
                return Err((
                    format!("rules[{i}].environments"),
                    format!("there is no environment \"{unknown}\""),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(targets: &[&str], environments: &[&str], min: Option<Severity>) -> Rule {
        Rule {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            environments: environments.iter().map(|e| e.to_string()).collect(),
            min_severity: min,
        }
    }

    fn config(rules: Vec<Rule>) -> NotificationsConfig {
        let hook = Target::Webhook {
            url: "http://127.0.0.1:1/hook".into(),
            secret_header: None,
        };
        NotificationsConfig {
            targets: [("mail".to_string(), hook.clone()), ("chat".to_string(), hook)].into(),
            rules,
            ..Default::default()
        }
    }

    #[test]
    fn without_rules_every_event_goes_to_every_target() {
        assert_eq!(config(vec![]).route(None, Severity::Info), ["chat", "mail"]);
    }

    #[test]
    fn rules_filter_by_environment_and_severity_and_a_rule_without_filters_matches_all() {
        let config = config(vec![
            rule(&["mail"], &["prod"], Some(Severity::Warning)),
            rule(&["chat"], &[], None),
        ]);
        assert_eq!(config.route(Some("prod"), Severity::Critical), ["chat", "mail"]);
        assert_eq!(config.route(Some("prod"), Severity::Info), ["chat"]);
        assert_eq!(config.route(Some("dev"), Severity::Critical), ["chat"]);
        // An event of no environment (a locked-out user) passes no environment filter.
        assert_eq!(config.route(None, Severity::Critical), ["chat"]);
    }

    #[test]
    fn a_rule_naming_an_unknown_target_or_environment_is_refused_with_its_key() {
        let bad = config(vec![rule(&["pager"], &[], None)]);
        let (key, why) = bad.validate(&["prod"]).unwrap_err();
        assert_eq!(key, "rules[0].targets");
        assert!(why.contains("pager"), "{why}");
        let bad = config(vec![rule(&["mail"], &["staging"], None)]);
        assert_eq!(bad.validate(&["prod"]).unwrap_err().0, "rules[0].environments");
    }

    #[test]
    fn destinations_show_no_secret() {
        let target = Target::Webhook {
            url: "https://user:pw@hooks.example.com/in?token=abc".into(),
            secret_header: None,
        };
        let shown = target.destination();
        assert!(!shown.contains("pw") && !shown.contains("abc"), "{shown}");
    }
}
