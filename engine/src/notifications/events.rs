//! What each cause says: the conditions, severities, summaries and links of the notifications
//! that jobs, schedules, sign-ins and the periodic checks raise. Each function runs in its
//! caller's transaction (see [`super`]).

use sqlx::AnyConnection;

use super::{Alert, Kind, Repeat, Severity, raise, resolve};
use crate::{
    Engine,
    db::{notifications as rows, now_ms},
    jobs::{Job, JobState},
    schedules::{Tz, local},
};

fn condition_backup(environment: &str) -> String {
    format!("backup:{environment}")
}

/// When something began, in the environment's time zone: "Mon 30 Nov 02:00 CET".
fn when(ms: i64, tz: Tz) -> String {
    local(ms, tz, "%a %-d %b %H:%M %Z")
}

fn tz_of(engine: &Engine, environment: &str) -> Tz {
    engine
        .config()
        .environment(environment)
        .map_or(chrono_tz::UTC, |env| env.tz())
}

/// A job ended in `state`: a failure raises its condition, a success ends it. A cancelled job
/// is nobody's news (a person stopped it).
pub(crate) async fn job_ended(
    conn: &mut AnyConnection,
    engine: &Engine,
    job: &Job,
    state: JobState,
    error: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    let config = &engine.config().notifications;
    let env = job.environment.as_str();
    let tz = tz_of(engine, env);
    let title = job.spec.as_ref().map_or_else(|| job.kind.clone(), |spec| spec.title());
    let (key, kind, severity, link) = match job.kind.as_str() {
        "backup" => (
            condition_backup(env),
            Kind::BackupFailed,
            Severity::Critical,
            format!("/jobs/{}", job.id),
        ),
        // The environment page carries the failed restore's banner and its Undo.
        "restore" => (
            format!("restore:{env}"),
            Kind::RestoreFailed,
            Severity::Critical,
            format!("/environments/{env}"),
        ),
        "verify" => (
            format!("test_restore:{env}"),
            Kind::TestRestoreFailed,
            Severity::Critical,
            format!("/jobs/{}", job.id),
        ),
        kind => (
            format!("job:{env}:{kind}:{title}"),
            Kind::JobFailed,
            Severity::Warning,
            format!("/jobs/{}", job.id),
        ),
    };
    match state {
        JobState::Succeeded => {
            let what = match kind {
                Kind::BackupFailed => "a backup succeeded again",
                Kind::RestoreFailed => "a restore succeeded again",
                Kind::TestRestoreFailed => "test restores succeed again",
                _ => "it succeeded again",
            };
            resolve(
                conn,
                config,
                &key,
                |condition| Alert {
                    kind: Kind::Recovered,
                    environment: Some(env.to_string()),
                    severity,
                    summary: format!(
                        "{env}: {what} ({} #{}), after {} since {}",
                        title,
                        job.id,
                        problems(condition),
                        when(condition.since, tz)
                    ),
                    detail: None,
                    link: format!("/jobs/{}", job.id),
                    job_id: Some(job.id),
                },
                now,
            )
            .await?;
        }
        JobState::Failed | JobState::Interrupted => {
            let summary = match kind {
                Kind::RestoreFailed => format!(
                    "{env}: restore #{} {state}; the environment page says what state {env} is in and offers Undo",
                    job.id
                ),
                Kind::TestRestoreFailed => {
                    format!("{env}: test restore #{} {state}: a backup could not be proven", job.id)
                }
                _ => format!("{env}: {title} #{} {state}", job.id),
            };
            let alert = Alert {
                kind,
                environment: Some(env.to_string()),
                severity,
                summary,
                detail: error.map(str::to_string),
                link,
                job_id: Some(job.id),
            };
            raise(conn, config, &key, alert, Repeat::Each, now).await?;
        }
        JobState::Queued | JobState::Running | JobState::Cancelled => {}
    }
    Ok(())
}

