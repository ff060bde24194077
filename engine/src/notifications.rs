//! Notifications: telling people that something went wrong, and when it is over, without anyone
//! having to look.
//!
//! **What is news** is decided per *condition* (`backup:prod`, `restore:prod`,
//! `test_restore:prod`, `maintenance:prod`, `job:prod:command`, `user:alice`), kept in the
//! `alert_condition` table. A problem starts an episode of its condition, or adds to the one
//! going on; the end of an episode (a backup succeeded again) is a recovery. A condition
//! notifies a problem at most once per `flap_window_minutes`: a backup that fails, succeeds and
//! fails again within the window is told once, its next notification says how often it came
//! back, and the recovery of an episode nobody was told about is not told either. Problems seen
//! by a periodic check (overdue, a long maintenance) notify when their episode begins, not at
//! every check ([`Repeat::Once`]); discrete problems (a failed job) notify each time, outside
//! the window ([`Repeat::Each`]).
//!
//! **Never lost, never doubled**: what causes a notification writes it into the outbox
//! (`notification`, one `notification_delivery` per target the rules chose) in the same
//! transaction as its own change, so a notification exists exactly when its cause was recorded.
//! The [`sender`] delivers each (notification, target) under a lease, retries with backoff and
//! records every attempt; of several instances, the one holding the lease delivers. A sender
//! killed after a target accepted a notification and before recording it delivers it again
//! once its lease runs out: at least once, with a window of one request.

mod checks;
pub mod send;
mod sender;

#[cfg(test)]
mod tests;

use serde_json::json;
use sqlx::AnyConnection;

pub use crate::config::notifications::{NotificationsConfig, Rule, Severity, SmtpSecurity, Target};
pub use sender::TestResult;

use crate::{
    Engine,
    audit::{self, Actor, Outcome},
    db::{
        self,
        notifications::{self as rows, HistoryFilter, NewNotification},
        now_ms,
    },
};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A job other than a backup, restore or verification failed (an action, a prune).
    JobFailed,
    BackupFailed,
    /// A scheduled backup's slot passed while Steward was not running.
    BackupMissed,
    /// A scheduled backup's slot was skipped (the environment was busy) or could not start.
    BackupSkipped,
    /// No successful backup within `backup_expected_within_hours`.
    BackupOverdue,
    RestoreFailed,
    TestRestoreFailed,
    /// In maintenance longer than `maintenance_alert_minutes`.
    MaintenanceLong,
    UserLocked,
    /// A condition is over.
    Recovered,
    /// Sent from the console or `steward notify test`.
    Test,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::JobFailed,
        Kind::BackupFailed,
        Kind::BackupMissed,
        Kind::BackupSkipped,
        Kind::BackupOverdue,
        Kind::RestoreFailed,
        Kind::TestRestoreFailed,
        Kind::MaintenanceLong,
        Kind::UserLocked,
        Kind::Recovered,
        Kind::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::JobFailed => "job_failed",
            Kind::BackupFailed => "backup_failed",
            Kind::BackupMissed => "backup_missed",
            Kind::BackupSkipped => "backup_skipped",
            Kind::BackupOverdue => "backup_overdue",
            Kind::RestoreFailed => "restore_failed",
            Kind::TestRestoreFailed => "test_restore_failed",
            Kind::MaintenanceLong => "maintenance_long",
            Kind::UserLocked => "user_locked",
            Kind::Recovered => "recovered",
            Kind::Test => "test",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A problem or a recovery to tell people about.
#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: Kind,
    pub environment: Option<String>,
    pub severity: Severity,
    /// One line, starting with the environment: "prod: backup #12 failed".
    pub summary: String,
    /// The tool's own words, for failures.
    pub detail: Option<String>,
    /// The console page that explains it, e.g. `/jobs/12`.
    pub link: String,
    pub job_id: Option<i64>,
}

/// How a problem of a condition that is already firing counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Each occurrence is news (outside the flap window): a failed job.
    Each,
    /// Only the beginning is news: a state a periodic check sees again and again.
    Once,
}

