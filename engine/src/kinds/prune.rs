//! The `prune` job kind: removes the backups the environment's retention rules no longer keep,
//! and what decides it — the **preview** ([`Engine::retention_preview`]) that the console and
//! `steward retention preview` show before anything is removed.
//!
//! The rules are [`crate::retention`]'s (borg's semantics, in the environment's time zone).
//! Whatever they say, these backups are never removed: pinned ones; the newest backup that
//! passed a test restore; the safety backup of a failed restore nobody has undone or
//! dismissed; a backup a queued or running job reads (a restore, a verification).
//!
//! A backup in the repository is forgotten (its snapshot deleted), then its catalog row goes
//! with its audit event (`backup.remove`) in one transaction — the snapshot is written back if
//! that fails — and once every removal is done the repository is pruned, alone (the
//! `repository_use` lock: no backup, restore or verification of any environment on any instance
//! meanwhile), and the space given back is logged. A backup taken before the repository is
//! withdrawn from storage (one rename), uncatalogued, and only then are its files deleted; a
//! removal that fails half-way is put back, and one a crash interrupted is finished or undone at
//! start ([`JobKind::recover`]). The job holds the environment's slot, so no backup or restore of
//! its environment runs beside it.

use std::collections::HashMap;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    Engine,
    accounts::Actor,
    audit::{self, Outcome as AuditOutcome},
    backups::{Backup, BackupError, Order},
    config::Environment,
    db::{backups as backup_rows, jobs as job_rows, now_ms, repository_use::Mode},
    jobs::{Failure, Job, JobContext, JobError, JobKind, JobRequest, JobSpec, Outcome, Plan},
    kinds::backup::record_step,
    manifest::{Stored, Trigger},
    retention::{self, Candidate, Verdict},
    storage::{BackupPath, Storage},
    text::human_bytes,
};

/// Apply the environment's retention rules (`dry_run`: only say what would be removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prune {
    #[serde(default)]
    pub dry_run: bool,
}

impl JobKind for Prune {
    const NAME: &'static str = "prune";

    fn title(&self) -> String {
        if self.dry_run { "Prune (dry run)" } else { "Prune" }.to_string()
    }

    fn plan<'a>(&'a self, _engine: &'a Engine, environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        Box::pin(async move {
            if environment.retention.is_none() && !self.dry_run {
                return Err(JobError::Refused(format!(
                    "{} has no retention rules ([environments.retention] in the configuration): there is nothing to apply",
                    environment.name
                )));
            }
            let mut steps = vec!["Decide what the retention rules keep".to_string()];
            if !self.dry_run {
                steps.push("Remove the backups they do not keep".to_string());
                steps.push("Reclaim their space in the repository".to_string());
            }
            Ok(Plan { exclusive: true, steps })
        })
    }

    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { prune(ctx, self.dry_run).await.into() })
    }

    fn recover(engine: &Engine) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = engine.finish_interrupted_removals().await {
                tracing::warn!(error = %e, "finishing interrupted backup removals failed");
            }
        })
    }
}

/// Every backup of an environment with what retention decides for it, newest first.
#[derive(Debug, Clone)]
pub struct RetentionPreview {
    pub environment: String,
    /// The rules in words; empty when the environment has no retention section.
    pub rules: Vec<String>,
    pub backups: Vec<(Backup, Verdict)>,
}

impl RetentionPreview {
    pub fn removals(&self) -> impl Iterator<Item = &Backup> {
        self.backups
            .iter()
            .filter(|(_, verdict)| matches!(verdict, Verdict::Remove))
            .map(|(backup, _)| backup)
    }

    /// Bytes the removals free.
    pub fn reclaimed(&self) -> u64 {
        self.removals().map(|b| b.total_size).sum()
    }
}

