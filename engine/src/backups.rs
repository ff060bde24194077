//! The backup catalog: what backups exist, how to verify one, their test restores (the history
//! a `verify` job writes, whose newest is a backup's proven-restorable badge), and how to
//! rebuild the catalog from storage.
//!
//! A backup is *complete* when its manifest is published in storage and its row is in the
//! `backup` table; the backup job ([`crate::kinds::backup`]) writes both, in that order. The
//! manifests are the source of truth: [`Engine::reindex_backups`] rebuilds the table from them,
//! so that losing the database does not lose the backups.

use serde_json::json;

use crate::{
    Engine,
    accounts::Actor,
    audit::{self, Outcome},
    db::{
        backups::{self as rows, BackupRow, TestRestoreRow},
        jobs as job_rows, now_ms,
    },
    drivers,
    jobs::{JobError, JobSpec},
    manifest::{Manifest, Stored},
    storage::{BackupPath, LocalStorage, Storage},
};

pub use rows::Order;

/// A complete backup, as the catalog knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub id: String,
    pub environment: String,
    pub created_at_ms: i64,
    pub finished_at_ms: i64,
    pub trigger: String,
    pub requested_by: String,
    pub description: String,
    pub total_size: u64,
    pub resources: Vec<String>,
    pub pinned: bool,
    pub verification: Verification,
    /// Its newest test restore: the proven-restorable badge, or a failed one.
    pub test_restore: TestRestore,
    /// The job that took it; `None` for backups found by a reindex.
    pub job_id: Option<i64>,
    pub manifest: Manifest,
}

/// Who pinned a backup, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub by: String,
    pub at_ms: i64,
    pub reason: String,
}

/// The last checksum verification of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Never,
    Passed { at_ms: i64 },
    Failed { at_ms: i64, problem: String },
}

/// The newest test restore of a backup (a `verify` job restoring it into scratch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestRestore {
    Never,
    /// Proven restorable: every resource restored into scratch and checked (or skipped, with
    /// the reason in `checked`).
    Passed {
        at_ms: i64,
        checked: String,
        job_id: Option<i64>,
    },
    /// The test restore failed: `error` in the tools' words.
    Failed {
        at_ms: i64,
        checked: String,
        error: String,
        job_id: Option<i64>,
    },
}

impl TestRestore {
    fn of(row: TestRestoreRow) -> TestRestore {
        if row.ok == 1 {
            TestRestore::Passed {
                at_ms: row.at,
                checked: row.checked,
                job_id: row.job_id,
            }
        } else {
            TestRestore::Failed {
                at_ms: row.at,
                checked: row.checked,
                error: row.error.unwrap_or_default(),
                job_id: row.job_id,
            }
        }
    }
}

/// The resources a test restore restored and checked, from what it recorded (`name: what; …`),
/// without the checksums and the resources it skipped: "db, files".
pub fn checked_resources(checked: &str) -> Vec<String> {
    checked
        .split("; ")
        .filter_map(|part| part.split_once(": "))
        .filter(|(name, what)| *name != "checksums" && !what.starts_with("skipped"))
        .map(|(name, _)| name.to_string())
        .collect()
}

impl TryFrom<BackupRow> for Backup {
    type Error = String;

    fn try_from(row: BackupRow) -> Result<Self, String> {
        let manifest = Manifest::from_json(row.manifest.as_bytes()).map_err(|e| format!("backup {}: {e}", row.id))?;
        let verification = match (row.verified_at, row.verify_ok) {
            (Some(at_ms), Some(1)) => Verification::Passed { at_ms },
            (Some(at_ms), Some(_)) => Verification::Failed {
                at_ms,
                problem: row.verify_error.unwrap_or_default(),
            },
            _ => Verification::Never,
        };
        let test_restore = match (row.test_restore_at, row.test_restore_ok) {
            (Some(at), Some(ok)) => TestRestore::of(TestRestoreRow {
                backup_id: row.id.clone(),
                job_id: row.test_restore_job,
                at,
                ok,
                checked: row.test_restore_checked.clone().unwrap_or_default(),
                error: row.test_restore_error.clone(),
            }),
            _ => TestRestore::Never,
        };
        Ok(Backup {
            resources: serde_json::from_str(&row.resources).unwrap_or_default(),
            total_size: u64::try_from(row.total_size).unwrap_or(0),
            pinned: row.pinned != 0,
            id: row.id,
            environment: row.environment,
            created_at_ms: row.created_at,
            finished_at_ms: row.finished_at,
            trigger: row.trigger_type,
            requested_by: row.requested_by,
            description: row.description,
            verification,
            test_restore,
            job_id: row.job_id,
            manifest,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no backup \"{0}\"")]
    NotFound(String),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Job(#[from] JobError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// One artifact as `verify` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactCheck {
    pub resource: String,
    pub file: String,
    /// What is wrong with it; `None` when size and checksum match the manifest.
    pub problem: Option<String>,
}

/// What verifying a backup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub backup_id: String,
    pub artifacts: Vec<ArtifactCheck>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.artifacts.iter().all(|a| a.problem.is_none())
    }

