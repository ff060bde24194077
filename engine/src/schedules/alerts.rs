//! What a scheduled backup that did not run tells people: it raises the environment's backup
//! condition, which the next successful backup ends.

use sqlx::AnyConnection;

use crate::{
    Engine,
    db::now_ms,
    notifications::{Alert, Kind, Repeat, Severity, condition_backup, raise, tz_of, when},
};

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
    let summary = format!(
        "{environment}: the scheduled backup {schedule} missed {slots} while Steward was not running; it runs now, late"
    );
    raise_backup(conn, engine, environment, Kind::BackupMissed, summary, None).await
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
    let summary = format!(
        "{environment}: the scheduled backup {schedule} of {} did not run",
        when(fire_at, tz)
    );
    raise_backup(
        conn,
        engine,
        environment,
        Kind::BackupSkipped,
        summary,
        Some(note.to_string()),
    )
    .await
}

/// Raises the environment's backup condition with a problem of the schedule's; the environment
/// page tells the slot's story.
async fn raise_backup(
    conn: &mut AnyConnection,
    engine: &Engine,
    environment: &str,
    kind: Kind,
    summary: String,
    detail: Option<String>,
) -> sqlx::Result<()> {
    let alert = Alert {
        kind,
        environment: Some(environment.to_string()),
        severity: Severity::Critical,
        summary,
        detail,
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
