//! What a job's end tells people: a failure raises its condition (`backup:ENV`, `restore:ENV`,
//! `test_restore:ENV`, `job:ENV:KIND:TITLE`), a success ends it with a recovery. Runs in the
//! transaction that records the end (see [`crate::notifications`]).

use sqlx::AnyConnection;

use super::{Job, JobState};
use crate::{
    Engine,
    notifications::{Alert, Kind, Repeat, Severity, condition_backup, problems, raise, resolve, tz_of, when},
};

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
            let mut detail = failure_detail(conn, job.id, error).await?;
            if kind == Kind::RestoreFailed {
                // The way back, as the banner and the CLI offer it.
                let undo = format!(
                    "Undo (restores the safety backup taken before it): the Undo button on the environment page, or `steward restore --undo {} --reason …`.",
                    job.id
                );
                detail = Some(match detail {
                    Some(words) => format!("{words}\n\n{undo}"),
                    None => undo,
                });
            }
            let alert = Alert {
                kind,
                environment: Some(env.to_string()),
                severity,
                summary,
                detail,
                link,
                job_id: Some(job.id),
            };
            raise(conn, config, &key, alert, Repeat::Each, now).await?;
        }
        JobState::Queued | JobState::Running | JobState::Cancelled => {}
    }
    Ok(())
}

/// How many of a failed job's last stderr lines a notification carries.
const STDERR_LINES: usize = 10;

/// A failure in the tool's own words: the job's error, and the last lines its programs wrote
/// to stderr when the error does not already hold them ("backup.sh exited with status 3" says
/// little; "disk full" says what is wrong).
async fn failure_detail(conn: &mut AnyConnection, job_id: i64, error: Option<&str>) -> sqlx::Result<Option<String>> {
    let tail = crate::db::jobs::log_tail(&mut *conn, job_id, 200).await?;
    let stderr: Vec<&str> = tail
        .iter()
        .filter(|row| row.level == "stderr")
        .map(|row| row.line.as_str())
        .collect();
    let last = &stderr[stderr.len().saturating_sub(STDERR_LINES)..];
    let error = error.unwrap_or_default();
    let unsaid: Vec<&str> = last
        .iter()
        .copied()
        .filter(|line| !error.contains(line.trim()))
        .collect();
    Ok(match (error.is_empty(), unsaid.is_empty()) {
        (true, true) => None,
        (false, true) => Some(error.to_string()),
        (_, false) => Some(
            format!("{error}\n\nLast lines on stderr:\n{}", unsaid.join("\n"))
                .trim()
                .to_string(),
        ),
    })
}