impl Engine {
    /// What the environment's retention rules keep and remove now, and why.
    pub async fn retention_preview(&self, environment: &str) -> Result<RetentionPreview, BackupError> {
        let env = self
            .config()
            .environment(environment)
            .ok_or_else(|| BackupError::Job(JobError::UnknownEnvironment(environment.to_string())))?;
        let (backups, _) = self.backups(environment, Order::NewestFirst, 0, i64::MAX).await?;
        let protected = self.protected_backups(environment).await?;
        let candidates: Vec<Candidate> = backups
            .iter()
            .map(|backup| Candidate {
                id: backup.id.clone(),
                created_at_ms: backup.created_at_ms,
                safety: backup.trigger == Trigger::PreRestore.as_str(),
                protected: protected.get(&backup.id).cloned(),
            })
            .collect();
        let policy = env.retention.clone().unwrap_or_default();
        let rules = if env.retention.is_some() {
            policy.describe()
        } else {
            Vec::new()
        };
        let mut verdicts: HashMap<String, Verdict> = if env.retention.is_some() {
            retention::decide(&policy, env.tz(), now_ms(), &candidates)
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        let backups = backups
            .into_iter()
            .map(|backup| {
                let verdict = verdicts
                    .remove(&backup.id)
                    .unwrap_or(Verdict::Keep(retention::Reason::NoRules));
                (backup, verdict)
            })
            .collect();
        Ok(RetentionPreview {
            environment: environment.to_string(),
            rules,
            backups,
        })
    }

    /// The backups of `environment` retention must keep whatever its rules say, each with why.
    async fn protected_backups(&self, environment: &str) -> Result<HashMap<String, String>, BackupError> {
        let mut protected = HashMap::new();
        for pin in backup_rows::pins(self.db().pool(), environment).await? {
            let by = pin.pinned_by.unwrap_or_else(|| "someone".into());
            let why = match pin.pin_reason.filter(|r| !r.is_empty()) {
                Some(reason) => format!("pinned by {by}: {reason}"),
                None => format!("pinned by {by}"),
            };
            protected.insert(pin.id, why);
        }
        let failed = self
            .failed_restores(environment)
            .await
            .map_err(|e| BackupError::Storage(e.to_string()))?;
        for restore in failed {
            protected.entry(restore.safety_backup_id).or_insert_with(|| {
                format!(
                    "safety backup of failed restore #{} (not undone or dismissed)",
                    restore.job.id
                )
            });
        }
        if let Some(id) = backup_rows::newest_proven(self.db().pool(), environment).await? {
            protected
                .entry(id)
                .or_insert_with(|| "newest backup proven restorable".to_string());
        }
        for state in ["queued", "running"] {
            for row in job_rows::list(self.db().pool(), environment, "", state, None, 1000).await? {
                let job = Job::from(row);
                let spec = job.spec.as_ref();
                // A verification of several backups names no single one: each it reads.
                let read: Vec<&str> = match spec.and_then(|spec| spec.get::<crate::kinds::verify::Verify>()) {
                    Some(verify) => verify.targets(),
                    None => spec.and_then(JobSpec::backup_id).into_iter().collect(),
                };
                for id in read {
                    protected
                        .entry(id.to_string())
                        .or_insert_with(|| format!("read by {} job #{} ({})", state, job.id, job.kind));
                }
            }
        }
        Ok(protected)
    }

    /// Queues a prune of `environment` (a dry run only logs what it would remove).
    pub async fn request_prune(&self, actor: &Actor, environment: &str, dry_run: bool) -> Result<Job, JobError> {
        self.request_job(
            actor,
            JobRequest {
                environment: environment.to_string(),
                spec: JobSpec::new(Prune { dry_run }),
                reason: String::new(),
                parent_id: None,
            },
        )
        .await
    }

    /// Removes one backup from storage and catalog together, audited with `why`.
    async fn remove_backup(&self, actor: &Actor, backup: &Backup, why: &str) -> Result<(), BackupError> {
        if backup.manifest.stored == Stored::Repository {
            return self.forget_backup(actor, backup, why).await;
        }
        let storage = self.storage();
        let path = BackupPath::new(&backup.environment, &backup.id).map_err(|e| BackupError::Storage(e.to_string()))?;
        storage.withdraw(&path).await.map_err(|e| {
            BackupError::Storage(format!(
                "cannot remove {} from {}: {e}",
                backup.id,
                storage.location(&path)
            ))
        })?;
        let recorded = self.uncatalog(actor, backup, why).await;
        if let Err(e) = recorded {
            // The catalog still has it: so must storage.
            if let Err(back) = storage.reinstate(&path).await {
                tracing::error!(backup = %backup.id, error = %back, "a withdrawn backup could not be put back");
            }
            return Err(e.into());
        }
        if let Err(e) = storage.purge_withdrawn(&path).await {
            // Out of sight already; deleted at the next start.
            tracing::warn!(backup = %backup.id, error = %e, "deleting a removed backup's files failed");
        }
        Ok(())
    }

    /// Removes a backup in the repository: its snapshot is forgotten (one file deleted), the
    /// catalog row goes, and should that fail the snapshot is put back. Its data stays until
    /// the repository is pruned.
    async fn forget_backup(&self, actor: &Actor, backup: &Backup, why: &str) -> Result<(), BackupError> {
        let id = backup.id.clone();
        let forgotten = self
            .with_repository(false, move |repo| repo.forget(&[&id]))
            .await
            .map_err(|e| BackupError::Storage(format!("cannot remove {} from the repository: {e}", backup.id)))?;
        if let Err(e) = self.uncatalog(actor, backup, why).await {
            let put_back = self.with_repository(false, move |repo| repo.reinstate(forgotten)).await;
            if let Err(back) = put_back {
                tracing::error!(backup = %backup.id, error = %back, "a forgotten backup could not be put back; `steward backup reindex` drops its catalog row");
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Deletes a backup's catalog row, audited as `backup.remove`.
    async fn uncatalog(&self, actor: &Actor, backup: &Backup, why: &str) -> sqlx::Result<()> {
        async {
            let mut tx = self.db().begin_write().await?;
            backup_rows::delete(&mut *tx, &backup.id).await?;
            backup_rows::record_usage(&mut *tx, &backup.environment, now_ms(), None).await?;
            audit::record(
                &mut *tx,
                &actor
                    .event("backup.remove", Some(&backup.id), AuditOutcome::Ok)
                    .with_detail(json!({
                        "environment": backup.environment,
                        "size": backup.total_size,
                        "created_at": backup.created_at_ms,
                        "why": why,
                    })),
            )
            .await?;
            tx.commit().await
        }
        .await
    }

    /// Finishes removals a crash interrupted: a withdrawn backup still in the catalog is put
    /// back, one the catalog no longer has is deleted.
    async fn finish_interrupted_removals(&self) -> Result<(), BackupError> {
        let storage = self.storage();
        let withdrawn = storage
            .withdrawn()
            .await
            .map_err(|e| BackupError::Storage(format!("cannot read {}: {e}", storage.root().display())))?;
        for path in withdrawn {
            let result = if backup_rows::get(self.db().pool(), &path.backup_id).await?.is_some() {
                storage.reinstate(&path).await
            } else {
                storage.purge_withdrawn(&path).await
            };
            if let Err(e) = result {
                tracing::warn!(backup = %path.backup_id, error = %e, "finishing an interrupted removal failed");
            }
        }
        Ok(())
    }
}

/// "1 backup", "3 backups".
fn backups(n: usize) -> String {
    if n == 1 {
        "1 backup".to_string()
    } else {
        format!("{n} backups")
    }
}

async fn prune(ctx: &JobContext<'_>, dry_run: bool) -> Result<(), Failure> {
    let (engine, log, job) = (ctx.engine, ctx.log, ctx.job);
    let preview = engine
        .retention_preview(&job.environment)
        .await
        .map_err(|e| e.to_string())?;
    if preview.rules.is_empty() {
        log.info(format!(
            "{} has no retention rules ([environments.retention]): every backup is kept.",
            job.environment
        ))
        .await;
    } else {
        log.info(format!("Retention rules: {}.", preview.rules.join("; ")))
            .await;
    }
    for (backup, verdict) in &preview.backups {
        log.info(format!("{}: {verdict}", backup.id)).await;
    }
    let count = preview.removals().count();
    let size = human_bytes(preview.reclaimed());
    record_step(engine, job.id, 1).await;
    if dry_run {
        log.info(format!(
            "Dry run: {count} backups ({size}) would be removed; nothing was removed."
        ))
        .await;
        return Ok(());
    }
    ctx.check_stop()?;
    let actor = job.actor();
    let mut removed = 0;
    for (backup, verdict) in &preview.backups {
        if !matches!(verdict, Verdict::Remove) {
            continue;
        }
        ctx.check_stop()?;
        engine
            .remove_backup(&actor, backup, "not kept by the retention rules")
            .await
            .map_err(|e| format!("removing {} failed after {removed} of {count} removals: {e}", backup.id))?;
        removed += 1;
        log.info(format!("Removed {} ({}).", backup.id, human_bytes(backup.total_size)))
            .await;
    }
    record_step(engine, job.id, 2).await;
    log.info(format!("Removed {}.", backups(count))).await;
    let in_repository = preview
        .removals()
        .filter(|backup| backup.manifest.stored == Stored::Repository)
        .count();
    if in_repository > 0 {
        reclaim(ctx).await?;
    } else if count > 0 {
        log.info(format!("{size} freed.")).await;
    }
    record_step(engine, job.id, 3).await;
    Ok(())
}

/// Prunes the repository: deletes the data no backup needs any more (repacking packs that
/// hold some of it), alone — no backup, restore or verification of any environment on any
/// instance uses the repository meanwhile.
async fn reclaim(ctx: &JobContext<'_>) -> Result<(), Failure> {
    let (engine, log, job) = (ctx.engine, ctx.log, ctx.job);
    engine
        .use_repository(job.id, Mode::Prune, ctx.stop, log)
        .await
        .map_err(|why| why.map_or(Failure::Stopped, Failure::from))?;
    log.info("Pruning the repository: removing the data no backup needs any more…")
        .await;
    let result = engine
        .with_repository(false, |repo| {
            let before = repo.usage()?;
            let pruned = repo.prune()?;
            let after = repo.usage()?;
            Ok((before, pruned, after))
        })
        .await;
    engine.release_repository(job.id).await;
    let (before, pruned, after) = result.map_err(|e| format!("pruning the repository failed: {e}"))?;
    log.info(format!(
        "The repository went from {} to {}: {} freed ({} packs deleted, {} repacked).",
        human_bytes(before.bytes),
        human_bytes(after.bytes),
        human_bytes(before.bytes.saturating_sub(after.bytes)),
        pruned.packs_removed,
        human_bytes(pruned.bytes_repacked)
    ))
    .await;
    Ok(())
}

#[cfg(test)]
mod tests;