/// "2 problems", "a failed backup", as the recovery of a condition says it.
fn problems(condition: &rows::ConditionRow) -> String {
    let first = condition.first_kind.as_deref().and_then(Kind::parse);
    match (condition.occurrences, first) {
        (n, _) if n > 1 => format!("{n} problems"),
        (_, Some(Kind::BackupMissed)) => "a missed scheduled backup".into(),
        (_, Some(Kind::BackupSkipped)) => "a skipped scheduled backup".into(),
        (_, Some(Kind::BackupOverdue)) => "being overdue".into(),
        _ => "a failure".into(),
    }
}

/// A scheduled backup's slot passed while Steward was not running (`missed` earlier ones too),
/// or is being run late.
pub(crate) async fn backup_slot_missed(
    conn: &mut AnyConnection,
    engine: &Engine,
    environment: &str,
    schedule: &str,
    fire_at: i64,
    missed: i64,
) -> sqlx::Result<()> {
    let tz = tz_of(engine, environment);
    let slots = if missed > 0 {
        format!("{} slots up to {}", missed + 1, when(fire_at, tz))
    } else {
        when(fire_at, tz)
    };
    let alert = Alert {
        kind: Kind::BackupMissed,
        environment: Some(environment.to_string()),
        severity: Severity::Critical,
        summary: format!(
            "{environment}: the scheduled backup {schedule} missed {slots} while Steward was not running; it runs now, late"
        ),
        detail: None,
        link: format!("/environments/{environment}"),
        job_id: None,
    };
    let key = condition_backup(environment);
    raise(
        conn,
        &engine.config().notifications,
        &key,
        alert,
        Repeat::Each,
        now_ms(),
    )
    .await?;
    Ok(())
}

/// A scheduled backup's slot ended without a backup: skipped (busy) or failed to start.
pub(crate) async fn backup_slot_skipped(
    conn: &mut AnyConnection,
    engine: &Engine,
    environment: &str,
    schedule: &str,
    fire_at: i64,
    note: &str,
) -> sqlx::Result<()> {
    let tz = tz_of(engine, environment);
    let alert = Alert {
        kind: Kind::BackupSkipped,
        environment: Some(environment.to_string()),
        severity: Severity::Critical,
        summary: format!(
            "{environment}: the scheduled backup {schedule} of {} did not run",
            when(fire_at, tz)
        ),
        detail: Some(note.to_string()),
        link: format!("/environments/{environment}"),
        job_id: None,
    };
    let key = condition_backup(environment);
    raise(
        conn,
        &engine.config().notifications,
        &key,
        alert,
        Repeat::Each,
        now_ms(),
    )
    .await?;
    Ok(())
}

/// `username` was locked out after too many failed sign-ins.
pub(crate) async fn user_locked(
    conn: &mut AnyConnection,
    engine: &Engine,
    username: &str,
    client_ip: &str,
    until_ms: i64,
) -> sqlx::Result<()> {
    let alert = Alert {
        kind: Kind::UserLocked,
        environment: None,
        severity: Severity::Warning,
        summary: format!(
            "{username} was locked out after {} failed sign-ins (the last from {client_ip}) until {} UTC",
            engine.config().login.max_failures,
            crate::text::hh_mm_utc(until_ms)
        ),
        detail: None,
        link: "/users".into(),
        job_id: None,
    };
    let key = format!("user:{username}");
    raise(
        conn,
        &engine.config().notifications,
        &key,
        alert,
        Repeat::Each,
        now_ms(),
    )
    .await?;
    Ok(())
}

/// `username` signed in, or was unlocked by an admin: a lock-out is over.
pub(crate) async fn user_unlocked(
    conn: &mut AnyConnection,
    engine: &Engine,
    username: &str,
    how: &str,
) -> sqlx::Result<()> {
    let key = format!("user:{username}");
    resolve(
        conn,
        &engine.config().notifications,
        &key,
        |_| Alert {
            kind: Kind::Recovered,
            environment: None,
            severity: Severity::Warning,
            summary: format!("{username} is no longer locked out: {how}"),
            detail: None,
            link: "/users".into(),
            job_id: None,
        },
        now_ms(),
    )
    .await?;
    Ok(())
}

