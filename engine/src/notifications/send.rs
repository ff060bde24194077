//! Delivering one notification to one target: a webhook's POST, a Slack message, a mail.
//!
//! This module knows the three wire formats and nothing of the outbox: the sender builds a
//! [`Message`] from a row, calls [`deliver`] once per target and attempt, and records what it
//! returns. `Ok` means the receiver took it (a 2xx answer, or the SMTP server's `250` for the
//! mail); an `Err` is one line a person can act on, shown in the console and kept with the
//! attempt, so it never holds a secret: URLs are shown without credentials or query (the
//! [`http_client`] rules), answers are masked, the Slack URL (which *is* the secret) never
//! appears, and neither does the SMTP password.
//!
//! ## The webhook body
//!
//! A webhook target receives `POST <url>` with `Content-Type: application/json`, its
//! `secret_header` if one is configured, and this body:
//!
//! ```json
//! {
//!   "id": 42,
//!   "kind": "backup_failed",
//!   "environment": "prod",
//!   "severity": "critical",
//!   "recovery": false,
//!   "summary": "prod: backup #12 failed",
//!   "detail": "pg_dump: error: connection to server failed: Connection refused",
//!   "url": "https://steward.example.com/environments/prod/backups/12",
//!   "at": "2025-03-01T10:02:00.000Z",
//!   "steward_version": "0.1.0"
//! }
//! ```
//!
//! - `id`: the notification's number; a retried delivery repeats it, so a receiver can drop
//!   duplicates.
//! - `kind`: what happened: `backup_failed`, `restore_failed`, `backup_overdue`, `recovered`,
//!   `test`, ….
//! - `environment`: the environment it concerns, or `null` (e.g. a locked-out user).
//! - `severity`: `info`, `warning` or `critical`.
//! - `recovery`: `true` when this says a problem is over (its severity is that of the problem).
//! - `summary`: one line; `detail`: the tool's own words (may span lines), or `null`.
//! - `url`: the console page that explains it.
//! - `at`: when it happened, RFC 3339 in UTC.
//! - `steward_version`: the version that sent it.
//!
//! Any 2xx answer counts as delivered. Redirects are not followed (a secret header must not
//! travel to a host nobody configured), so a 3xx is a failure like a 5xx.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use reqwest::{
    Method, Response,
    header::{CONTENT_TYPE, HeaderMap},
};
use serde::Serialize;

use super::{Severity, SmtpSecurity, Target};
use crate::{
    config::{SecretHeader, SecretSource},
    http_client::{self, Endpoint},
};

/// One notification as it leaves Steward (built from the outbox row by the sender).
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The notification's id.
    pub id: i64,
    /// What happened, e.g. `backup_failed`, `restore_failed`, `backup_overdue`, `recovered`,
    /// `test`.
    pub kind: String,
    pub environment: Option<String>,
    pub severity: Severity,
    /// True when this says a problem is over.
    pub recovery: bool,
    /// One line, e.g. `prod: backup #12 failed`.
    pub summary: String,
    /// The tool's own words (e.g. pg_dump's stderr); may span lines.
    pub detail: Option<String>,
    /// Absolute link to the console page that explains it.
    pub url: String,
    /// When it happened, Unix milliseconds.
    pub at_ms: i64,
}

/// The most of an answer's body read for an error message (the message shows less).
const MAX_ANSWER_READ: usize = 4096;

/// The most of a detail a Slack message carries: Slack folds long messages, and the link
/// leads to all of it.
const MAX_SLACK_DETAIL_CHARS: usize = 2000;

/// The most of a detail a mail carries: enough for any tool's complaint, bounded so that a
/// runaway stderr does not make a mail server refuse the mail.
const MAX_MAIL_DETAIL_CHARS: usize = 20_000;

/// Path segments of a Slack URL at least this long are masked in answers on their own: the
/// token segment (24 characters) is, the word `services` is not.
const MIN_MASKED_SEGMENT: usize = 12;

/// Delivers `message` to `target`, within `timeout` (connecting, sending and the answer).
/// Reads the target's secrets now, so a rotated secret takes effect at the next attempt.
pub async fn deliver(target: &Target, message: &Message, timeout: Duration) -> Result<(), String> {
    let delivered = match target {
        Target::Webhook { url, secret_header } => webhook(url, secret_header.as_ref(), message, timeout).await,
        Target::Slack { url } => slack(url, message, timeout).await,
        Target::Email {
            host,
            port,
            security,
            username,
            password,
            from,
            to,
        } => {
            let server = Smtp {
                host,
                port: port.unwrap_or(security.default_port()),
                security: *security,
                username: username.as_deref(),
                password: password.as_ref(),
            };
            email(&server, from, to, message, timeout).await
        }
    };
    if delivered.is_ok() {
        tracing::debug!(
            notification = message.id,
            to = %super::destination(target),
            "notification delivered"
        );
    }
    delivered
}

