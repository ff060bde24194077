//! Whether an environment is safe, at a glance: the dashboard's one status per environment and
//! the figures behind it (last backup, last proven restore, next scheduled run, the running
//! job, storage used).
//!
//! The status is the most urgent of what is wrong, in this order: a failed restore nobody has
//! dealt with (the environment may be half-restored), maintenance mode (it is down for its
//! users), the last job failed, the last backup is older than `backup_expected_within_hours`
//! (or the latest scheduled backup was skipped or failed). Otherwise it is ok.

mod metrics;

use crate::{
    Engine,
    config::ScheduledWork,
    db::{jobs as job_rows, now_ms},
    jobs::{Job, JobError, JobState},
    schedules::{SlotState, next_fire_times},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    BackupOverdue,
    LastJobFailed,
    InMaintenance,
    FailedRestoreWaiting,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::BackupOverdue => "backup overdue",
            Status::LastJobFailed => "last job failed",
            Status::InMaintenance => "in maintenance",
            Status::FailedRestoreWaiting => "failed restore waiting",
        }
    }
}

/// One environment on the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub environment: String,
    pub status: Status,
    /// Why, in a few words ("last backup 31 hours ago; expected every 24 hours").
    pub why: Option<String>,
    pub last_backup: Option<(String, i64)>,
    /// The newest backup whose latest test restore passed, and when it was proven.
    pub last_proven: Option<(String, i64)>,
    /// The next scheduled run: when, and what (`backup`, `verify`, `prune`, `action:NAME`).
    pub next_run: Option<(i64, String)>,
    pub running: Option<Job>,
    pub stored_bytes: u64,
    pub backup_count: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("there is no environment \"{0}\"")]
    UnknownEnvironment(String),
    #[error("{0}")]
    Other(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<JobError> for HealthError {
    fn from(e: JobError) -> Self {
        HealthError::Other(e.to_string())
    }
}

impl Engine {
    /// The dashboard's view of `environment` now.
    pub async fn health(&self, environment: &str) -> Result<Health, HealthError> {
        let env = self
            .config()
            .environment(environment)
            .ok_or_else(|| HealthError::UnknownEnvironment(environment.to_string()))?;
        let now = now_ms();
        let other = |e: &dyn std::fmt::Display| HealthError::Other(e.to_string());
        let latest = self.latest_backup(environment).await.map_err(|e| other(&e))?;
        let (stored_bytes, backup_count) = crate::db::backups::usage(self.db().pool(), environment).await?;
        let last_proven = crate::db::backups::newest_proven_at(self.db().pool(), environment).await?;
        let recent: Vec<Job> = job_rows::list(self.db().pool(), environment, "", "", None, 20)
            .await?
            .into_iter()
            .map(Job::from)
            .collect();
        let running = recent.iter().find(|job| job.state == JobState::Running).cloned();
        let last_finished = recent.iter().find(|job| job.state.is_finished());
        let schedules = self.schedules(Some(environment)).await.map_err(|e| other(&e))?;
        let next_run = env
            .schedules
            .iter()
            .filter(|(name, _)| {
                schedules
                    .iter()
                    .any(|status| &status.name == *name && status.paused.is_none())
            })
            .filter_map(|(_, schedule)| {
                next_fire_times(schedule, env.tz(), now, 1)
                    .first()
                    .map(|&at| (at, schedule.what.clone()))
            })
            .min();
        let skipped_backup = schedules.iter().find_map(|status| {
            let is_backup = env
                .schedules
                .get(&status.name)
                .is_some_and(|s| s.work() == Ok(ScheduledWork::Backup));
            let latest_slot = status.recent.first()?;
            (is_backup && matches!(latest_slot.state, SlotState::Skipped | SlotState::Failed)).then(|| {
                format!(
                    "the scheduled backup {}: {}",
                    status.name,
                    latest_slot.summary(env.tz())
                )
            })
        });

        let failed_restores = self.failed_restores(environment).await.map_err(|e| other(&e))?;
        let maintenance = self.maintenance(environment).await.map_err(|e| other(&e))?;
        let overdue_by_age = match (env.backup_expected_within_hours, &latest) {
            // Nothing to back up: nothing can be overdue.
            _ if env.resources.is_empty() => None,
            (None, _) => None,
            (Some(hours), None) => Some(format!("no backup yet; one is expected every {hours} hours")),
            (Some(hours), Some(backup)) if now - backup.created_at_ms > i64::from(hours) * 3_600_000 => Some(format!(
                "last backup {} hours ago; one is expected every {hours} hours",
                (now - backup.created_at_ms) / 3_600_000
            )),
            _ => None,
        };
        let (status, why) = if let Some(failed) = failed_restores.first() {
            (
                Status::FailedRestoreWaiting,
                Some(format!(
                    "restore #{} {}: undo or dismiss it",
                    failed.job.id, failed.job.state
                )),
            )
        } else if let Some(state) = maintenance {
            (
                Status::InMaintenance,
                Some(format!(
                    "since {} UTC, by {}",
                    crate::text::hh_mm_utc(state.since_ms),
                    state.entered_by
                )),
            )
        } else if let Some(job) =
            last_finished.filter(|job| matches!(job.state, JobState::Failed | JobState::Interrupted))
        {
            (Status::LastJobFailed, Some(format!("{} {}", job.title(), job.state)))
        } else if let Some(why) = overdue_by_age.or(skipped_backup) {
            (Status::BackupOverdue, Some(why))
        } else {
            (Status::Ok, None)
        };
        Ok(Health {
            environment: environment.to_string(),
            status,
            why,
            last_backup: latest.map(|b| (b.id, b.created_at_ms)),
            last_proven,
            next_run,
            running,
            stored_bytes: u64::try_from(stored_bytes).unwrap_or(0),
            backup_count: u64::try_from(backup_count).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests;
