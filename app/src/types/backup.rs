use serde::{Deserialize, Serialize};

use super::{EnvironmentSummary, MaintenanceState};

/// The last checksum verification of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum BackupVerification {
    Never,
    Ok { at_ms: i64 },
    Failed { at_ms: i64, problem: String },
}

/// A test restore of a backup (a `verify` job restored it into scratch and checked it); the
/// newest is the backup's badge. Ages are counted on the server when it is read, so the page
/// reads the same rendered there and hydrated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum BackupTestRestore {
    Never,
    /// Proven restorable.
    Passed {
        at_ms: i64,
        /// "2 hours ago".
        age: String,
        /// What was checked, resource by resource, in words.
        checked: String,
        /// The resources restored and checked (not those skipped).
        resources: Vec<String>,
        job_id: Option<i64>,
    },
    Failed {
        at_ms: i64,
        age: String,
        checked: String,
        /// Why, in the tools' words.
        error: String,
        job_id: Option<i64>,
    },
}

/// A complete backup as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    /// e.g. `prod-20261121-0102-7f3a`.
    pub id: String,
    pub environment: String,
    pub created_at_ms: i64,
    pub finished_at_ms: i64,
    /// `manual`, `scheduled` or `pre-restore`.
    pub trigger: String,
    pub requested_by: String,
    pub description: String,
    /// Bytes of all its artifacts.
    pub total_size: u64,
    /// The resources it holds, by name.
    pub resources: Vec<String>,
    pub verification: BackupVerification,
    /// Its newest test restore.
    pub test_restore: BackupTestRestore,
    /// The job that took it; `None` for backups found by a reindex.
    pub job_id: Option<i64>,
}

/// One resource's file in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupArtifact {
    pub resource: String,
    pub driver: String,
    /// Path inside the backup's directory.
    pub file: String,
    pub size: u64,
    /// Lowercase hex SHA-256; empty for a directory tree (the repository checks each block).
    pub sha256: String,
    /// The program and version that wrote it, when the driver used one.
    pub tool: Option<String>,
    /// For an `http` resource, what the remote system reported: its own backup's name and its
    /// last words, e.g. "remote backup snap-1 (done: stored as snap-1)".
    pub remote_report: Option<String>,
}

/// The backup page: a backup's manifest in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDetail {
    pub backup: BackupSummary,
    pub artifacts: Vec<BackupArtifact>,
    /// What the environment looked like then: fact name and value, sorted by name.
    pub facts: Vec<(String, String)>,
    /// The Steward version that wrote the manifest.
    pub steward_version: String,
    /// `None` when the environment is no longer configured (the backup still is one).
    pub environment: Option<EnvironmentSummary>,
    /// The environment's maintenance mode now, if it is in it: every page of the environment
    /// says so.
    pub maintenance: Option<MaintenanceState>,
    /// Its test restores, newest first (the last few).
    pub test_restores: Vec<BackupTestRestore>,
    /// Who pinned it, when and why: retention never removes it while it is pinned.
    pub pin: Option<(String, i64, String)>,
}

/// How the backups list is ordered (`?sort=` in the address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupSort {
    #[default]
    Newest,
    Oldest,
    Largest,
    Smallest,
}

impl BackupSort {
    pub const ALL: [BackupSort; 4] = [
        BackupSort::Newest,
        BackupSort::Oldest,
        BackupSort::Largest,
        BackupSort::Smallest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BackupSort::Newest => "newest",
            BackupSort::Oldest => "oldest",
            BackupSort::Largest => "largest",
            BackupSort::Smallest => "smallest",
        }
    }

    pub fn parse(s: &str) -> Option<BackupSort> {
        BackupSort::ALL.into_iter().find(|sort| sort.as_str() == s)
    }

    pub fn by_size(self) -> bool {
        matches!(self, BackupSort::Largest | BackupSort::Smallest)
    }

    /// What the links to the previous and the next page say in this order.
    pub fn page_labels(self) -> (&'static str, &'static str) {
        match self {
            BackupSort::Newest => ("Newer", "Older"),
            BackupSort::Oldest => ("Older", "Newer"),
            BackupSort::Largest => ("Larger", "Smaller"),
            BackupSort::Smallest => ("Smaller", "Larger"),
        }
    }
}