/// The webhook's body: the message with its time in words and the sender's version.
#[derive(Serialize)]
struct WebhookBody<'a> {
    id: i64,
    kind: &'a str,
    environment: Option<&'a str>,
    severity: Severity,
    recovery: bool,
    summary: &'a str,
    detail: Option<&'a str>,
    url: &'a str,
    at: String,
    steward_version: &'static str,
}

impl<'a> From<&'a Message> for WebhookBody<'a> {
    fn from(message: &'a Message) -> Self {
        WebhookBody {
            id: message.id,
            kind: &message.kind,
            environment: message.environment.as_deref(),
            severity: message.severity,
            recovery: message.recovery,
            summary: &message.summary,
            detail: message.detail.as_deref(),
            url: &message.url,
            at: utc(message.at_ms).to_rfc3339_opts(SecondsFormat::Millis, true),
            steward_version: env!("CARGO_PKG_VERSION"),
        }
    }
}

async fn webhook(
    url: &str,
    secret_header: Option<&SecretHeader>,
    message: &Message,
    timeout: Duration,
) -> Result<(), String> {
    let endpoint = Endpoint::parse(url).map_err(|why| format!("the webhook URL {why}"))?;
    let shown = endpoint.shown();
    let mut secrets = endpoint.secrets();
    let mut headers = HeaderMap::new();
    if let Some(header) = secret_header {
        let (name, value, secret) = http_client::sensitive_header(header)?;
        secrets.push(secret);
        headers.insert(name, value);
    }
    let body = serde_json::to_string(&WebhookBody::from(message))
        .map_err(|e| format!("the notification cannot be written as JSON: {e}"))?;
    let client = http_client::client(timeout, headers)?;
    let request = endpoint
        .request(&client, Method::POST)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    let response = http_client::send(request)
        .await
        .map_err(|why| format!("POST {shown} failed: {}", http_client::mask(&why, &secrets)))?;
    check(response, &secrets)
        .await
        .map_err(|refusal| format!("HTTP {} from {shown}{}", refusal.status, refusal.said))
}

async fn slack(url: &SecretSource, message: &Message, timeout: Duration) -> Result<(), String> {
    let url = url.read().map_err(|why| format!("the Slack webhook URL: {why}"))?;
    let endpoint = Endpoint::parse(&url).map_err(|why| format!("the Slack webhook URL {why}"))?;
    // The whole URL is the secret; an answer or a cause that repeats it, or its token, is
    // masked.
    let mut secrets = endpoint.secrets();
    secrets.push(url.trim().to_string());
    secrets.push(endpoint.shown());
    if let Ok(parsed) = url::Url::parse(url.trim()) {
        secrets.extend(
            parsed
                .path_segments()
                .into_iter()
                .flatten()
                .filter(|segment| segment.len() >= MIN_MASKED_SEGMENT)
                .map(str::to_string),
        );
    }
    let body = serde_json::json!({ "text": slack_text(message) }).to_string();
    let client = http_client::client(timeout, HeaderMap::new())?;
    let request = endpoint
        .request(&client, Method::POST)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    let response = http_client::send(request).await.map_err(|why| {
        format!(
            "the Slack webhook could not be reached: {}",
            http_client::mask(&why, &secrets)
        )
    })?;
    check(response, &secrets)
        .await
        .map_err(|refusal| format!("the Slack webhook answered HTTP {}{}", refusal.status, refusal.said))
}

/// The message in Slack's mrkdwn: an emoji, the summary in bold, the detail as code, when and
/// where, and the link back to the console.
fn slack_text(message: &Message) -> String {
    let emoji = if message.recovery {
        ":white_check_mark:"
    } else {
        match message.severity {
            Severity::Critical => ":red_circle:",
            Severity::Warning => ":warning:",
            Severity::Info => ":information_source:",
        }
    };
    let mut text = format!("{emoji} *{}*", slack_escape(&message.summary));
    if let Some(detail) = message.detail.as_deref().map(str::trim_end).filter(|d| !d.is_empty()) {
        // A ``` inside the detail would end the block early; a zero-width space between any
        // two backticks leaves no three in a row and looks the same.
        let detail = slack_escape(&cut(detail, MAX_SLACK_DETAIL_CHARS)).replace("``", "`\u{200B}`");
        text.push_str(&format!("\n```\n{detail}\n```"));
    }
    let mut context = vec![message.severity.as_str().to_string()];
    if message.recovery {
        context.push("recovered".into());
    }
    if let Some(environment) = &message.environment {
        context.push(slack_escape(environment));
    }
    context.push(utc(message.at_ms).format("%Y-%m-%d %H:%M UTC").to_string());
    // `|` and `>` would end the link's address early.
    let link = message.url.replace('|', "%7C").replace('>', "%3E").replace('<', "%3C");
    text.push_str(&format!("\n{} · <{link}|Open in Steward>", context.join(" · ")));
    text
}

