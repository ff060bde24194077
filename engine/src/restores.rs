//! Restores as people ask for them: what restoring a backup would do (the preview), the
//! request with its confirmations, the Undo of a failed restore, and the failed restores an
//! environment shows a banner for. The job that does the work is [`crate::kinds::restore`].

use serde_json::json;

use crate::{
    Engine,
    accounts::Actor,
    audit::{self, Outcome},
    backups::{Backup, BackupError},
    config::Environment,
    db::{jobs as job_rows, now_ms},
    drivers,
    jobs::{Busy, Job, JobError, JobRequest, JobSpec, JobState},
    kinds::restore::{self, Restore},
    maintenance::Maintenance,
    manifest::new_backup_id,
    text::MAX_REASON_CHARS,
};

/// What restoring a backup would do, for the person about to confirm it.
#[derive(Debug, Clone)]
pub struct RestorePreview {
    pub backup: Backup,
    pub environment: Environment,
    /// Why it cannot be restored as configured now; empty when it can.
    pub problems: Vec<String>,
    /// Resources configured now that the backup does not hold: a restore leaves them as they are.
    pub not_in_backup: Vec<String>,
    /// The environment's maintenance mode now, if it is in it.
    pub maintenance: Option<Maintenance>,
    /// The job holding the environment now: a restore requested now would be refused.
    pub busy: Option<Busy>,
    /// The smoke checks run after restoring.
    pub smoke_checks: Vec<String>,
}

/// A request to restore a backup, with the confirmations a person gave.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub backup_id: String,
    /// Why; required.
    pub reason: String,
    /// The environment's name as the person typed it: must equal the backup's environment.
    pub confirm_environment: String,
    /// Production environments: the person confirmed a second time.
    pub confirm_production: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("there is no backup \"{0}\"")]
    NotFound(String),
    #[error("backup {backup} is of {environment}, which is no longer configured")]
    UnknownEnvironment { backup: String, environment: String },
    #[error("a reason is required: say why the environment is restored")]
    ReasonRequired,
    #[error("the reason is too long ({0} characters; at most {MAX_REASON_CHARS})")]
    ReasonTooLong(usize),
    #[error("type the environment's name, {0}, to confirm the restore")]
    NotConfirmed(String),
    #[error("{0} is a production environment: confirm the restore a second time")]
    ProductionNotConfirmed(String),
    #[error("this backup cannot be restored: {0}")]
    CannotRestore(String),
    #[error("job #{0} is not a restore")]
    NotARestore(i64),
    #[error("restore #{id} is {state}: only a failed, cancelled or interrupted restore can be undone")]
    NotUndoable { id: i64, state: JobState },
    #[error("restore #{id} was already undone by restore #{undo}")]
    AlreadyUndone { id: i64, undo: i64 },
    #[error(
        "restore #{job} has no safety backup to go back to ({safety_backup} was not completed): nothing was restored, so there is nothing to undo"
    )]
    NoSafetyBackup { job: i64, safety_backup: String },
    #[error("{0}")]
    Job(#[from] JobError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<BackupError> for RestoreError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::NotFound(id) => RestoreError::NotFound(id),
            BackupError::Job(e) => RestoreError::Job(e),
            BackupError::Database(e) => RestoreError::Database(e),
            BackupError::Storage(why) => RestoreError::CannotRestore(why),
        }
    }
}

/// A restore that failed, was cancelled or was interrupted, that nobody has undone, retried or
/// dismissed yet: the environment shows a banner for it.
#[derive(Debug, Clone)]
pub struct FailedRestore {
    pub job: Job,
    pub backup_id: String,
    pub safety_backup_id: String,
    /// The safety backup, when it was completed (then Undo can restore it).
    pub safety_backup: Option<Backup>,
}