/// One bar of the size chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizePoint {
    pub id: String,
    pub created_at_ms: i64,
    pub total_size: u64,
    /// What all the environment's backups took right after this one was added (recorded since
    /// Steward keeps that figure).
    pub kept_after: Option<u64>,
}

/// A page of an environment's backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupList {
    pub rows: Vec<BackupSummary>,
    /// Backups of the environment in all.
    pub total: i64,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
    pub sort: BackupSort,
    /// The latest backups, oldest first, whatever the sort: the size chart.
    pub sizes: Vec<SizePoint>,
}

impl BackupList {
    pub fn pages(&self) -> u32 {
        let per_page = i64::from(self.per_page.max(1));
        u32::try_from((self.total + per_page - 1) / per_page)
            .unwrap_or(u32::MAX)
            .max(1)
    }
}

/// A resource a backup of the environment captures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSummary {
    pub name: String,
    pub driver: String,
}

/// The environment page's backup panel: what is backed up, the latest backup and whether it
/// is overdue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentBackupStatus {
    /// Empty: the environment has nothing to back up.
    pub resources: Vec<ResourceSummary>,
    pub latest: Option<BackupSummary>,
    /// `backup_expected_within_hours` from the configuration.
    pub expected_within_hours: Option<u32>,
    /// An expectation is set and the latest backup is older, or there is none.
    pub overdue: bool,
    /// The server's clock when this was read: ages are counted from it, so the page reads the
    /// same rendered on the server and hydrated in the browser.
    pub as_of_ms: i64,
}

impl EnvironmentBackupStatus {
    pub fn has_resources(&self) -> bool {
        !self.resources.is_empty()
    }
}

/// An environment's backups in the repository (the backups page's storage line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentStorage {
    /// Where the repository is (a path or `s3:…`; never a credential).
    pub location: String,
    /// The environment's backups in the repository (older ones kept as plain files are not).
    pub backups: u64,
    /// What they would take as full copies.
    pub full_bytes: u64,
    /// What they added to the repository after deduplication and compression.
    pub stored_bytes: u64,
    /// The whole repository, every environment.
    pub repository_bytes: u64,
    /// The largest export the console accepts as an upload.
    pub upload_limit_bytes: u64,
    /// Why the repository could not be read, if it could not.
    pub problem: Option<String>,
}

/// Whether the latest backup (taken at `latest_ms`) is older than the expectation.
pub fn is_overdue(latest_ms: Option<i64>, expected_within_hours: Option<u32>, now_ms: i64) -> bool {
    match (expected_within_hours, latest_ms) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(hours), Some(at)) => now_ms - at > i64::from(hours) * 3_600_000,
    }
}

#[cfg(feature = "ssr")]
mod from_engine {
    use engine::backups::{self, Backup};

    use super::*;

    impl From<backups::Verification> for BackupVerification {
        fn from(verification: backups::Verification) -> Self {
            match verification {
                backups::Verification::Never => BackupVerification::Never,
                backups::Verification::Passed { at_ms } => BackupVerification::Ok { at_ms },
                backups::Verification::Failed { at_ms, problem } => BackupVerification::Failed { at_ms, problem },
            }
        }
    }

    impl BackupTestRestore {
        /// `now_ms`: the server's clock, for the age.
        pub fn new(test_restore: &backups::TestRestore, now_ms: i64) -> BackupTestRestore {
            match test_restore {
                backups::TestRestore::Never => BackupTestRestore::Never,
                backups::TestRestore::Passed { at_ms, checked, job_id } => BackupTestRestore::Passed {
                    at_ms: *at_ms,
                    age: crate::format::ago(*at_ms, now_ms),
                    resources: backups::checked_resources(checked),
                    checked: checked.clone(),
                    job_id: *job_id,
                },
                backups::TestRestore::Failed {
                    at_ms,
                    checked,
                    error,
                    job_id,
                } => BackupTestRestore::Failed {
                    at_ms: *at_ms,
                    age: crate::format::ago(*at_ms, now_ms),
                    checked: checked.clone(),
                    error: error.clone(),
                    job_id: *job_id,
                },
            }
        }
    }