    /// One line for the catalog and the audit log: "ok", or what is wrong.
    pub fn summary(&self) -> String {
        let problems: Vec<String> = self
            .artifacts
            .iter()
            .filter_map(|a| a.problem.as_ref().map(|p| format!("{} ({}): {p}", a.resource, a.file)))
            .collect();
        if problems.is_empty() {
            format!("all {} artifacts match their checksums", self.artifacts.len())
        } else {
            problems.join("; ")
        }
    }
}

/// What a reindex did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReindexReport {
    /// Backups found in storage and now in the catalog.
    pub indexed: usize,
    /// Catalog rows whose backup is no longer in storage, removed.
    pub removed: usize,
    /// Manifests that could not be read: path and reason.
    pub unreadable: Vec<String>,
}

/// Reads every artifact of a published backup back and compares it with the manifest.
pub async fn check_artifacts(storage: &impl Storage, manifest: &Manifest) -> Result<VerifyReport, BackupError> {
    let path = BackupPath::new(&manifest.environment, &manifest.id).map_err(|e| BackupError::Storage(e.to_string()))?;
    let mut artifacts = Vec::new();
    for artifact in &manifest.artifacts {
        let read = match storage.open(&path, &artifact.file).await {
            Ok(reader) => drivers::sha256_of_reader(reader).await,
            Err(e) => Err(e),
        };
        let problem = match read {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("missing".to_string()),
            Err(e) => Some(format!("cannot be read: {e}")),
            Ok((size, _)) if size != artifact.size => {
                Some(format!("size is {size} bytes, the manifest says {}", artifact.size))
            }
            Ok((_, sha256)) if sha256 != artifact.sha256 => {
                Some("checksum does not match the manifest (the file was changed or damaged)".to_string())
            }
            Ok(_) => None,
        };
        artifacts.push(ArtifactCheck {
            resource: artifact.resource.clone(),
            file: artifact.file.clone(),
            problem,
        });
    }
    Ok(VerifyReport {
        backup_id: manifest.id.clone(),
        artifacts,
    })
}

/// The catalog row of a manifest.
pub(crate) fn row_of(manifest: &Manifest, json: &[u8], job_id: Option<i64>, verified_at: Option<i64>) -> BackupRow {
    let resources: Vec<&str> = manifest.artifacts.iter().map(|a| a.resource.as_str()).collect();
    BackupRow {
        id: manifest.id.clone(),
        environment: manifest.environment.clone(),
        created_at: manifest.started_at_ms,
        finished_at: manifest.finished_at_ms,
        trigger_type: manifest.trigger.clone(),
        requested_by: manifest.requested_by.clone(),
        description: manifest.description.clone(),
        total_size: i64::try_from(manifest.total_size()).unwrap_or(i64::MAX),
        resources: serde_json::to_string(&resources).unwrap_or_else(|_| "[]".into()),
        pinned: 0,
        verified_at,
        verify_ok: verified_at.map(|_| 1),
        verify_error: None,
        job_id,
        manifest: String::from_utf8_lossy(json).into_owned(),
        test_restore_at: None,
        test_restore_ok: None,
        test_restore_checked: None,
        test_restore_error: None,
        test_restore_job: None,
    }
}

