//! The `restore` job kind: an environment back to the state of one of its backups.
//!
//! Steps, each recorded as the job's progress and in the audit log:
//! 1. verify every artifact of the backup against its manifest — a damaged or incomplete backup
//!    is refused before anything is touched;
//! 2. enter maintenance (the environment's `enter` hook);
//! 3. take a safety backup (trigger `pre-restore`, linked to this job), verified as every
//!    backup is;
//! 4. restore each resource with its driver;
//! 5. run the environment's smoke checks;
//! 6. leave maintenance.
//!
//! On failure the job stops where it is, the environment stays in maintenance (unless
//! `maintenance.leave_on_restore_failure`), and the log, the error and the audit event say
//! which step failed, what was already restored, and which safety backup brings the
//! environment back (the console's Undo). An environment already in maintenance because of an
//! earlier restore (one that failed) is taken over, and left at the end; one put into
//! maintenance by hand stays in it.

use std::path::PathBuf;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    Config, Engine,
    accounts::Actor,
    audit::{self, Outcome},
    backups::Backup as CatalogBackup,
    config::{Environment, Resource},
    db::{now_ms, repository_use::Mode},
    drivers::{self, Context, DriverError, directory},
    jobs::{self, Failure, Job, JobContext, JobError, JobKind, Plan},
    kinds::{backup, verify::log_report},
    maintenance::{HookCall, call_hook},
    manifest::{Manifest, ManifestArtifact, Trigger, new_backup_id},
    output::JobLog,
    text::{hh_mm_utc, human_bytes},
};

/// Restore the environment from backup `backup_id`: verify it, enter maintenance, take the
/// safety backup `safety_backup_id` (its id chosen at request time, so that everything about
/// the restore can name it from the start), restore every resource, run the smoke checks,
/// leave maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    pub backup_id: String,
    pub safety_backup_id: String,
    /// The failed restore whose safety backup this one brings back (an Undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_of: Option<i64>,
}

impl JobKind for Restore {
    const NAME: &'static str = "restore";

    fn title(&self) -> String {
        match self.undo_of {
            None => "restore".to_string(),
            Some(_) => "undo".to_string(),
        }
    }

    fn plan<'a>(&'a self, engine: &'a Engine, environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        Box::pin(async move {
            let backup = crate::db::backups::get(engine.db().pool(), &self.backup_id)
                .await?
                .and_then(|row| CatalogBackup::try_from(row).ok())
                .filter(|backup| backup.environment == environment.name)
                .ok_or_else(|| JobError::UnknownBackup(self.backup_id.clone()))?;
            let problems = problems(environment, &backup.manifest);
            if !problems.is_empty() {
                return Err(JobError::CannotRestore(problems.join("; ")));
            }
            Ok(Plan {
                exclusive: true,
                steps: steps(environment, &backup.manifest, &self.safety_backup_id),
            })
        })
    }

    fn secrets(&self, config: &Config, environment: &str) -> Vec<String> {
        config.environment(environment).map(backup::secrets).unwrap_or_default()
    }

    fn backup_id(&self) -> Option<&str> {
        Some(&self.backup_id)
    }

    fn writes_backup(&self) -> Option<&str> {
        Some(&self.safety_backup_id)
    }

    /// A retry takes a safety backup of its own.
    fn for_retry(&self, environment: &str) -> Self {
        Restore {
            safety_backup_id: new_backup_id(environment, now_ms()),
            ..self.clone()
        }
    }

    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, jobs::Outcome> {
        Box::pin(async move {
            let input = Input {
                backup_id: &self.backup_id,
                safety_backup_id: &self.safety_backup_id,
                undo_of: self.undo_of,
            };
            run(ctx, input).await.into()
        })
    }

    fn recover(engine: &Engine) -> BoxFuture<'_, ()> {
        Box::pin(clean_scratch_in(engine, scratch_root(engine)))
    }
}

/// The steps of restoring `manifest` into `environment`, as the job page lists them.
fn steps(environment: &Environment, manifest: &Manifest, safety_backup_id: &str) -> Vec<String> {
    let mut steps = vec![
        format!("Verify backup {}", manifest.id),
        "Enter maintenance".to_string(),
        format!("Take safety backup {safety_backup_id}"),
    ];
    for artifact in &manifest.artifacts {
        steps.push(format!("Restore {} ({})", artifact.resource, artifact.driver));
    }
    if !environment.smoke_checks.is_empty() {
        steps.push("Run smoke checks".to_string());
    }
    steps.push("Leave maintenance".to_string());
    steps
}