    impl From<&Backup> for BackupSummary {
        fn from(backup: &Backup) -> Self {
            BackupSummary {
                id: backup.id.clone(),
                environment: backup.environment.clone(),
                created_at_ms: backup.created_at_ms,
                finished_at_ms: backup.finished_at_ms,
                trigger: backup.trigger.clone(),
                requested_by: backup.requested_by.clone(),
                description: backup.description.clone(),
                total_size: backup.total_size,
                resources: backup.resources.clone(),
                verification: backup.verification.clone().into(),
                test_restore: BackupTestRestore::new(&backup.test_restore, engine::db::now_ms()),
                job_id: backup.job_id,
            }
        }
    }

    impl From<&Backup> for SizePoint {
        fn from(backup: &Backup) -> Self {
            SizePoint {
                id: backup.id.clone(),
                created_at_ms: backup.created_at_ms,
                total_size: backup.total_size,
                kept_after: None,
            }
        }
    }

    impl BackupDetail {
        pub fn new(
            backup: Backup,
            environment: Option<EnvironmentSummary>,
            maintenance: Option<MaintenanceState>,
            test_restores: &[backups::TestRestore],
        ) -> BackupDetail {
            let now_ms = engine::db::now_ms();
            let summary = BackupSummary::from(&backup);
            let manifest = backup.manifest;
            BackupDetail {
                backup: summary,
                artifacts: manifest
                    .artifacts
                    .into_iter()
                    .map(|a| BackupArtifact {
                        remote_report: engine::drivers::http::RemoteReport::of(&a.driver, &a.details)
                            .map(|report| report.to_string()),
                        resource: a.resource,
                        driver: a.driver,
                        // A tree has no checksum of its own: the repository checks its blocks.
                        file: if a.tree { format!("{}/", a.file) } else { a.file },
                        size: a.size,
                        sha256: a.sha256,
                        tool: a.tool,
                    })
                    .collect(),
                facts: manifest.facts.into_iter().collect(),
                steward_version: manifest.steward_version,
                environment,
                maintenance,
                test_restores: test_restores
                    .iter()
                    .map(|test_restore| BackupTestRestore::new(test_restore, now_ms))
                    .collect(),
                pin: None,
            }
        }
    }

    impl From<backups::Order> for BackupSort {
        fn from(order: backups::Order) -> Self {
            match order {
                backups::Order::NewestFirst => BackupSort::Newest,
                backups::Order::OldestFirst => BackupSort::Oldest,
                backups::Order::LargestFirst => BackupSort::Largest,
                backups::Order::SmallestFirst => BackupSort::Smallest,
            }
        }
    }

    impl From<BackupSort> for backups::Order {
        fn from(sort: BackupSort) -> Self {
            match sort {
                BackupSort::Newest => backups::Order::NewestFirst,
                BackupSort::Oldest => backups::Order::OldestFirst,
                BackupSort::Largest => backups::Order::LargestFirst,
                BackupSort::Smallest => backups::Order::SmallestFirst,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_overdue_only_against_an_expectation() {
        let hour = 3_600_000;
        let now = 100 * hour;
        assert!(!is_overdue(None, None, now), "no expectation, no backup: not overdue");
        assert!(!is_overdue(Some(0), None, now));
        assert!(is_overdue(None, Some(24), now), "expected and none yet");
        assert!(!is_overdue(Some(now - 24 * hour), Some(24), now));
        assert!(is_overdue(Some(now - 24 * hour - 1), Some(24), now));
    }

    #[test]
    fn sorts_round_trip_and_pages_are_counted() {
        for sort in BackupSort::ALL {
            assert_eq!(BackupSort::parse(sort.as_str()), Some(sort));
        }
        assert_eq!(BackupSort::parse("size"), None);
        let list = |total| BackupList {
            rows: Vec::new(),
            total,
            page: 1,
            per_page: 25,
            sort: BackupSort::Newest,
            sizes: Vec::new(),
        };
        assert_eq!(list(0).pages(), 1);
        assert_eq!(list(25).pages(), 1);
        assert_eq!(list(26).pages(), 2);
    }
}
