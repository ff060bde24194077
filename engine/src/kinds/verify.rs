//! The `verify` job kind: proves that backups restore. For each backup it verifies, it reads
//! every artifact back and compares it with the manifest (the checksums), then **test-restores**
//! each resource into scratch with its driver ([`drivers::test_restore`]): a directory into a
//! temporary tree compared with the manifest, a SQLite database into a temporary file checked
//! by `PRAGMA integrity_check`, a PostgreSQL or MySQL database into a scratch database on the
//! same server (with the resource's `verify_sql`, dropped afterwards), a `command` resource
//! through its `verify` script; `http` resources are skipped with the reason said. The result
//! goes into the backup's history of test restores (its newest is the backup's
//! proven-restorable badge, or a failed one with the tools' words) and the audit log
//! (`backup.verify` for the checksums, `backup.test_restore` for the rest).
//!
//! Which backups: one by id, or `count` of an environment's backups chosen when the job is
//! requested by [`pick`] — never test-restored first, then those whose last test restore is the
//! oldest, ties in random order — and kept in the job's input, so that a retry verifies the
//! same ones.
//!
//! Read-only: it does not take the environment's slot, and it never touches the live systems
//! (the scratch databases are new databases of their own, `steward_verify_<job>_<resource>`).
//! Scratch files live under `<data_dir>/.verify-scratch/job-N` and are removed after each
//! resource, and at start-up when a crash left them.

use std::path::PathBuf;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    Config, Engine,
    accounts::Actor,
    backups::{BackupError, VerifyReport},
    config::Environment,
    db::{backups as rows, repository_use::Mode},
    drivers::{self, Context, DriverError, TestRestored},
    jobs::{Failure, Job, JobContext, JobError, JobKind, JobRequest, JobSpec, Outcome, Plan},
    kinds::{backup, restore},
    output::JobLog,
};

/// Verify backups: checksums and a test restore of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verify {
    /// The backup, when the job verifies one (the only field of jobs written before test
    /// restores, which read the same way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The backups, when the job verifies several (chosen when it was requested).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<String>,
}

impl Verify {
    /// A job verifying `ids`, in this order.
    pub fn of(mut ids: Vec<String>) -> Verify {
        if ids.len() == 1 {
            Verify {
                backup_id: ids.pop(),
                backups: Vec::new(),
            }
        } else {
            Verify {
                backup_id: None,
                backups: ids,
            }
        }
    }

    /// The backups this job verifies, in order.
    pub fn targets(&self) -> Vec<&str> {
        self.backup_id.iter().chain(&self.backups).map(String::as_str).collect()
    }
}

impl JobKind for Verify {
    const NAME: &'static str = "verify";

    fn plan<'a>(&'a self, engine: &'a Engine, environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        Box::pin(async move {
            let targets = self.targets();
            if targets.is_empty() {
                return Err(JobError::Refused("no backup to verify was named".into()));
            }
            for id in &targets {
                let known = rows::get(engine.db().pool(), id).await?;
                if known.is_none_or(|row| row.environment != environment.name) {
                    return Err(JobError::UnknownBackup((*id).to_string()));
                }
            }
            Ok(Plan {
                exclusive: false,
                steps: targets
                    .iter()
                    .map(|id| format!("Verify and test-restore {id}"))
                    .collect(),
            })
        })
    }

    fn secrets(&self, config: &Config, environment: &str) -> Vec<String> {
        config.environment(environment).map(backup::secrets).unwrap_or_default()
    }

    /// The backup, when the job verifies exactly one.
    fn backup_id(&self) -> Option<&str> {
        match self.targets()[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { verify_all(ctx, &self.targets()).await.into() })
    }

    fn recover(engine: &Engine) -> BoxFuture<'_, ()> {
        Box::pin(restore::clean_scratch_in(engine, scratch_root(engine)))
    }
}

/// A backup a verify run may choose: its id and when its newest test restore ended (`None`:
/// never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub last_test_restore_ms: Option<i64>,
}

/// Chooses `count` backups to verify: those never test-restored first, then those whose last
/// test restore is the oldest; backups that tie (all the never-verified ones, say) come in
/// random order, from `random`.
pub fn pick(candidates: Vec<Candidate>, count: usize, mut random: impl FnMut() -> u64) -> Vec<String> {
    let mut keyed: Vec<(i64, u64, String)> = candidates
        .into_iter()
        .map(|c| (c.last_test_restore_ms.unwrap_or(i64::MIN), random(), c.id))
        .collect();
    keyed.sort();
    keyed.into_iter().take(count).map(|(_, _, id)| id).collect()
}