/// Why `manifest` cannot be restored into `environment` as it is configured now; empty when it
/// can. Checked when the restore is requested and again when it starts.
pub fn problems(environment: &Environment, manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    if manifest.environment != environment.name {
        problems.push(format!(
            "backup {} is of {}, not of {}",
            manifest.id, manifest.environment, environment.name
        ));
    }
    for artifact in &manifest.artifacts {
        let name = &artifact.resource;
        match environment.resources.get(name) {
            None => problems.push(format!(
                "{name} ({}) is in the backup but no longer configured for {}",
                artifact.driver, environment.name
            )),
            Some(resource) if resource.driver() != artifact.driver => problems.push(format!(
                "{name} was backed up with the {} driver but is now configured with the {} driver",
                artifact.driver,
                resource.driver()
            )),
            Some(Resource::Http { restore_url: None, .. }) => problems.push(format!(
                "{name} (http) has no restore_url: add the remote system's restore endpoint to its configuration"
            )),
            Some(Resource::Command { restore: None, .. }) => problems.push(format!(
                "{name} (command) has no restore script: add `restore = [\"…\"]` to its configuration"
            )),
            Some(_) => {}
        }
    }
    if manifest.artifacts.is_empty() {
        problems.push(format!("backup {} holds no artifacts", manifest.id));
    }
    problems
}

/// What the job was asked to do.
pub(crate) struct Input<'a> {
    pub backup_id: &'a str,
    pub safety_backup_id: &'a str,
    pub undo_of: Option<i64>,
}

/// How far a restore got: what a failure report needs to say what state things are in.
#[derive(Default)]
struct Progress {
    steps_done: i64,
    /// The step being worked on when it stopped.
    step: String,
    maintenance_entered: bool,
    /// Whether the restore may leave maintenance at the end (it entered it, or took it over
    /// from a failed restore); `false` when a person put the environment in maintenance.
    leave_at_end: bool,
    safety_backup_done: bool,
    restored: Vec<String>,
}

/// Restores the backup; a failure names the step and the state the environment is in.
async fn run(ctx: &JobContext<'_>, input: Input<'_>) -> Result<(), Failure> {
    let (engine, job, log) = (ctx.engine, ctx.job, ctx.log);
    let environment = ctx.environment()?;
    let actor = job.actor();
    audit_event(engine, &actor, job, &input, "restore.start", Outcome::Ok, json!({})).await;
    let mut progress = Progress::default();
    let result = restore(ctx, environment, &actor, &input, &mut progress).await;
    match result {
        Ok(()) => {
            log.info(format!(
                "{} is restored to backup {} and out of maintenance.",
                environment.name, input.backup_id
            ))
            .await;
            audit_event(engine, &actor, job, &input, "restore.finish", Outcome::Ok, json!({})).await;
            Ok(())
        }
        Err(why) => Err(fail(ctx, environment, &actor, &input, progress, why).await),
    }
}