impl Engine {
    /// The staging area, and the backups taken before the repository (plain files under
    /// `storage.path`).
    pub fn storage(&self) -> LocalStorage {
        LocalStorage::new(self.config().backup_root())
    }

    /// One page of an environment's backups and how many there are in all.
    pub async fn backups(
        &self,
        environment: &str,
        order: Order,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Backup>, i64), BackupError> {
        let rows = rows::list(self.db().pool(), environment, order, offset, limit).await?;
        let total = rows::count(self.db().pool(), environment).await?;
        Ok((
            rows.into_iter()
                .filter_map(|row| log_unreadable(Backup::try_from(row)))
                .collect(),
            total,
        ))
    }

    pub async fn backup(&self, id: &str) -> Result<Option<Backup>, BackupError> {
        Ok(rows::get(self.db().pool(), id)
            .await?
            .and_then(|row| log_unreadable(Backup::try_from(row))))
    }

    /// The newest complete backup of an environment.
    pub async fn latest_backup(&self, environment: &str) -> Result<Option<Backup>, BackupError> {
        Ok(rows::latest(self.db().pool(), environment)
            .await?
            .and_then(|row| log_unreadable(Backup::try_from(row))))
    }

    /// Backup `id`'s test restores, newest first (at most `limit`).
    pub async fn test_restores(&self, id: &str, limit: i64) -> Result<Vec<TestRestore>, BackupError> {
        Ok(rows::test_restores(self.db().pool(), id, limit)
            .await?
            .into_iter()
            .map(TestRestore::of)
            .collect())
    }

    /// The newest backup of `environment` whose newest test restore passed.
    pub async fn newest_proven(&self, environment: &str) -> Result<Option<String>, BackupError> {
        Ok(rows::newest_proven(self.db().pool(), environment).await?)
    }

