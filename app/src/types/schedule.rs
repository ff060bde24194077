use serde::{Deserialize, Serialize};

/// An environment on the dashboard: its status at a glance and the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentHealth {
    pub environment: String,
    /// `ok`, `backup overdue`, `last job failed`, `in maintenance`, `failed restore waiting`.
    pub status: String,
    pub why: Option<String>,
    /// The latest backup's id and time.
    pub last_backup: Option<(String, i64)>,
    /// The newest backup proven restorable, and when it was proven.
    pub last_proven: Option<(String, i64)>,
    /// The next scheduled run: when, and what.
    pub next_run: Option<(i64, String)>,
    /// The running job: id, title, steps done of all, bytes done of all (when known).
    pub running: Option<RunningJob>,
    pub stored_bytes: u64,
    pub backup_count: u64,
    /// The server's clock when this was read.
    pub as_of_ms: i64,
}

impl EnvironmentHealth {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningJob {
    pub id: i64,
    pub title: String,
    pub steps_done: i64,
    pub steps: i64,
}

/// A schedule as the environment page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSummary {
    pub environment: String,
    pub name: String,
    pub what: String,
    pub cron: String,
    pub timezone: String,
    /// Who paused it, when (local time, in words) and why.
    pub paused: Option<(String, String, String)>,
    /// The next fire times, in the environment's time zone ("2026-12-02 02:00 CET").
    pub next: Vec<String>,
    /// The first next fire time (Unix milliseconds), for "in 5 hours".
    pub next_ms: Option<i64>,
    /// The latest runs: fire time (local) and what happened, newest first.
    pub recent: Vec<(String, String, Option<i64>)>,
    pub as_of_ms: i64,
}

/// The environment's retention: its rules in words and every backup's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionView {
    pub environment: String,
    pub rules: Vec<String>,
    pub backups: Vec<RetentionRow>,
    pub keep_count: usize,
    pub remove_count: usize,
    pub reclaimed_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRow {
    pub id: String,
    pub created_at_ms: i64,
    pub total_size: u64,
    pub trigger: String,
    pub keep: bool,
    /// `keep — daily 3 of 7`, `remove`.
    pub verdict: String,
    pub pinned: bool,
}

#[cfg(feature = "ssr")]
mod from_engine {
    use engine::{
        backups::Backup,
        health::Health,
        kinds::prune::RetentionPreview,
        schedules::{ScheduleStatus, Tz, local},
    };

    use super::*;

    impl EnvironmentHealth {
        pub fn new(health: Health, as_of_ms: i64) -> Self {
            EnvironmentHealth {
                status: health.status.as_str().to_string(),
                environment: health.environment,
                why: health.why,
                last_backup: health.last_backup,
                last_proven: health.last_proven,
                next_run: health.next_run,
                running: health.running.map(|job| RunningJob {
                    id: job.id,
                    title: job.title(),
                    steps_done: job.steps_done,
                    steps: job.steps.len() as i64,
                }),
                stored_bytes: health.stored_bytes,
                backup_count: health.backup_count,
                as_of_ms,
            }
        }
    }

    impl ScheduleSummary {
        pub fn new(status: ScheduleStatus, tz: Tz, as_of_ms: i64) -> Self {
            let when = |ms: i64| local(ms, tz, "%Y-%m-%d %H:%M:%S %Z");
            ScheduleSummary {
                paused: status.paused.map(|p| (p.by, when(p.at_ms), p.reason)),
                next: status.next.iter().map(|&ms| when(ms)).collect(),
                next_ms: status.next.first().copied(),
                recent: status
                    .recent
                    .iter()
                    .map(|slot| (when(slot.fire_at_ms), slot.summary(tz), slot.job.map(|(id, _)| id)))
                    .collect(),
                environment: status.environment,
                name: status.name,
                what: status.what,
                cron: status.cron,
                timezone: status.timezone,
                as_of_ms,
            }
        }
    }

    impl From<RetentionPreview> for RetentionView {
        fn from(preview: RetentionPreview) -> Self {
            let remove_count = preview.removals().count();
            let reclaimed_bytes = preview.reclaimed();
            let backups: Vec<RetentionRow> = preview
                .backups
                .iter()
                .map(|(backup, verdict): &(Backup, _)| RetentionRow {
                    id: backup.id.clone(),
                    created_at_ms: backup.created_at_ms,
                    total_size: backup.total_size,
                    trigger: backup.trigger.clone(),
                    keep: verdict.is_keep(),
                    verdict: verdict.to_string(),
                    pinned: backup.pinned,
                })
                .collect();
            RetentionView {
                environment: preview.environment,
                rules: preview.rules,
                keep_count: backups.len() - remove_count,
                remove_count,
                reclaimed_bytes,
                backups,
            }
        }
    }
}