/// Records a problem of condition `key` in the caller's transaction and writes its
/// notification unless the flap window holds it back. Returns the notification's id.
pub(crate) async fn raise(
    conn: &mut AnyConnection,
    config: &NotificationsConfig,
    key: &str,
    mut alert: Alert,
    repeat: Repeat,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    rows::ensure_condition(&mut *conn, key, now).await?;
    let started = rows::start_episode(&mut *conn, key, alert.kind.as_str(), now).await?;
    if !started {
        if repeat == Repeat::Once {
            return Ok(None);
        }
        rows::add_occurrence(&mut *conn, key).await?;
    }
    let Some(condition) = rows::condition(&mut *conn, key).await? else {
        return Ok(None);
    };
    let window_ms = i64::from(config.flap_window_minutes) * 60_000;
    if condition.notified_at.is_some_and(|at| now - at < window_ms) {
        if started {
            rows::add_comeback(&mut *conn, key).await?;
        }
        tracing::info!(
            condition = key,
            "{} (not notified: within the flap window)",
            alert.summary
        );
        return Ok(None);
    }
    if condition.comebacks > 0 {
        alert.summary.push_str(&format!(
            " (it came back {} more {} since the last notification)",
            condition.comebacks,
            if condition.comebacks == 1 { "time" } else { "times" }
        ));
    } else if condition.occurrences > 1 {
        alert
            .summary
            .push_str(&format!(" ({} times in a row)", condition.occurrences));
    }
    rows::set_notified(&mut *conn, key, now).await?;
    write(conn, config, &alert, Some(key), None, now).await.map(Some)
}

/// Ends the episode of condition `key`, if one is going on, in the caller's transaction; when
/// its problem was notified, writes the recovery `recovery` makes of it.
pub(crate) async fn resolve(
    conn: &mut AnyConnection,
    config: &NotificationsConfig,
    key: &str,
    recovery: impl FnOnce(&rows::ConditionRow) -> Alert,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    let Some(condition) = rows::end_episode(&mut *conn, key).await? else {
        return Ok(None);
    };
    if condition.episode_notified == 0 {
        return Ok(None);
    }
    let alert = recovery(&condition);
    write(conn, config, &alert, Some(key), None, now).await.map(Some)
}

/// Writes a notification and a pending delivery for each target: the ones the rules choose, or
/// `only` when given.
async fn write(
    conn: &mut AnyConnection,
    config: &NotificationsConfig,
    alert: &Alert,
    condition_key: Option<&str>,
    only: Option<&str>,
    now: i64,
) -> sqlx::Result<i64> {
    let id = rows::insert(
        &mut *conn,
        &NewNotification {
            kind: alert.kind.as_str(),
            condition_key,
            environment: alert.environment.as_deref(),
            severity: alert.severity.as_str(),
            recovery: alert.kind == Kind::Recovered,
            summary: &alert.summary,
            detail: alert.detail.as_deref(),
            link: &alert.link,
            job_id: alert.job_id,
        },
        now,
    )
    .await?;
    let targets = match only {
        Some(target) => vec![target.to_string()],
        None => config.route(alert.environment.as_deref(), alert.severity),
    };
    for target in &targets {
        rows::insert_delivery(&mut *conn, id, target, now).await?;
    }
    tracing::info!(notification = id, targets = ?targets, "{}", alert.summary);
    Ok(id)
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("there is no notification target \"{0}\"")]
    UnknownTarget(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A notification with how its deliveries went, for the console and the CLI.
#[derive(Debug, Clone)]
pub struct Notification {
    pub id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub environment: Option<String>,
    pub severity: String,
    pub recovery: bool,
    pub summary: String,
    pub detail: Option<String>,
    pub link: String,
    pub job_id: Option<i64>,
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub target: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_ms: Option<i64>,
    pub last_error: Option<String>,
    pub finished_ms: Option<i64>,
}

/// One target as the console shows it: no secret.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    pub name: String,
    pub kind: &'static str,
    pub destination: String,
}

impl Engine {
    /// The configured targets, without their secrets.
    pub fn notification_targets(&self) -> Vec<TargetInfo> {
        self.config()
            .notifications
            .targets
            .iter()
            .map(|(name, target)| TargetInfo {
                name: name.clone(),
                kind: target.kind(),
                destination: destination(target),
            })
            .collect()
    }

