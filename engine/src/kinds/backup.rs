//! The `backup` job kind: every resource of an environment into one backup.
//!
//! Steps: record the environment's facts (if any are configured), back up each resource — a
//! directory by choosing what of its tree the globs take (the repository reads the tree
//! itself), any other with its driver into the staging area (`<resource>/<artifact>`) — read
//! every staged artifact back and compare its checksum, then store it all, with the manifest,
//! as one snapshot in the repository ([`crate::repository`]), and add it to the catalog. A
//! failure or a cancel anywhere leaves no snapshot and removes the staging area: a backup is
//! either complete or absent.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{
    Config, Engine,
    accounts::Actor,
    audit::{self, Outcome},
    backups::row_of,
    config::{Environment, Resource},
    db::{backups as backup_rows, jobs as rows, now_ms, repository_use::Mode},
    drivers::{self, Context, DriverError, directory},
    jobs::{self, Failure, Job, JobContext, JobError, JobKind, JobRequest, JobSpec, Plan},
    manifest::{MANIFEST_VERSION, Manifest, ManifestArtifact, Stored, Trigger, new_backup_id},
    output::{JobLog, Level},
    process::{self, Ended, Program, Watch},
    repository::{self, BackupLabels, Part, RepositoryError},
    storage::{BackupPath, MANIFEST, Storage},
    text::{MAX_REASON_CHARS, human_bytes},
};

/// Back up every resource of the environment into one backup, `backup_id` (chosen when the
/// job is requested, so the job and the backup can be linked from the start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub backup_id: String,
    pub description: String,
    pub trigger: Trigger,
}

impl JobKind for Backup {
    const NAME: &'static str = "backup";

    fn plan<'a>(&'a self, _engine: &'a Engine, environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        Box::pin(async move {
            let description_chars = self.description.chars().count();
            if description_chars > MAX_REASON_CHARS {
                return Err(JobError::DescriptionTooLong(description_chars));
            }
            let steps = steps(environment);
            if steps.is_empty() {
                return Err(JobError::NoResources(environment.name.clone()));
            }
            Ok(Plan { exclusive: true, steps })
        })
    }

    fn secrets(&self, config: &Config, environment: &str) -> Vec<String> {
        config.environment(environment).map(secrets).unwrap_or_default()
    }

    fn backup_id(&self) -> Option<&str> {
        Some(&self.backup_id)
    }

    fn writes_backup(&self) -> Option<&str> {
        Some(&self.backup_id)
    }

    /// A retry gets a new id: the failed one never became a backup, and ids are never reused.
    fn for_retry(&self, environment: &str) -> Self {
        Backup {
            backup_id: new_backup_id(environment, now_ms()),
            ..self.clone()
        }
    }

    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, jobs::Outcome> {
        Box::pin(async move {
            let input = Input {
                backup_id: &self.backup_id,
                description: &self.description,
                trigger: self.trigger,
                own_steps: true,
            };
            run(ctx, input).await.into()
        })
    }

    /// What interrupted backups (and safety backups) left in staging goes.
    fn recover(engine: &Engine) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match engine.clean_backup_staging().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed partial backups left by interrupted jobs"),
                Err(e) => tracing::warn!(error = %e, "cleaning the backup staging area failed"),
            }
        })
    }
}

impl Engine {
    /// Queues a backup of `environment`, or refuses it when the environment is busy.
    pub async fn request_backup(
        &self,
        actor: &Actor,
        environment: &str,
        description: &str,
        trigger: Trigger,
    ) -> Result<crate::jobs::Job, JobError> {
        let description = description.trim().to_string();
        self.request_job(
            actor,
            JobRequest {
                environment: environment.to_string(),
                spec: JobSpec::new(Backup {
                    backup_id: new_backup_id(environment, now_ms()),
                    description: description.clone(),
                    trigger,
                }),
                reason: description,
                parent_id: None,
            },
        )
        .await
    }
}

/// A fact's program is stopped after this long; its output is cut at this many characters.
const FACT_TIMEOUT: Duration = Duration::from_secs(30);
const FACT_MAX_CHARS: usize = 2000;

/// How often bytes written are recorded as the job's progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The steps of a backup of `environment`; none when it has nothing to back up.
pub(crate) fn steps(environment: &Environment) -> Vec<String> {
    if environment.resources.is_empty() {
        return Vec::new();
    }
    let mut steps = Vec::new();
    if !environment.facts.is_empty() {
        steps.push("Record the environment's facts".to_string());
    }
    for (name, resource) in &environment.resources {
        steps.push(format!("Back up {name} ({})", resource.driver()));
    }
    steps.push("Verify checksums".to_string());
    steps.push("Store in the repository".to_string());
    steps
}