    /// Adds a test restore to backup `id`'s history and audits it (`backup.test_restore`), in
    /// one transaction. `error` is `None` when it passed.
    pub async fn record_test_restore(
        &self,
        actor: &Actor,
        id: &str,
        job_id: Option<i64>,
        checked: &str,
        error: Option<&str>,
    ) -> Result<(), BackupError> {
        let backup = self
            .backup(id)
            .await?
            .ok_or_else(|| BackupError::NotFound(id.to_string()))?;
        let row = TestRestoreRow {
            backup_id: id.to_string(),
            job_id,
            at: now_ms(),
            ok: i64::from(error.is_none()),
            checked: checked.to_string(),
            error: error.map(str::to_string),
        };
        let mut tx = self.db().begin_write().await?;
        rows::record_test_restore(&mut *tx, &row).await?;
        let outcome = if error.is_none() { Outcome::Ok } else { Outcome::Failed };
        let mut detail = json!({ "environment": backup.environment, "checked": checked, "job": job_id });
        if let Some(error) = error {
            detail["error"] = json!(error);
        }
        audit::record(
            &mut *tx,
            &actor
                .event("backup.test_restore", Some(id), outcome)
                .with_detail(detail),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reads every artifact of backup `id` back and compares it with the manifest in storage;
    /// records the outcome in the catalog and the audit log.
    pub async fn verify_backup(&self, actor: &Actor, id: &str) -> Result<VerifyReport, BackupError> {
        let backup = self
            .backup(id)
            .await?
            .ok_or_else(|| BackupError::NotFound(id.to_string()))?;
        let report = if backup.manifest.stored == Stored::Repository {
            stored::check_in_repository(self, &backup.manifest).await
        } else {
            let storage = self.storage();
            let path =
                BackupPath::new(&backup.environment, &backup.id).map_err(|e| BackupError::Storage(e.to_string()))?;
            // The manifest in storage is the one checked against: the catalog's copy could
            // differ only if someone edited one of them, and the files are what a restore reads.
            let manifest = match storage.read_manifest(&path).await {
                Ok(bytes) => Manifest::from_json(&bytes).map_err(BackupError::Storage)?,
                Err(e) => {
                    return Err(BackupError::Storage(format!(
                        "the manifest of {id} cannot be read from {}: {e}",
                        storage.location(&path)
                    )));
                }
            };
            check_artifacts(&storage, &manifest).await?
        };
        let summary = report.summary();
        let mut tx = self.db().begin_write().await?;
        rows::set_verified(
            &mut *tx,
            id,
            now_ms(),
            report.ok(),
            (!report.ok()).then_some(summary.as_str()),
        )
        .await?;
        let outcome = if report.ok() { Outcome::Ok } else { Outcome::Failed };
        audit::record(
            &mut *tx,
            &actor
                .event("backup.verify", Some(id), outcome)
                .with_detail(json!({ "environment": backup.environment, "result": summary })),
        )
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Rebuilds the catalog from the manifests in storage: adds what storage has, removes rows
    /// whose backup is gone. Pins and verification results of rows that stay are kept.
    pub async fn reindex_backups(&self, actor: &Actor) -> Result<ReindexReport, BackupError> {
        let storage = self.storage();
        let storage_error = |e: std::io::Error| {
            BackupError::Storage(format!(
                "cannot read the backup storage {}: {e}",
                storage.root().display()
            ))
        };
        let mut report = ReindexReport::default();
        let mut found = Vec::new();
        for environment in storage.environments().await.map_err(storage_error)? {
            for id in storage.list(&environment).await.map_err(storage_error)? {
                let Ok(path) = BackupPath::new(&environment, &id) else {
                    continue;
                };
                let place = storage.location(&path);
                let manifest = match storage.read_manifest(&path).await {
                    Ok(bytes) => match Manifest::from_json(&bytes) {
                        Ok(manifest) if manifest.id == id && manifest.environment == environment => (manifest, bytes),
                        Ok(_) => {
                            report
                                .unreadable
                                .push(format!("{place}: the manifest names another backup"));
                            continue;
                        }
                        Err(why) => {
                            report.unreadable.push(format!("{place}: {why}"));
                            continue;
                        }
                    },
                    Err(e) => {
                        report.unreadable.push(format!("{place}: {e}"));
                        continue;
                    }
                };
                found.push(manifest);
            }
        }
        for stored in self.repository_backups().await? {
            let place = format!(
                "snapshot {} in {}",
                &stored.snapshot[..8.min(stored.snapshot.len())],
                self.repository_location()
            );
            match Manifest::from_json(&stored.manifest) {
                Ok(manifest) if manifest.id == stored.backup_id && manifest.environment == stored.environment => {
                    found.push((manifest, stored.manifest));
                }
                Ok(_) => report.unreadable.push(format!(
                    "{place}: the manifest names another backup than the snapshot's tags"
                )),
                Err(why) => report.unreadable.push(format!("{place}: {why}")),
            }
        }
        let mut tx = self.db().begin_write().await?;
        let known = rows::all_ids(&mut *tx).await?;
        for (manifest, bytes) in &found {
            if !known.contains(&manifest.id) {
                rows::upsert(&mut *tx, &row_of(manifest, bytes, None, None)).await?;
            }
            report.indexed += 1;
        }
        for id in known {
            if !found.iter().any(|(manifest, _)| manifest.id == id) {
                rows::delete(&mut *tx, &id).await?;
                report.removed += 1;
            }
        }
        audit::record(
            &mut *tx,
            &actor.event("backup.reindex", None, Outcome::Ok).with_detail(json!({
                "indexed": report.indexed,
                "removed": report.removed,
                "unreadable": report.unreadable,
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// The backups in the repository; none when there is no repository yet. A repository that
    /// cannot be read is an error (a reindex must not take that for "no backups").
    pub async fn repository_backups(&self) -> Result<Vec<crate::repository::StoredBackup>, BackupError> {
        match self.with_repository(false, |repo| repo.backups()).await {
            Ok(backups) => Ok(backups),
            Err(crate::repository::RepositoryError::Missing { .. }) => Ok(Vec::new()),
            Err(e) => Err(BackupError::Storage(e.to_string())),
        }
    }

    /// Pins backup `id` (retention never removes it) or unpins it; a reason is required either
    /// way. Audited as `backup.pin` / `backup.unpin`.
    pub async fn set_backup_pinned(&self, actor: &Actor, id: &str, pin: bool, reason: &str) -> Result<(), BackupError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(BackupError::Job(JobError::ReasonRequired(if pin {
                "say why this backup must be kept"
            } else {
                "say why this backup may be removed by retention again"
            })));
        }
        let chars = reason.chars().count();
        if chars > crate::text::MAX_REASON_CHARS {
            return Err(BackupError::Job(JobError::ReasonTooLong(chars)));
        }
        let backup = self
            .backup(id)
            .await?
            .ok_or_else(|| BackupError::NotFound(id.to_string()))?;
        let by = actor.username.as_deref().unwrap_or("steward");
        let mut tx = self.db().begin_write().await?;
        let changed = rows::set_pinned(&mut *tx, id, pin.then_some((by, now_ms(), reason))).await?;
        if !changed {
            tx.rollback().await?;
            return Err(BackupError::Job(JobError::Refused(format!(
                "backup {id} is {}pinned already",
                if pin { "" } else { "not " }
            ))));
        }
        let action = if pin { "backup.pin" } else { "backup.unpin" };
        audit::record(
            &mut *tx,
            &actor
                .event(action, Some(id), Outcome::Ok)
                .with_detail(json!({ "environment": backup.environment, "reason": reason })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The total an environment's backups took right after each backup since `since_ms` was
    /// added, by backup id (the size chart's "total kept" line).
    pub async fn usage_after_backups(
        &self,
        environment: &str,
        since_ms: i64,
    ) -> Result<Vec<(String, u64)>, BackupError> {
        Ok(rows::usage_after(self.db().pool(), environment, since_ms)
            .await?
            .into_iter()
            .map(|(id, bytes)| (id, u64::try_from(bytes).unwrap_or(0)))
            .collect())
    }

    /// Who pinned backup `id`, when and why; `None` when it is not pinned.
    pub async fn pin_of(&self, id: &str) -> Result<Option<Pin>, BackupError> {
        let Some(backup) = self.backup(id).await? else {
            return Ok(None);
        };
        Ok(rows::pins(self.db().pool(), &backup.environment)
            .await?
            .into_iter()
            .find(|pin| pin.id == id)
            .map(|pin| Pin {
                by: pin.pinned_by.unwrap_or_default(),
                at_ms: pin.pinned_at.unwrap_or(0),
                reason: pin.pin_reason.unwrap_or_default(),
            }))
    }

    /// Removes what interrupted backups left in staging (not those of running backup jobs).
    /// Returns how many were removed.
    pub async fn clean_backup_staging(&self) -> Result<usize, BackupError> {
        let mut keep = Vec::new();
        for kind in crate::jobs::kind::registry() {
            for input in job_rows::running_inputs(self.db().pool(), kind.name).await? {
                if let Some(spec) = JobSpec::parse(kind.name, &input)
                    && let Some(id) = spec.writes_backup()
                {
                    keep.push(id.to_string());
                }
            }
        }
        let storage = self.storage();
        storage.clean_staging(&keep).await.map_err(|e| {
            BackupError::Storage(format!(
                "cannot clean the staging area of {}: {e}",
                storage.root().display()
            ))
        })
    }
}

/// A catalog row whose manifest cannot be read is left out of lists, with a log line.
fn log_unreadable(backup: Result<Backup, String>) -> Option<Backup> {
    backup.inspect_err(|why| tracing::warn!("{why}")).ok()
}

pub(crate) mod export;
mod stored;

pub use export::Exported;

pub(crate) use stored::open_repository;
pub use stored::{EnvironmentUsage, StorageUsage, check_repository};

#[cfg(test)]
mod export_tests;
#[cfg(test)]
mod tests;

/// What tests of several modules do to backups.
#[cfg(test)]
pub(crate) mod testing {
    /// Flips a byte in the middle of every data pack of a local repository.
    pub(crate) fn damage_packs(repository: &std::path::Path) {
        use std::os::unix::fs::PermissionsExt;
        let mut damaged = 0;
        for dir in std::fs::read_dir(repository.join("data")).unwrap() {
            for pack in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let path = pack.unwrap().path();
                let mut bytes = std::fs::read(&path).unwrap();
                let middle = bytes.len() / 3;
                bytes[middle] ^= 0xff;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
                std::fs::write(&path, bytes).unwrap();
                damaged += 1;
            }
        }
        assert!(damaged > 0, "no pack in {}", repository.display());
    }
}