    /// Notifications newest first, with their deliveries.
    pub async fn notification_history(
        &self,
        filter: &HistoryFilter,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Notification>, NotifyError> {
        let pool = self.db().pool();
        let found = rows::history(pool, filter, before_id, limit).await?;
        let ids: Vec<i64> = found.iter().map(|n| n.id).collect();
        let mut deliveries = rows::deliveries_of(pool, &ids).await?;
        Ok(found
            .into_iter()
            .map(|row| {
                let mine: Vec<Delivery> = deliveries
                    .extract_if(.., |d| d.notification_id == row.id)
                    .map(|d| Delivery {
                        next_attempt_ms: (d.state == "pending").then_some(d.next_attempt_at),
                        target: d.target,
                        state: d.state,
                        attempts: d.attempts,
                        last_error: d.last_error,
                        finished_ms: d.finished_at,
                    })
                    .collect();
                Notification {
                    id: row.id,
                    at_ms: row.created_at,
                    kind: row.kind,
                    environment: row.environment,
                    severity: row.severity,
                    recovery: row.recovery != 0,
                    summary: row.summary,
                    detail: row.detail,
                    link: row.link,
                    job_id: row.job_id,
                    deliveries: mine,
                }
            })
            .collect())
    }

    /// The attempts of one delivery, oldest first.
    pub async fn delivery_attempts(
        &self,
        notification_id: i64,
        target: &str,
    ) -> Result<Vec<rows::AttemptRow>, NotifyError> {
        Ok(rows::attempts(self.db().pool(), notification_id, target).await?)
    }

    /// Sends a test notification to `target` now, through the outbox like any other (so it
    /// shows in the history), and says how it went. Tests are tried once: a test that fails
    /// should not arrive hours later. Audited as `notification.test`.
    pub async fn send_test_notification(&self, actor: &Actor, target: &str) -> Result<TestResult, NotifyError> {
        if !self.config().notifications.targets.contains_key(target) {
            return Err(NotifyError::UnknownTarget(target.to_string()));
        }
        let who = actor.username.as_deref().unwrap_or("someone");
        let alert = Alert {
            kind: Kind::Test,
            environment: None,
            severity: Severity::Info,
            summary: format!("Test notification from Steward, sent by {who} to {target}"),
            detail: Some("If you can read this, Steward's notifications reach this target.".into()),
            link: "/notifications".into(),
            job_id: None,
        };
        let now = now_ms();
        let mut tx = self.db().begin_write().await?;
        let id = write(&mut tx, &self.config().notifications, &alert, None, Some(target), now).await?;
        tx.commit().await?;
        let result = self.deliver_now(id, target).await?;
        let outcome = if result.error.is_none() {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        audit::record(
            self.db().pool(),
            &actor
                .event("notification.test", Some(target), outcome)
                .with_detail(json!({ "notification": id, "error": result.error })),
        )
        .await?;
        Ok(result)
    }

    /// The absolute address of console path `path` (`/jobs/12`), for links in notifications.
    pub fn console_link(&self, path: &str) -> String {
        let base = match &self.config().notifications.console_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.config().server.listen),
        };
        format!("{base}{path}")
    }
}

/// Where `target` delivers, as the console may show it: no secret, no query string, no password.
pub fn destination(target: &Target) -> String {
    match target {
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
            crate::config::SecretSource::Env(name) => format!("Slack webhook (URL from ${name})"),
            crate::config::SecretSource::File(path) => format!("Slack webhook (URL from {})", path.display()),
            crate::config::SecretSource::Written => "Slack webhook".into(),
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

pub(crate) fn condition_backup(environment: &str) -> String {
    format!("backup:{environment}")
}

/// When something began, in the environment's time zone: "Mon 30 Nov 02:00 CET".
pub(crate) fn when(ms: i64, tz: chrono_tz::Tz) -> String {
    crate::text::local(ms, tz, "%a %-d %b %H:%M %Z")
}

pub(crate) fn tz_of(engine: &Engine, environment: &str) -> chrono_tz::Tz {
    engine
        .config()
        .environment(environment)
        .map_or(chrono_tz::UTC, |env| env.tz())
}

/// "2 problems", "a failed backup", as the recovery of a condition says it.
pub(crate) fn problems(condition: &rows::ConditionRow) -> String {
    let first = condition.first_kind.as_deref().and_then(Kind::parse);
    match (condition.occurrences, first) {
        (n, _) if n > 1 => format!("{n} problems"),
        (_, Some(Kind::BackupMissed)) => "a missed scheduled backup".into(),
        (_, Some(Kind::BackupSkipped)) => "a skipped scheduled backup".into(),
        (_, Some(Kind::BackupOverdue)) => "being overdue".into(),
        _ => "a failure".into(),
    }
}

/// The filter of [`Engine::notification_history`].
pub use db::notifications::HistoryFilter as NotificationFilter;