impl Engine {
    /// Queues a verification (checksums and a test restore) of backup `id` as a read-only job
    /// (it does not wait for the environment's other jobs).
    pub async fn request_verify(&self, actor: &Actor, id: &str) -> Result<Job, BackupError> {
        let backup = self
            .backup(id)
            .await?
            .ok_or_else(|| BackupError::NotFound(id.to_string()))?;
        self.queue_verify(actor, &backup.environment, vec![backup.id]).await
    }

    /// Queues a verification of `count` backups of `environment`, chosen now by [`pick`].
    pub async fn request_verification(&self, actor: &Actor, environment: &str, count: u32) -> Result<Job, BackupError> {
        let chosen = self.choose_for_verification(environment, count).await?;
        self.queue_verify(actor, environment, chosen).await
    }

    /// The job input of a verification of `count` backups of `environment`, chosen now by
    /// [`pick`] (a schedule's `verify` runs queue it). `Err` when there is nothing to verify.
    pub async fn verification_of(&self, environment: &str, count: u32) -> Result<Verify, BackupError> {
        Ok(Verify::of(self.choose_for_verification(environment, count).await?))
    }

    async fn choose_for_verification(&self, environment: &str, count: u32) -> Result<Vec<String>, BackupError> {
        if self.config().environment(environment).is_none() {
            return Err(JobError::UnknownEnvironment(environment.to_string()).into());
        }
        let candidates = rows::verification_candidates(self.db().pool(), environment)
            .await?
            .into_iter()
            .map(|(id, _, last)| Candidate {
                id,
                last_test_restore_ms: last,
            })
            .collect();
        let chosen = pick(candidates, count.max(1) as usize, || {
            // Random enough to sample backups; uuid's generator is already in the tree.
            uuid::Uuid::new_v4().as_u64_pair().0
        });
        if chosen.is_empty() {
            return Err(JobError::Refused(format!(
                "{environment} has no backups to verify: take one with `steward backup create {environment}`"
            ))
            .into());
        }
        Ok(chosen)
    }

    async fn queue_verify(&self, actor: &Actor, environment: &str, ids: Vec<String>) -> Result<Job, BackupError> {
        Ok(self
            .request_job(
                actor,
                JobRequest {
                    environment: environment.to_string(),
                    spec: JobSpec::new(Verify::of(ids)),
                    reason: String::new(),
                    parent_id: None,
                },
            )
            .await?)
    }
}

/// Verifies each backup in turn; fails when any failed (after trying them all).
async fn verify_all(ctx: &JobContext<'_>, targets: &[&str]) -> Result<(), Failure> {
    // No prune may repack what is being read (given back at the end, or when the job ends).
    ctx.engine
        .use_repository(ctx.job.id, Mode::Use, ctx.stop, ctx.log)
        .await
        .map_err(|why| why.map_or(Failure::Stopped, Failure::from))?;
    let result = verify_each(ctx, targets).await;
    ctx.engine.release_repository(ctx.job.id).await;
    result
}

async fn verify_each(ctx: &JobContext<'_>, targets: &[&str]) -> Result<(), Failure> {
    let mut failed = Vec::new();
    for (done, id) in targets.iter().enumerate() {
        ctx.check_stop()?;
        match verify_one(ctx, id).await {
            Ok(()) => {}
            Err(Failure::Stopped) => return Err(Failure::Stopped),
            Err(failure) => failed.push(format!("{id}: {}", failure.message())),
        }
        backup::record_step(ctx.engine, ctx.job.id, i64::try_from(done + 1).unwrap_or(i64::MAX)).await;
    }
    match failed.len() {
        0 => Ok(()),
        1 if targets.len() == 1 => Err(failed.remove(0).into()),
        n => Err(format!("{n} of {} backups failed: {}", targets.len(), failed.join(" | ")).into()),
    }
}