async fn restore(
    ctx: &JobContext<'_>,
    environment: &Environment,
    actor: &Actor,
    input: &Input<'_>,
    progress: &mut Progress,
) -> Result<(), Failure> {
    let (engine, job, log, stop) = (ctx.engine, ctx.job, ctx.log, ctx.stop);
    let stopped = || Err(Failure::Stopped);

    // 1. The backup, checked before anything is touched.
    progress.step = format!("Verify backup {}", input.backup_id);
    let (backup, manifest) = verify(engine, environment, actor, input.backup_id, log).await?;
    step_done(engine, actor, job, input, progress).await;
    if stop.is_cancelled() {
        return stopped();
    }

    // 2. Maintenance.
    progress.step = "Enter maintenance".to_string();
    match engine.maintenance(&environment.name).await.map_err(|e| e.to_string())? {
        Some(current) => {
            progress.leave_at_end = current.job_id.is_some();
            let entered_by = match current.job_id {
                Some(id) => format!("restore #{id}"),
                None => current.entered_by.clone(),
            };
            log.info(format!(
                "{} is already in maintenance (since {} UTC, entered by {entered_by}: {}); the restore continues in it{}.",
                environment.name,
                hh_mm_utc(current.since_ms),
                current.reason,
                if progress.leave_at_end {
                    " and leaves it at the end"
                } else {
                    ", which was entered by hand, and does not leave it"
                }
            ))
            .await;
        }
        None => {
            let reason = format!("restore #{} of backup {}", job.id, input.backup_id);
            engine
                .enter_maintenance(actor, &environment.name, &reason, Some(job.id), &ctx.watch())
                .await
                .map_err(|e| e.to_string())?;
            progress.leave_at_end = true;
        }
    }
    progress.maintenance_entered = true;
    step_done(engine, actor, job, input, progress).await;
    if stop.is_cancelled() {
        return stopped();
    }

    // 3. The safety backup: the state this restore is about to replace.
    progress.step = format!("Take safety backup {}", input.safety_backup_id);
    log.info(format!(
        "Taking the safety backup {} of {} as it is now…",
        input.safety_backup_id, environment.name
    ))
    .await;
    let description = match input.undo_of {
        Some(failed) => format!("Safety backup before undoing restore #{failed} (restore #{})", job.id),
        None => format!(
            "Safety backup before restoring {} (restore #{})",
            input.backup_id, job.id
        ),
    };
    let safety = backup::Input {
        backup_id: input.safety_backup_id,
        description: &description,
        trigger: Trigger::PreRestore,
        own_steps: false,
    };
    backup::run(ctx, safety).await?;
    progress.safety_backup_done = true;
    step_done(engine, actor, job, input, progress).await;

    // 4. Each resource, from the backup's artifacts. The repository is taken so that no prune
    // repacks what is being read (given back after the loop, or when the job ends).
    engine
        .use_repository(job.id, Mode::Use, stop, log)
        .await
        .map_err(|why| why.map_or(Failure::Stopped, Failure::from))?;
    let scratch_root = scratch_dir(engine, job.id);
    let tool_env = ctx.tool_env();
    let report = |_done: u64, _total: Option<u64>| {};
    for artifact in &manifest.artifacts {
        if stop.is_cancelled() {
            return stopped();
        }
        let name = &artifact.resource;
        progress.step = format!("Restore {name} ({})", artifact.driver);
        let resource = environment
            .resources
            .get(name)
            .ok_or_else(|| format!("{name} is no longer configured"))?;
        log.info(format!(
            "Restoring {name} ({}) from {}…",
            artifact.driver, artifact.file
        ))
        .await;
        let scratch = scratch_root.join(name);
        tokio::fs::create_dir_all(&scratch)
            .await
            .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        let ctx = Context {
            environment: &environment.name,
            resource: name,
            backup_id: &backup.id,
            description: &backup.description,
            log,
            stop,
            progress: &report,
            scratch: &scratch,
            tool_env,
            grace: ctx.grace(),
        };
        let result = restore_artifact(engine, &manifest, artifact, resource, &scratch, &ctx).await;
        let _ = tokio::fs::remove_dir_all(&scratch_root).await;
        match result {
            Ok(()) => {}
            Err(DriverError::Cancelled) => return stopped(),
            Err(e) => return Err(format!("{} / {name} ({}): {e}", environment.name, artifact.driver).into()),
        }
        log.info(format!("{name} is restored.")).await;
        progress.restored.push(name.clone());
        step_done(engine, actor, job, input, progress).await;
    }

    engine.release_repository(job.id).await;

    // 5. Smoke checks: is the restored system working?
    if !environment.smoke_checks.is_empty() {
        progress.step = "Run smoke checks".to_string();
        for (name, check) in &environment.smoke_checks {
            if stop.is_cancelled() {
                return stopped();
            }
            let call = HookCall {
                what: format!("the smoke check {name}"),
                vars: vec![
                    ("STEWARD_ENVIRONMENT".to_string(), environment.name.clone()),
                    ("STEWARD_RESTORED_BACKUP".to_string(), backup.id.clone()),
                ],
                body: None,
            };
            call_hook(check, &call, &ctx.watch()).await?;
            log.info(format!("Smoke check {name} passed.")).await;
        }
        step_done(engine, actor, job, input, progress).await;
    }

    // 6. Out of maintenance, with what `enter` reported.
    progress.step = "Leave maintenance".to_string();
    if progress.leave_at_end {
        let reason = format!("restore #{} of backup {} finished", job.id, input.backup_id);
        engine
            .leave_maintenance(actor, &environment.name, &reason, &ctx.watch())
            .await
            .map_err(|e| e.to_string())?;
    } else {
        log.info(format!(
            "{} stays in maintenance: it was put there by hand; leave it by hand when you are done.",
            environment.name
        ))
        .await;
    }
    step_done(engine, actor, job, input, progress).await;
    Ok(())
}

