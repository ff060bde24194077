use serde::{Deserialize, Serialize};

use super::{BackupSummary, EnvironmentSummary, JobSummary, MaintenanceState};

/// One resource a restore puts back: its name, driver and the size of its file in the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredResource {
    pub name: String,
    pub driver: String,
    pub size: u64,
}

/// The restore page: what restoring a backup would do, for the person about to confirm it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePreview {
    pub backup: BackupSummary,
    pub environment: EnvironmentSummary,
    /// What the restore replaces, in the backup's order.
    pub resources: Vec<RestoredResource>,
    /// Why it cannot be restored as configured now; empty when it can (then there is no form).
    pub problems: Vec<String>,
    /// Resources configured now that the backup does not hold: left as they are.
    pub not_in_backup: Vec<String>,
    pub maintenance: Option<MaintenanceState>,
    /// "demo is busy: backup #41 started by alice at 10:02 UTC — try again when it ends", when
    /// a job holds the environment now.
    pub busy: Option<String>,
    /// The names of the checks run after restoring.
    pub smoke_checks: Vec<String>,
    /// The server's clock when this was read: the backup's age is counted from it, so the page
    /// reads the same rendered on the server and hydrated in the browser.
    pub as_of_ms: i64,
}

/// A restore that failed, was cancelled or was interrupted and nobody has dealt with yet: the
/// environment page shows a banner for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRestore {
    pub job: JobSummary,
    /// The backup it was restoring.
    pub backup_id: String,
    pub safety_backup_id: String,
    /// The safety backup, when it was completed: then Undo brings it back.
    pub safety_backup: Option<BackupSummary>,
}

#[cfg(feature = "ssr")]
mod from_engine {
    use super::*;

    impl From<engine::restores::RestorePreview> for RestorePreview {
        fn from(preview: engine::restores::RestorePreview) -> Self {
            RestorePreview {
                backup: BackupSummary::from(&preview.backup),
                environment: EnvironmentSummary::from(&preview.environment),
                resources: preview
                    .backup
                    .manifest
                    .artifacts
                    .iter()
                    .map(|a| RestoredResource {
                        name: a.resource.clone(),
                        driver: a.driver.clone(),
                        size: a.size,
                    })
                    .collect(),
                problems: preview.problems,
                not_in_backup: preview.not_in_backup,
                maintenance: preview.maintenance.map(Into::into),
                busy: preview.busy.map(|busy| busy.to_string()),
                smoke_checks: preview.smoke_checks,
                as_of_ms: engine::db::now_ms(),
            }
        }
    }

    impl From<engine::restores::FailedRestore> for FailedRestore {
        fn from(failed: engine::restores::FailedRestore) -> Self {
            FailedRestore {
                safety_backup: failed.safety_backup.as_ref().map(BackupSummary::from),
                job: failed.job.into(),
                backup_id: failed.backup_id,
                safety_backup_id: failed.safety_backup_id,
            }
        }
    }
}