/// Checksums, then a test restore of every resource; the result goes into the catalog.
async fn verify_one(ctx: &JobContext<'_>, backup_id: &str) -> Result<(), Failure> {
    let (engine, log, job) = (ctx.engine, ctx.log, ctx.job);
    let actor = &job.actor();
    let record = |checked: String, error: Option<String>| async move {
        let result = engine
            .record_test_restore(actor, backup_id, Some(job.id), &checked, error.as_deref())
            .await;
        if let Err(e) = result {
            log.error(format!("Recording the test restore of {backup_id} failed: {e}"))
                .await;
        }
    };

    log.info(format!("Reading every artifact of {backup_id} back…")).await;
    let report = engine
        .verify_backup(actor, backup_id)
        .await
        .map_err(|e| e.to_string())?;
    log_report(log, &report).await;
    if !report.ok() {
        let error = format!(
            "the backup is damaged, so it was not test-restored: {}",
            report.summary()
        );
        record("checksums".to_string(), Some(error.clone())).await;
        return Err(error.into());
    }
    log.info(format!("Backup {backup_id} is intact: {}.", report.summary()))
        .await;
    let mut checked = vec![format!("checksums: {}", report.summary())];

    let cataloged = engine
        .backup(backup_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("backup {backup_id} is not in the catalog"))?;
    let manifest = engine.stored_manifest(&cataloged).await?;
    let environment = ctx.environment()?;
    let scratch_root = scratch_dir(engine, job.id);
    let report = |_done: u64, _total: Option<u64>| {};
    let mut failures = Vec::new();
    for artifact in &manifest.artifacts {
        if ctx.stop.is_cancelled() {
            let _ = tokio::fs::remove_dir_all(&scratch_root).await;
            return Err(Failure::Stopped);
        }
        let name = &artifact.resource;
        log.info(format!(
            "Test-restoring {name} ({}) from {} into scratch…",
            artifact.driver, artifact.file
        ))
        .await;
        let scratch = scratch_root.join(name);
        tokio::fs::create_dir_all(&scratch)
            .await
            .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        let driver_ctx = Context {
            environment: &environment.name,
            resource: name,
            backup_id,
            description: &manifest.description,
            log,
            stop: ctx.stop,
            progress: &report,
            scratch: &scratch,
            tool_env: ctx.tool_env(),
            grace: ctx.grace(),
        };
        let result = match engine.fetch_artifact(&manifest, artifact, &scratch).await {
            Ok(fetched) => {
                drivers::test_restore(
                    &artifact.driver,
                    &artifact.details,
                    environment.resources.get(name),
                    &fetched,
                    &scratch_database(job.id, name, &uuid::Uuid::new_v4().simple().to_string()[..6]),
                    &driver_ctx,
                )
                .await
            }
            Err(e) => Err(DriverError::Failed(e)),
        };
        let _ = tokio::fs::remove_dir_all(&scratch_root).await;
        match result {
            Ok(TestRestored::Checked(what)) => {
                log.info(format!("{name}: passed — {what}.")).await;
                checked.push(format!("{name}: {what}"));
            }
            Ok(TestRestored::Skipped(why)) => {
                log.info(format!("{name}: skipped — {why}.")).await;
                checked.push(format!("{name}: skipped, {why}"));
            }
            Err(DriverError::Cancelled) => return Err(Failure::Stopped),
            Err(e) => {
                log.error(format!("{name}: the test restore FAILED: {e}")).await;
                failures.push(format!("{name} ({}): {e}", artifact.driver));
            }
        }
    }
    let checked = checked.join("; ");
    if failures.is_empty() {
        log.info(format!("Backup {backup_id} is proven restorable: {checked}."))
            .await;
        record(checked, None).await;
        Ok(())
    } else {
        let error = failures.join("; ");
        log.error(format!("The test restore of {backup_id} failed: {error}"))
            .await;
        record(checked, Some(error.clone())).await;
        Err(error.into())
    }
}

/// One line per artifact checked: `ok: …` or `FAILED: … : why`.
pub(crate) async fn log_report(log: &JobLog, report: &VerifyReport) {
    for artifact in &report.artifacts {
        match &artifact.problem {
            None => log.info(format!("ok: {} ({})", artifact.file, artifact.resource)).await,
            Some(problem) => {
                log.error(format!("FAILED: {} ({}): {problem}", artifact.file, artifact.resource))
                    .await
            }
        }
    }
}

/// The scratch database a test restore of `resource` by job `job_id` restores into:
/// `steward_verify_<job>_<resource>_<nonce>`, a plain identifier (lowercase letters, digits,
/// `_`) within PostgreSQL's 63 bytes. The nonce keeps two Stewards with catalogs of their own
/// (whose job numbers repeat) apart on one database server.
pub fn scratch_database(job_id: i64, resource: &str, nonce: &str) -> String {
    let plain = |s: &str| -> String {
        s.chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '_') => c,
                _ => '_',
            })
            .collect()
    };
    let mut name = format!("steward_verify_{job_id}_{}", plain(resource));
    let nonce = plain(nonce);
    name.truncate(62 - nonce.len());
    format!("{name}_{nonce}")
}

/// Where a verify job's drivers put scratch files (removed after each resource).
fn scratch_dir(engine: &Engine, job_id: i64) -> PathBuf {
    scratch_root(engine).join(format!("job-{job_id}"))
}

fn scratch_root(engine: &Engine) -> PathBuf {
    engine.config().data_dir.join(".verify-scratch")
}

#[cfg(test)]
mod tests;