/// The values the log must never show: every secret of the environment's resources.
pub(crate) fn secrets(environment: &Environment) -> Vec<String> {
    environment.resources.values().flat_map(|r| r.secrets()).collect()
}

/// What the job was asked to do.
pub(crate) struct Input<'a> {
    pub backup_id: &'a str,
    pub description: &'a str,
    pub trigger: Trigger,
    /// Whether this backup's steps are the job's steps (a backup job), or one step of a larger
    /// job (a restore's safety backup), which records its own.
    pub own_steps: bool,
}

/// Takes the backup; `Err` carries the one-line reason it failed. Nothing partial is left.
pub(crate) async fn run(ctx: &JobContext<'_>, input: Input<'_>) -> Result<(), Failure> {
    let (engine, job, log) = (ctx.engine, ctx.job, ctx.log);
    let environment = ctx.environment()?;
    let path = BackupPath::new(&job.environment, input.backup_id).map_err(|e| e.to_string())?;
    let storage = engine.storage();
    let result = write(ctx, environment, &storage, &path, &input).await;
    // The staging area held what the drivers wrote; the repository has it now, or nothing.
    if let Err(e) = storage.discard(&path).await {
        log.warn(format!(
            "Could not remove the staging area {}: {e}. It is removed at the next start.",
            storage.staging_location(&path)
        ))
        .await;
    } else if result.is_err() {
        log.info("Removed what this backup had written so far.").await;
    }
    result
}