/// Slack reads `&`, `<` and `>` as markup everywhere, code blocks included.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `text`, or its first `max` characters and a line saying how much was cut.
fn cut(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}\n… ({} more characters cut)", total - max)
}

/// A non-2xx answer, as an error may show it.
struct Refusal {
    status: u16,
    /// `: <the body, masked, one short line>`, or empty.
    said: String,
}

/// Whether the answer says delivered (any 2xx); otherwise its status and what its body says.
async fn check(response: Response, secrets: &[String]) -> Result<(), Refusal> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // The body only explains the failure: when it cannot be read, the status still says it.
    let body = http_client::read_prefix(response, MAX_ANSWER_READ)
        .await
        .unwrap_or_default();
    let mut said = http_client::snippet(&http_client::json_or_text(&body), secrets);
    if status.is_redirection() {
        said.push_str(" (a redirect, which Steward does not follow: configure the address it points to)");
    }
    Err(Refusal {
        status: status.as_u16(),
        said,
    })
}

/// An email target's server, its port resolved.
struct Smtp<'a> {
    host: &'a str,
    port: u16,
    security: SmtpSecurity,
    username: Option<&'a str>,
    password: Option<&'a SecretSource>,
}

async fn email(
    server: &Smtp<'_>,
    from: &str,
    to: &[String],
    message: &Message,
    timeout: Duration,
) -> Result<(), String> {
    let address = format!("{}:{}", server.host, server.port);
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("the sender \"{from}\" is not a mail address ({e})"))?;
    let mut mail = lettre::Message::builder()
        .from(from)
        .subject(format!("[Steward] {}", message.summary))
        .header(ContentType::TEXT_PLAIN);
    for recipient in to {
        let mailbox: Mailbox = recipient
            .parse()
            .map_err(|e| format!("the recipient \"{recipient}\" is not a mail address ({e})"))?;
        mail = mail.to(mailbox);
    }
    let mail = mail
        .body(mail_text(message))
        .map_err(|e| format!("the mail cannot be written: {e}"))?;

    let builder = match server.security {
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(server.host),
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(server.host),
        SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host)),
    }
    .map_err(|e| format!("mail via {address} cannot be set up: {e}"))?;
    // lettre's timeout bounds each step (connect, each command); the outer one below bounds
    // the whole conversation.
    let mut builder = builder.port(server.port).timeout(Some(timeout));
    let mut secrets = Vec::new();
    if let Some(username) = server.username {
        let source = server.password.ok_or_else(|| {
            format!(
                "mail via {address}: a username is configured but no password (password = {{ env = \"VARIABLE\" }})"
            )
        })?;
        let password = source
            .read()
            .map_err(|why| format!("mail via {address}: the SMTP password: {why}"))?;
        secrets.push(password.clone());
        builder = builder.credentials(Credentials::new(username.to_string(), password));
    }
    let transport = builder.build();
    match tokio::time::timeout(timeout, transport.send(mail)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "mail via {address} failed: {}",
            http_client::mask(&e.to_string(), &secrets)
        )),
        Err(_) => Err(format!(
            "mail via {address} failed: no answer in time (timed out after {} s)",
            timeout.as_secs()
        )),
    }
}

/// The mail's plain-text body: what happened, the tool's words, the link, and the facts.
fn mail_text(message: &Message) -> String {
    let mut text = format!("{}\n\n", message.summary);
    if let Some(detail) = message.detail.as_deref().map(str::trim_end).filter(|d| !d.is_empty()) {
        text.push_str(&cut(detail, MAX_MAIL_DETAIL_CHARS));
        text.push_str("\n\n");
    }
    text.push_str(&format!("Open in Steward: {}\n\n", message.url));
    let severity = if message.recovery {
        format!("{} (recovered: the problem is over)", message.severity)
    } else {
        message.severity.to_string()
    };
    text.push_str(&format!("Severity: {severity}\n"));
    if let Some(environment) = &message.environment {
        text.push_str(&format!("Environment: {environment}\n"));
    }
    text.push_str(&format!(
        "Time: {}\n",
        utc(message.at_ms).format("%Y-%m-%d %H:%M:%S UTC")
    ));
    text
}

/// A Unix-milliseconds time as a UTC date. Out of chrono's range (beyond the year 262,000,
/// which no clock gives) it falls back to the epoch rather than failing a delivery.
fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