/// Why `backup` cannot be restored into `environment` now: the configuration (resources gone
/// or changed driver) and, when that is fine, what the databases' accounts lack for the
/// drivers' restores. Shown by the preview, and a refusal when the restore is requested.
async fn restore_problems(environment: &Environment, backup: &Backup) -> Vec<String> {
    let mut problems = restore::problems(environment, &backup.manifest);
    if problems.is_empty() {
        for artifact in &backup.manifest.artifacts {
            if let Some(resource) = environment.resources.get(&artifact.resource)
                && let Err(why) = drivers::check_restore_privileges(resource).await
            {
                problems.push(format!("{} ({}): {why}", artifact.resource, artifact.driver));
            }
        }
    }
    problems
}

impl Engine {
    /// What restoring backup `id` would do.
    pub async fn restore_preview(&self, id: &str) -> Result<RestorePreview, RestoreError> {
        let backup = self
            .backup(id)
            .await?
            .ok_or_else(|| RestoreError::NotFound(id.to_string()))?;
        let environment = self.config().environment(&backup.environment).cloned().ok_or_else(|| {
            RestoreError::UnknownEnvironment {
                backup: backup.id.clone(),
                environment: backup.environment.clone(),
            }
        })?;
        let problems = restore_problems(&environment, &backup).await;
        let not_in_backup = environment
            .resources
            .keys()
            .filter(|name| !backup.manifest.artifacts.iter().any(|a| &a.resource == *name))
            .cloned()
            .collect();
        let maintenance = self
            .maintenance(&environment.name)
            .await
            .map_err(|e| RestoreError::CannotRestore(e.to_string()))?;
        let busy = job_rows::holder(self.db().pool(), &environment.name)
            .await?
            .map(Job::from)
            .map(|job| Busy::of(&job));
        Ok(RestorePreview {
            smoke_checks: environment.smoke_checks.keys().cloned().collect(),
            backup,
            environment,
            problems,
            not_in_backup,
            maintenance,
            busy,
        })
    }

    /// Queues a restore, once the person confirmed it: typed the environment's name, gave a
    /// reason, and — for production — confirmed twice. Refusals are audited.
    pub async fn request_restore(&self, actor: &Actor, request: &RestoreRequest) -> Result<Job, RestoreError> {
        let checked = self.check_restore_request(request).await;
        let backup = match checked {
            Ok(backup) => backup,
            Err(refusal) => {
                self.audit_refusal(actor, request, &refusal).await?;
                return Err(refusal);
            }
        };
        let spec = JobSpec::new(Restore {
            backup_id: backup.id.clone(),
            safety_backup_id: new_backup_id(&backup.environment, now_ms()),
            undo_of: None,
        });
        let job = self
            .request_job(
                actor,
                JobRequest {
                    environment: backup.environment.clone(),
                    spec,
                    reason: request.reason.trim().to_string(),
                    parent_id: None,
                },
            )
            .await?;
        Ok(job)
    }

