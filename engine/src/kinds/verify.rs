//! The `verify` job kind: reads every artifact of a backup back, logs each, and fails when
//! anything is missing, changed or damaged (the catalog and the audit log record the result).
//! Read-only: it does not take the environment's slot.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    Engine,
    accounts::Actor,
    backups::{BackupError, VerifyReport},
    config::Environment,
    jobs::{Failure, Job, JobContext, JobError, JobKind, JobRequest, JobSpec, Outcome, Plan},
    output::JobLog,
};

/// Verify backup `backup_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verify {
    pub backup_id: String,
}

impl JobKind for Verify {
    const NAME: &'static str = "verify";

    fn plan<'a>(&'a self, _engine: &'a Engine, _environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        Box::pin(async {
            Ok(Plan {
                exclusive: false,
                steps: vec!["Verify checksums".to_string()],
            })
        })
    }

    fn backup_id(&self) -> Option<&str> {
        Some(&self.backup_id)
    }

    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { verify(ctx, &self.backup_id).await.into() })
    }
}

impl Engine {
    /// Queues a verification of backup `id` as a read-only job (it does not wait for the
    /// environment's other jobs).
    pub async fn request_verify(&self, actor: &Actor, id: &str) -> Result<Job, BackupError> {
        let backup = self
            .backup(id)
            .await?
            .ok_or_else(|| BackupError::NotFound(id.to_string()))?;
        Ok(self
            .request_job(
                actor,
                JobRequest {
                    environment: backup.environment,
                    spec: JobSpec::new(Verify { backup_id: backup.id }),
                    reason: String::new(),
                    parent_id: None,
                },
            )
            .await?)
    }
}

async fn verify(ctx: &JobContext<'_>, backup_id: &str) -> Result<(), Failure> {
    let (engine, log) = (ctx.engine, ctx.log);
    let actor = ctx.job.actor();
    log.info(format!("Reading every artifact of {backup_id} back…")).await;
    let report = engine
        .verify_backup(&actor, backup_id)
        .await
        .map_err(|e| e.to_string())?;
    log_report(log, &report).await;
    if report.ok() {
        log.info(format!("Backup {backup_id} is intact: {}.", report.summary()))
            .await;
        Ok(())
    } else {
        Err(format!("backup {backup_id} is damaged: {}", report.summary()).into())
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