async fn write(
    ctx: &JobContext<'_>,
    environment: &Environment,
    storage: &impl Storage,
    path: &BackupPath,
    input: &Input<'_>,
) -> Result<(), Failure> {
    let (engine, job, log, stop) = (ctx.engine, ctx.job, ctx.log, ctx.stop);
    let started_at = now_ms();
    let started = std::time::Instant::now();
    let staged = storage.stage(path).await.map_err(|e| {
        format!(
            "cannot create the backup's staging area {}: {e}",
            storage.staging_location(path)
        )
    })?;
    log.info(format!(
        "Backup {} of {}: {} resource(s), into the repository {}",
        input.backup_id,
        environment.name,
        environment.resources.len(),
        engine.repository_location()
    ))
    .await;
    let mut steps_done = 0;

    let facts = if environment.facts.is_empty() {
        BTreeMap::new()
    } else {
        let facts = record_facts(environment, &ctx.watch()).await;
        steps_done += 1;
        if input.own_steps {
            record_step(engine, job.id, steps_done).await;
        }
        facts
    };

    let progress = Progress::start(engine.clone(), job.id);
    let mut artifacts = Vec::new();
    let mut parts = Vec::new();
    for (name, resource) in &environment.resources {
        if stop.is_cancelled() {
            return Err(Failure::Stopped);
        }
        let driver = resource.driver();
        log.info(format!("Backing up {name} ({driver})…")).await;
        if let Resource::Directory {
            path: root,
            include,
            exclude,
        } = resource
        {
            let selection = select_tree(root, include, exclude, &staged, stop)
                .await
                .map_err(|e| match e {
                    DriverError::Cancelled => Failure::Stopped,
                    e => {
                        let message = format!("{} / {name} ({driver}): {e}", environment.name);
                        Failure::from(message)
                    }
                })?;
            for note in &selection.notes {
                log.warn(note.clone()).await;
            }
            log.info(format!(
                "directory {}: {} files ({}), {} directories, {} symbolic links; the repository reads what changed since the last backup",
                root.display(),
                selection.files,
                human_bytes(selection.bytes),
                selection.directories,
                selection.symlinks
            ))
            .await;
            artifacts.push(ManifestArtifact {
                resource: name.clone(),
                driver: driver.to_string(),
                file: name.clone(),
                size: selection.bytes,
                sha256: String::new(),
                tool: None,
                details: selection.details(),
                tree: true,
            });
            parts.push(Part {
                name: name.clone(),
                source: root.clone(),
                keep: Some(selection.paths),
            });
        } else {
            let out_dir = staged.join(name);
            let written = run_driver(ctx, environment, name, resource, &out_dir, input, &progress).await?;
            let artifact = match written {
                drivers::Written::File(artifact) => {
                    progress.resource_done(artifact.size);
                    let file = Path::new(name).join(&artifact.file).display().to_string();
                    log.info(format!(
                        "{name}: {file}, {}, sha256 {}",
                        human_bytes(artifact.size),
                        &artifact.sha256[..12.min(artifact.sha256.len())]
                    ))
                    .await;
                    ManifestArtifact {
                        resource: name.clone(),
                        driver: driver.to_string(),
                        file,
                        size: artifact.size,
                        sha256: artifact.sha256,
                        tool: artifact.tool,
                        details: artifact.details,
                        tree: false,
                    }
                }
                drivers::Written::Tree(tree) => {
                    progress.resource_done(tree.bytes);
                    log.info(format!(
                        "{name}: {} file(s), {}; the repository stores what changed since the last backup",
                        tree.files,
                        human_bytes(tree.bytes)
                    ))
                    .await;
                    ManifestArtifact {
                        resource: name.clone(),
                        driver: driver.to_string(),
                        file: name.clone(),
                        size: tree.bytes,
                        sha256: String::new(),
                        tool: None,
                        details: tree.details,
                        tree: true,
                    }
                }
            };
            artifacts.push(artifact);
            parts.push(Part {
                name: name.clone(),
                source: out_dir,
                keep: None,
            });
        }
        steps_done += 1;
        if input.own_steps {
            record_step(engine, job.id, steps_done).await;
        }
    }

    // Read every staged artifact back: what is on disk is what the manifest will promise.
    for artifact in artifacts.iter().filter(|a| !a.tree) {
        if stop.is_cancelled() {
            return Err(Failure::Stopped);
        }
        let (size, sha256) = drivers::sha256_of(&staged.join(&artifact.file))
            .await
            .map_err(|e| format!("cannot read {} back: {e}", artifact.file))?;
        if size != artifact.size || sha256 != artifact.sha256 {
            return Err(format!(
                "{} changed after it was written (read back {size} bytes with another checksum): the staging area is not reliable",
                artifact.file
            )
            .into());
        }
    }
    log.info(format!(
        "Read back the {} staged artifact(s): checksums match.",
        artifacts.iter().filter(|a| !a.tree).count()
    ))
    .await;
    let verified_at = now_ms();
    steps_done += 1;
    if input.own_steps {
        record_step(engine, job.id, steps_done).await;
    }

    let manifest = Manifest {
        version: MANIFEST_VERSION,
        id: input.backup_id.to_string(),
        environment: environment.name.clone(),
        started_at_ms: started_at,
        finished_at_ms: now_ms(),
        trigger: input.trigger.as_str().to_string(),
        requested_by: job.requested_by.clone(),
        description: input.description.to_string(),
        artifacts,
        facts,
        steward_version: env!("CARGO_PKG_VERSION").to_string(),
        stored: Stored::Repository,
    };
    let json = manifest
        .to_json()
        .map_err(|e| format!("cannot write the manifest: {e}"))?;
    let manifest_file = staged.join(MANIFEST);
    tokio::fs::write(&manifest_file, &json)
        .await
        .map_err(|e| format!("cannot write {}: {e}", manifest_file.display()))?;
    if stop.is_cancelled() {
        return Err(Failure::Stopped);
    }
    log.info("Storing the backup in the repository…").await;
    let written = store(ctx, &manifest, &json, parts, &manifest_file, &progress).await?;
    progress.stop();
    log.info(format!(
        "Stored as snapshot {}: {} files, {} read, {} new in the repository after deduplication and compression ({} files unchanged since the last backup).",
        &written.snapshot[..8.min(written.snapshot.len())],
        written.files,
        human_bytes(written.bytes),
        human_bytes(written.added_bytes),
        written.unchanged_files
    ))
    .await;
    // From here the backup exists in the repository; only the catalog row is missing until the
    // insert below. Should that fail, `steward backup reindex` adds it from the repository.
    let row = row_of(&manifest, &json, Some(job.id), Some(verified_at));
    catalog(engine, job, &row).await.map_err(|e| {
        format!(
            "the backup {} was written but could not be added to the catalog ({e}); run `steward backup reindex`",
            manifest.id
        )
    })?;
    crate::metrics::backup_stored(&environment.name, manifest.total_size(), started.elapsed());
    log.info(format!(
        "Backup {} is complete: {} in {} resource(s).",
        manifest.id,
        human_bytes(manifest.total_size()),
        manifest.artifacts.len()
    ))
    .await;
    Ok(())
}