    async fn check_restore_request(&self, request: &RestoreRequest) -> Result<Backup, RestoreError> {
        let backup = self
            .backup(&request.backup_id)
            .await?
            .ok_or_else(|| RestoreError::NotFound(request.backup_id.clone()))?;
        let environment =
            self.config()
                .environment(&backup.environment)
                .ok_or_else(|| RestoreError::UnknownEnvironment {
                    backup: backup.id.clone(),
                    environment: backup.environment.clone(),
                })?;
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(RestoreError::ReasonRequired);
        }
        let chars = reason.chars().count();
        if chars > MAX_REASON_CHARS {
            return Err(RestoreError::ReasonTooLong(chars));
        }
        if request.confirm_environment.trim() != environment.name {
            return Err(RestoreError::NotConfirmed(environment.name.clone()));
        }
        if environment.production && !request.confirm_production {
            return Err(RestoreError::ProductionNotConfirmed(environment.name.clone()));
        }
        let problems = restore_problems(environment, &backup).await;
        if !problems.is_empty() {
            return Err(RestoreError::CannotRestore(problems.join("; ")));
        }
        Ok(backup)
    }

    async fn audit_refusal(
        &self,
        actor: &Actor,
        request: &RestoreRequest,
        refusal: &RestoreError,
    ) -> Result<(), RestoreError> {
        let detail = json!({
            "backup_id": request.backup_id,
            "reason": request.reason,
            "refusal": refusal.to_string(),
        });
        audit::record(
            self.db().pool(),
            &actor
                .event("restore.request", Some(&request.backup_id), Outcome::Refused)
                .with_detail(detail),
        )
        .await?;
        Ok(())
    }

    /// Undo of a failed, cancelled or interrupted restore: queues a restore of its safety
    /// backup (itself preceded by a safety backup), and dismisses the failed restore's banner.
    pub async fn request_undo(&self, actor: &Actor, job_id: i64, reason: &str) -> Result<Job, RestoreError> {
        let failed = self.job(job_id).await?.ok_or(JobError::NotFound(job_id))?;
        let Some(Restore { safety_backup_id, .. }) = failed.spec.as_ref().and_then(JobSpec::get::<Restore>) else {
            return Err(RestoreError::NotARestore(job_id));
        };
        if let Some(undo) = job_rows::undo_of(self.db().pool(), job_id).await? {
            return Err(RestoreError::AlreadyUndone {
                id: job_id,
                undo: undo.id,
            });
        }
        if !failed.state.is_retryable() {
            return Err(RestoreError::NotUndoable {
                id: job_id,
                state: failed.state,
            });
        }
        let Some(safety_backup) = self.backup(safety_backup_id).await? else {
            return Err(RestoreError::NoSafetyBackup {
                job: job_id,
                safety_backup: safety_backup_id.clone(),
            });
        };
        if let Some(environment) = self.config().environment(&failed.environment) {
            let problems = restore_problems(environment, &safety_backup).await;
            if !problems.is_empty() {
                return Err(RestoreError::CannotRestore(problems.join("; ")));
            }
        }
        let reason = match reason.trim() {
            "" => format!("Undo of restore #{job_id}"),
            reason => reason.to_string(),
        };
        let job = self
            .request_job(
                actor,
                JobRequest {
                    environment: failed.environment.clone(),
                    spec: JobSpec::new(Restore {
                        backup_id: safety_backup_id.clone(),
                        safety_backup_id: new_backup_id(&failed.environment, now_ms()),
                        undo_of: Some(job_id),
                    }),
                    reason: reason.clone(),
                    parent_id: Some(job_id),
                },
            )
            .await?;
        let by = actor.username.as_deref().unwrap_or("steward");
        let mut tx = self.db().begin_write().await?;
        job_rows::acknowledge(&mut *tx, job_id, by, now_ms()).await?;
        let target = job_id.to_string();
        audit::record(
            &mut *tx,
            &actor
                .event("restore.undo", Some(&target), Outcome::Ok)
                .with_detail(json!({
                    "environment": failed.environment,
                    "undo_job": job.id,
                    "backup_id": safety_backup_id,
                    "reason": reason,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(job)
    }

    /// The environment's failed, cancelled or interrupted restores nobody has dealt with yet,
    /// newest first.
    pub async fn failed_restores(&self, environment: &str) -> Result<Vec<FailedRestore>, RestoreError> {
        let rows = job_rows::unacknowledged_failures(self.db().pool(), environment, "restore").await?;
        let mut failed = Vec::new();
        for job in rows.into_iter().map(Job::from) {
            let Some(Restore {
                backup_id,
                safety_backup_id,
                ..
            }) = job.spec.as_ref().and_then(JobSpec::get::<Restore>).cloned()
            else {
                continue;
            };
            let safety_backup = self.backup(&safety_backup_id).await?;
            failed.push(FailedRestore {
                job,
                backup_id,
                safety_backup_id,
                safety_backup,
            });
        }
        Ok(failed)
    }
}