impl Engine {
    /// The periodic checks: backups overdue, environments in maintenance for too long (and the
    /// end of each). Safe to run on every instance at once: an episode begins once.
    pub async fn check_conditions(&self, now: i64) -> sqlx::Result<()> {
        let config = &self.config().notifications;
        for env in &self.config().environments {
            let name = env.name.as_str();
            let tz = env.tz();
            if let Some(hours) = env.backup_expected_within_hours
                && !env.resources.is_empty()
            {
                let key = condition_backup(name);
                let limit_ms = i64::from(hours) * 3_600_000;
                let newest = crate::db::backups::latest(self.db().pool(), name)
                    .await?
                    .map(|backup| backup.created_at);
                // Without any backup, the clock starts when Steward first looked.
                let since = match newest {
                    Some(at) => at,
                    None => {
                        let mut tx = self.db().begin_write().await?;
                        rows::ensure_condition(&mut *tx, &key, now).await?;
                        tx.commit().await?;
                        rows::condition(self.db().pool(), &key).await?.map_or(now, |c| c.since)
                    }
                };
                if now - since > limit_ms {
                    let summary = match newest {
                        Some(at) => format!(
                            "{name}: backup overdue: the last successful backup is from {} ({} hours ago); one is expected every {hours} hours",
                            when(at, tz),
                            (now - at) / 3_600_000
                        ),
                        None => format!(
                            "{name}: backup overdue: no backup since Steward began watching at {}; one is expected every {hours} hours",
                            when(since, tz)
                        ),
                    };
                    let alert = Alert {
                        kind: Kind::BackupOverdue,
                        environment: Some(name.to_string()),
                        severity: Severity::Critical,
                        summary,
                        detail: None,
                        link: format!("/environments/{name}"),
                        job_id: None,
                    };
                    let mut tx = self.db().begin_write().await?;
                    raise(&mut tx, config, &key, alert, Repeat::Once, now).await?;
                    tx.commit().await?;
                }
            }

            let key = format!("maintenance:{name}");
            let maintenance = crate::db::maintenance::get(self.db().pool(), name).await?;
            match maintenance {
                Some(m)
                    if config.maintenance_alert_minutes > 0
                        && now - m.since > i64::from(config.maintenance_alert_minutes) * 60_000 =>
                {
                    let alert = Alert {
                        kind: Kind::MaintenanceLong,
                        environment: Some(name.to_string()),
                        severity: Severity::Warning,
                        summary: format!(
                            "{name} has been in maintenance since {} ({} minutes), entered by {}: {}",
                            when(m.since, tz),
                            (now - m.since) / 60_000,
                            m.entered_by,
                            m.reason
                        ),
                        detail: None,
                        link: format!("/environments/{name}"),
                        job_id: m.job_id,
                    };
                    let mut tx = self.db().begin_write().await?;
                    raise(&mut tx, config, &key, alert, Repeat::Once, now).await?;
                    tx.commit().await?;
                }
                Some(_) => {}
                None => {
                    // Only a write when an episode is going on.
                    if rows::condition(self.db().pool(), &key)
                        .await?
                        .is_some_and(|c| c.firing != 0)
                    {
                        let mut tx = self.db().begin_write().await?;
                        resolve(
                            &mut tx,
                            config,
                            &key,
                            |c| Alert {
                                kind: Kind::Recovered,
                                environment: Some(name.to_string()),
                                severity: Severity::Warning,
                                summary: format!(
                                    "{name} is out of maintenance (it had been in maintenance too long since {})",
                                    when(c.since, tz)
                                ),
                                detail: None,
                                link: format!("/environments/{name}"),
                                job_id: None,
                            },
                            now,
                        )
                        .await?;
                        tx.commit().await?;
                    }
                }
            }
        }
        Ok(())
    }
}