/// Step 1: the backup exists, belongs here, can be restored as configured, and every artifact
/// matches its manifest (the outcome is recorded in the catalog like any verification).
async fn verify(
    engine: &Engine,
    environment: &Environment,
    actor: &Actor,
    backup_id: &str,
    log: &JobLog,
) -> Result<(CatalogBackup, Manifest), String> {
    let backup = engine
        .backup(backup_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("there is no backup \"{backup_id}\""))?;
    log.info(format!(
        "Reading every artifact of {backup_id} ({} resource(s), {}) back…",
        backup.manifest.artifacts.len(),
        human_bytes(backup.total_size)
    ))
    .await;
    let report = engine
        .verify_backup(actor, backup_id)
        .await
        .map_err(|e| e.to_string())?;
    log_report(log, &report).await;
    if !report.ok() {
        return Err(format!(
            "backup {backup_id} is damaged, so nothing was touched: {}",
            report.summary()
        ));
    }
    // The manifest checked is the one in storage; restore from exactly that.
    let manifest = engine.stored_manifest(&backup).await?;
    let problems = problems(environment, &manifest);
    if !problems.is_empty() {
        return Err(format!(
            "backup {backup_id} cannot be restored, so nothing was touched: {}",
            problems.join("; ")
        ));
    }
    log.info(format!("Backup {backup_id} is intact: {}.", report.summary()))
        .await;
    Ok((backup, manifest))
}

/// Records a finished step: the job's progress, and an audit event.
async fn step_done(engine: &Engine, actor: &Actor, job: &Job, input: &Input<'_>, progress: &mut Progress) {
    progress.steps_done += 1;
    backup::record_step(engine, job.id, progress.steps_done).await;
    let detail = json!({ "step": progress.step, "step_number": progress.steps_done });
    audit_event(engine, actor, job, input, "restore.step", Outcome::Ok, detail).await;
}

/// Ends a failed restore: leaves maintenance only when configured to, says exactly what state
/// the environment is in and what brings it back, alerts (log line, audit event). Returns the
/// job's error: the step, the tool's message, and the state the environment is in.
async fn fail(
    ctx: &JobContext<'_>,
    environment: &Environment,
    actor: &Actor,
    input: &Input<'_>,
    progress: Progress,
    why: Failure,
) -> Failure {
    let (engine, job, log, stop) = (ctx.engine, ctx.job, ctx.log, ctx.stop);
    let why = why.message();
    let name = &environment.name;
    let total = job.steps.len();
    let step_number = progress.steps_done + 1;
    let error = if stop.is_cancelled() {
        format!("Stopped at step {step_number} of {total} ({})", progress.step)
    } else {
        format!("Step {step_number} of {total} ({}) failed: {why}", progress.step)
    };

    let mut in_maintenance = progress.maintenance_entered;
    if progress.maintenance_entered && environment.maintenance.leave_on_restore_failure && progress.leave_at_end {
        log.warn(format!(
            "Leaving maintenance although the restore failed (maintenance.leave_on_restore_failure is set for {name})."
        ))
        .await;
        let reason = format!("restore #{} failed; configured to leave maintenance on failure", job.id);
        match engine.leave_maintenance(actor, name, &reason, &ctx.watch()).await {
            Ok(()) => in_maintenance = false,
            Err(e) => log.error(e.to_string()).await,
        }
    }

    // The resources in the backup, in the order they are restored, from the job's steps.
    let resources: Vec<&str> = job
        .steps
        .iter()
        .filter_map(|s| s.strip_prefix("Restore "))
        .filter_map(|s| s.split(' ').next())
        .collect();
    let in_progress = progress.step.strip_prefix("Restore ").and_then(|s| s.split(' ').next());
    let backup_id = input.backup_id;
    let state = if progress.restored.is_empty() && in_progress.is_none() {
        format!("Nothing of {name} was changed by this restore.")
    } else if progress.restored.len() == resources.len() {
        format!(
            "Every resource of {name} was restored from backup {backup_id}: {}.",
            progress.restored.join(", ")
        )
    } else {
        let untouched: Vec<&str> = resources
            .iter()
            .copied()
            .filter(|r| !progress.restored.iter().any(|done| done == r) && Some(*r) != in_progress)
            .collect();
        let mut parts = Vec::new();
        if !progress.restored.is_empty() {
            parts.push(format!(
                "restored from backup {backup_id}: {}",
                progress.restored.join(", ")
            ));
        }
        if let Some(current) = in_progress {
            parts.push(format!("{current} may be half-restored"));
        }
        if !untouched.is_empty() {
            parts.push(format!("not touched: {}", untouched.join(", ")));
        }
        format!("{name} is partly restored — {}.", parts.join("; "))
    };
    let maintenance = if in_maintenance {
        format!("{name} is still in maintenance.")
    } else {
        format!("{name} is not in maintenance.")
    };
    let way_back = if progress.safety_backup_done {
        format!(
            "The safety backup {} holds {name} as it was before this restore: Undo restores it.",
            input.safety_backup_id
        )
    } else if progress.maintenance_entered {
        "No safety backup was needed: nothing was restored. Retry the restore, or leave maintenance.".to_string()
    } else {
        "Fix the cause and restore again.".to_string()
    };
    log.error(format!("Restore failed: {error}")).await;
    log.error(format!("{state} {maintenance} {way_back}")).await;
    tracing::error!(
        job = job.id,
        environment = %name,
        backup = input.backup_id,
        safety_backup = input.safety_backup_id,
        in_maintenance,
        "restore failed: {error}"
    );
    let detail = json!({
        "step": progress.step,
        "error": error,
        "in_maintenance": in_maintenance,
        "restored": progress.restored,
        "safety_backup_complete": progress.safety_backup_done,
    });
    audit_event(engine, actor, job, input, "restore.finish", Outcome::Failed, detail).await;
    // The job's error is what the environment's banner shows: the step, the tool's words, and
    // the state things are in (the way back is the banner's Undo).
    if stop.is_cancelled() {
        return Failure::Stopped;
    }
    Failure::from(format!("{}. {state} {maintenance}", error.trim_end_matches('.')))
}