/// Chooses what of a directory resource's tree the backup takes, on a blocking thread.
async fn select_tree(
    root: &Path,
    include: &[String],
    exclude: &[String],
    staged: &Path,
    stop: &CancellationToken,
) -> Result<directory::Selection, DriverError> {
    let (root, include, exclude, staged, stop) = (
        root.to_path_buf(),
        include.to_vec(),
        exclude.to_vec(),
        staged.to_path_buf(),
        stop.clone(),
    );
    tokio::task::spawn_blocking(move || directory::select(&root, &include, &exclude, &staged, &stop))
        .await
        .map_err(|e| DriverError::Failed(format!("the walk stopped: {e}")))?
}

/// Runs a resource's driver into `out_dir` (its artifact file).
async fn run_driver(
    ctx: &JobContext<'_>,
    environment: &Environment,
    name: &str,
    resource: &Resource,
    out_dir: &Path,
    input: &Input<'_>,
    progress: &Progress,
) -> Result<drivers::Written, Failure> {
    let scratch = out_dir.with_file_name(format!(".scratch-{name}"));
    for dir in [out_dir, scratch.as_path()] {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let report = progress.reporter();
    let driver_ctx = Context {
        environment: &environment.name,
        resource: name,
        backup_id: input.backup_id,
        description: input.description,
        log: ctx.log,
        stop: ctx.stop,
        progress: &report,
        scratch: &scratch,
        tool_env: ctx.tool_env(),
        grace: ctx.grace(),
    };
    let result = drivers::backup_for_repository(resource, out_dir, &driver_ctx).await;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    match result {
        Ok(artifact) => Ok(artifact),
        Err(DriverError::Cancelled) => Err(Failure::Stopped),
        Err(e) => {
            let message = format!("{} / {name} ({}): {e}", environment.name, resource.driver());
            ctx.log.error(&message).await;
            Err(message.into())
        }
    }
}

/// Writes the backup's snapshot (creating the repository on the very first backup), with the
/// bytes read as the job's progress and the job's cancel passed on.
async fn store(
    ctx: &JobContext<'_>,
    manifest: &Manifest,
    json: &[u8],
    parts: Vec<Part>,
    manifest_file: &Path,
    progress: &Progress,
) -> Result<repository::Written, Failure> {
    let stop_flag = Arc::new(AtomicBool::new(false));
    let read = Arc::new(AtomicU64::new(0));
    let relay = {
        let (token, flag, read, current) = (
            ctx.stop.clone(),
            stop_flag.clone(),
            read.clone(),
            progress.current.clone(),
        );
        tokio::spawn(async move {
            loop {
                current.store(
                    i64::try_from(read.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
                    Ordering::Relaxed,
                );
                tokio::select! {
                    () = token.cancelled() => { flag.store(true, Ordering::Relaxed); break; }
                    () = tokio::time::sleep(PROGRESS_EVERY) => {}
                }
            }
        })
    };
    let (environment, backup_id, json, manifest_file) = (
        manifest.environment.clone(),
        manifest.id.clone(),
        json.to_vec(),
        manifest_file.to_path_buf(),
    );
    let (flag, counter) = (stop_flag.clone(), read.clone());
    if let Err(why) = ctx
        .engine
        .use_repository(ctx.job.id, Mode::Use, ctx.stop, ctx.log)
        .await
    {
        relay.abort();
        return Err(why.map_or(Failure::Stopped, Failure::from));
    }
    let written = ctx
        .engine
        .with_repository(true, move |repo| {
            repo.write_backup(
                &BackupLabels {
                    environment: &environment,
                    backup_id: &backup_id,
                    manifest: &json,
                },
                parts,
                &manifest_file,
                &flag,
                &counter,
            )
        })
        .await;
    ctx.engine.release_repository(ctx.job.id).await;
    relay.abort();
    match written {
        Ok(written) => Ok(written),
        Err(RepositoryError::Cancelled) => Err(Failure::Stopped),
        Err(e) => {
            let message = format!("{}: storing the backup failed: {e}", manifest.environment);
            ctx.log.error(&message).await;
            Err(message.into())
        }
    }
}

/// Adds the backup to the catalog, audited in the same transaction.
async fn catalog(engine: &Engine, job: &Job, row: &backup_rows::BackupRow) -> sqlx::Result<()> {
    let mut tx = engine.db().begin_write().await?;
    backup_rows::upsert(&mut *tx, row).await?;
    backup_rows::record_usage(&mut *tx, &row.environment, now_ms(), Some(&row.id)).await?;
    let actor = job.actor();
    audit::record(
        &mut *tx,
        &actor
            .event("backup.create", Some(&row.id), Outcome::Ok)
            .with_detail(json!({
                "environment": row.environment,
                "job": job.id,
                "trigger": row.trigger_type,
                "description": row.description,
                "size": row.total_size,
            })),
    )
    .await?;
    tx.commit().await
}

pub(crate) async fn record_step(engine: &Engine, job_id: i64, done: i64) {
    if let Err(e) = rows::set_steps_done(engine.db().pool(), job_id, done).await {
        tracing::warn!(job = job_id, error = %e, "recording a step failed");
    }
    engine.signals().bump();
}

/// Runs each fact's program and keeps its output. A fact that fails does not fail the backup:
/// it is recorded as unavailable, with the reason, and the log says so.
async fn record_facts(environment: &Environment, watch: &Watch<'_>) -> BTreeMap<String, String> {
    let log = watch.log;
    let mut facts = BTreeMap::new();
    for (name, command) in &environment.facts {
        let value = match fact(command, watch).await {
            Ok(value) => {
                log.info(format!("Fact {name}: {value}")).await;
                value
            }
            Err(why) => {
                log.warn(format!("Fact {name} is unavailable: {why}")).await;
                format!("unavailable: {why}")
            }
        };
        facts.insert(name.clone(), value);
    }
    facts
}

/// Runs one fact's program through the one process runner (stopped by a cancel like any of
/// the job's programs) and returns its output, cut to [`FACT_MAX_CHARS`].
async fn fact(command: &[String], watch: &Watch<'_>) -> Result<String, String> {
    let program = command.first().ok_or("no program is configured")?;
    let (relay, mut lines) = JobLog::channel();
    let collect = tokio::spawn(async move {
        let (mut stdout, mut last_stderr) = (Vec::new(), None);
        while let Some((level, line)) = lines.recv().await {
            match level {
                Level::Stdout => stdout.push(line),
                Level::Stderr if !line.trim().is_empty() => last_stderr = Some(line),
                _ => {}
            }
        }
        (stdout, last_stderr)
    });
    let run = Program {
        command: command.to_vec(),
        workdir: None,
        env: watch.env.to_vec(),
        timeout: FACT_TIMEOUT,
        grace: watch.grace,
        stdin: None,
    };
    let ended = process::run(&run, &relay, watch.stop).await;
    drop(relay);
    let (stdout, last_stderr) = collect.await.unwrap_or_default();
    let said = last_stderr.map(|line| format!(": {line}")).unwrap_or_default();
    match ended {
        Ok(Ended::Succeeded) => Ok(stdout.join("\n").trim().chars().take(FACT_MAX_CHARS).collect()),
        Ok(Ended::Failed(how)) => Err(format!("{program} {how}{said}")),
        Ok(Ended::TimedOut) => Err(format!("{program} did not answer within {} s", FACT_TIMEOUT.as_secs())),
        Ok(Ended::Stopped) => Err(format!("{program} was stopped")),
        Err(e) => Err(format!("{program} could not be run: {e}")),
    }
}

/// Bytes written so far in this backup, recorded as the job's progress twice a second.
struct Progress {
    /// Bytes of the resources already done.
    base: Arc<AtomicI64>,
    /// Bytes of the resource being written.
    current: Arc<AtomicI64>,
    stop: CancellationToken,
}

impl Progress {
    fn start(engine: Engine, job_id: i64) -> Progress {
        let progress = Progress {
            base: Arc::default(),
            current: Arc::default(),
            stop: CancellationToken::new(),
        };
        let (base, current, stop) = (progress.base.clone(), progress.current.clone(), progress.stop.clone());
        tokio::spawn(async move {
            let mut recorded = -1;
            loop {
                let done = base.load(Ordering::Relaxed) + current.load(Ordering::Relaxed);
                if done != recorded {
                    // Total unknown (0): the page shows the bytes and the steps.
                    if rows::set_progress(engine.db().pool(), job_id, done, 0).await.is_ok() {
                        recorded = done;
                        engine.signals().bump();
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(PROGRESS_EVERY) => {}
                }
            }
        });
        progress
    }

    fn reporter(&self) -> impl Fn(u64, Option<u64>) + Send + Sync + use<> {
        let current = self.current.clone();
        move |done, _total| current.store(i64::try_from(done).unwrap_or(i64::MAX), Ordering::Relaxed)
    }

    fn resource_done(&self, size: u64) {
        self.current.store(0, Ordering::Relaxed);
        self.base.fetch_add(i64::try_from(size).unwrap_or(0), Ordering::Relaxed);
    }

    fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