/// Records a restore event with what every restore event carries: the environment, the job,
/// the backup, the safety backup and the reason.
async fn audit_event(
    engine: &Engine,
    actor: &Actor,
    job: &Job,
    input: &Input<'_>,
    action: &str,
    outcome: Outcome,
    mut detail: serde_json::Value,
) {
    detail["environment"] = json!(job.environment);
    detail["job"] = json!(job.id);
    detail["backup_id"] = json!(input.backup_id);
    detail["safety_backup_id"] = json!(input.safety_backup_id);
    detail["reason"] = json!(job.reason);
    if let Some(failed) = input.undo_of {
        detail["undo_of"] = json!(failed);
    }
    let target = job.id.to_string();
    let event = actor.event(action, Some(&target), outcome).with_detail(detail);
    if let Err(e) = audit::record(engine.db().pool(), &event).await {
        tracing::warn!(job = job.id, action, error = %e, "recording a restore event in the audit log failed");
    }
}

/// Where a restore's drivers put scratch files (removed after each resource).
fn scratch_dir(engine: &Engine, job_id: i64) -> PathBuf {
    scratch_root(engine).join(format!("job-{job_id}"))
}

fn scratch_root(engine: &Engine) -> PathBuf {
    engine.config().data_dir.join(".restore-scratch")
}

/// Removes the scratch files under `root` (`job-N` directories) of jobs that no longer run (a
/// crash cut them off); called when the workers start, for restores and verifications. They
/// may hold unpacked backup data, so they are not left lying around.
pub(crate) async fn clean_scratch_in(engine: &Engine, root: PathBuf) {
    let Ok(mut entries) = tokio::fs::read_dir(root).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.strip_prefix("job-"))
            .and_then(|n| n.parse().ok());
        let running = match id {
            Some(id) => matches!(engine.job(id).await, Ok(Some(job)) if !job.state.is_finished()),
            None => false,
        };
        if !running {
            match tokio::fs::remove_dir_all(entry.path()).await {
                Ok(()) => tracing::info!(path = %entry.path().display(), "removed what an interrupted job left"),
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "removing what an interrupted job left failed")
                }
            }
        }
    }
}
#[cfg(test)]
mod shared_bucket_tests;
#[cfg(test)]
mod tests;

/// Restores one resource from its artifact: a tree straight from the repository into the
/// directory driver's new tree beside the live one, a file fetched into scratch first (or read
/// where it lies, for a backup taken before the repository) and given to its driver.
async fn restore_artifact(
    engine: &Engine,
    manifest: &Manifest,
    artifact: &ManifestArtifact,
    resource: &Resource,
    scratch: &std::path::Path,
    ctx: &Context<'_>,
) -> Result<(), DriverError> {
    if let (true, Resource::Directory { path, include, exclude }) = (artifact.tree, resource) {
        let (config, id, part) = (engine.config().clone(), manifest.id.clone(), artifact.resource.clone());
        let fill = Box::new(move |into: &std::path::Path| -> Result<String, DriverError> {
            crate::backups::open_repository(&config, false)
                .and_then(|mut repo| repo.restore_part(&id, &part, into))
                .map_err(|e| DriverError::Failed(format!("reading the tree from the repository: {e}")))?;
            Ok("restored the tree from the repository".to_string())
        });
        return directory::restore_in_place(directory::TreeSource::Fill(fill), path, include, exclude, ctx).await;
    }
    let file = engine
        .fetch_artifact(manifest, artifact, scratch)
        .await
        .map_err(DriverError::Failed)?;
    drivers::restore(resource, &file, ctx).await
}
