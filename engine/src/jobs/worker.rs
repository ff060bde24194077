//! Workers: claim queued jobs, run them under a lease, end them.
//!
//! - `jobs.workers` loops per instance. Each claims the oldest queued job in one statement
//!   ([`rows::claim`]) and holds it under a lease of `jobs.lease_seconds`, renewed every second
//!   by a heartbeat that also notices cancel requests made elsewhere (CLI, another instance).
//! - Idle workers wake the moment a job is queued: in-process through a `Notify`, across
//!   PostgreSQL instances through LISTEN/NOTIFY. A slow re-check covers a missed notification.
//! - A job whose lease expired (its Steward crashed) is marked `interrupted` by any instance's
//!   reaper, never re-run. On SQLite only one Steward serves a database, so at start every job
//!   still `running` is such a job.
//! - [`Workers::shutdown`] stops claiming, lets running jobs finish within
//!   `jobs.shutdown_grace_seconds`, then stops their programs and marks them `interrupted`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    Engine,
    accounts::Actor,
    audit,
    db::{Backend, jobs as rows, now_ms},
    jobs::{Job, JobContext, JobError, JobState, Outcome, PG_CHANNEL, kind::registry, log},
    text::sentence,
};

/// How often a running job's lease is renewed and its cancel flag read.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// An idle worker looks at the queue this often even without a notification: on PostgreSQL
/// a safety net for a missed NOTIFY; on SQLite, where jobs queued by another process (the CLI)
/// send no notification, the delay such a job waits.
const IDLE_RECHECK_POSTGRES: Duration = Duration::from_secs(5);
const IDLE_RECHECK_SQLITE: Duration = Duration::from_millis(500);
/// After a database error, a worker waits this long before it tries again.
const ERROR_BACKOFF: Duration = Duration::from_secs(2);

/// Why a running job is being stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Cancelled(String),
    Shutdown,
    /// Another instance declared the job interrupted (this one stalled past its lease).
    LeaseLost,
    /// The kind's own time limit passed.
    TimedOut(Duration),
}

/// The stop switch of one running job.
#[derive(Debug, Default)]
pub struct Stop {
    pub(crate) token: CancellationToken,
    reason: Mutex<Option<StopReason>>,
}

impl Stop {
    /// The first reason wins.
    pub(crate) fn stop(&self, reason: StopReason) {
        if let Ok(mut current) = self.reason.lock()
            && current.is_none()
        {
            *current = Some(reason);
        }
        self.token.cancel();
    }

    fn reason(&self) -> Option<StopReason> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }
}

/// The running workers of this instance.
pub struct Workers {
    engine: Engine,
    stop_claiming: CancellationToken,
    loops: Vec<JoinHandle<()>>,
}

impl Engine {
    /// Marks jobs cut off by a previous run as interrupted, then starts `jobs.workers` worker
    /// loops, the reaper of expired leases and (PostgreSQL) the listener for other instances.
    pub async fn start_workers(&self) -> Result<Workers, JobError> {
        let expired_before = match self.db().backend() {
            Backend::Sqlite => i64::MAX,
            Backend::Postgres => now_ms(),
        };
        self.interrupt_expired(expired_before).await?;
        // What interrupted jobs left (partial backups, scratch files) is removed.
        self.recover_kinds().await;

        let instance = uuid::Uuid::new_v4().simple().to_string();
        let stop_claiming = CancellationToken::new();
        let mut loops = Vec::new();
        for n in 1..=self.config().jobs.workers {
            let owner = format!("{}-{}-w{n}", std::process::id(), &instance[..8]);
            loops.push(tokio::spawn(work(self.clone(), owner, stop_claiming.clone())));
        }
        loops.push(tokio::spawn(reap(self.clone(), stop_claiming.clone())));
        if self.db().backend() == Backend::Postgres {
            loops.push(tokio::spawn(listen(self.clone(), stop_claiming.clone())));
        }
        tracing::info!(workers = self.config().jobs.workers, "job workers started");
        Ok(Workers {
            engine: self.clone(),
            stop_claiming,
            loops,
        })
    }

    /// Marks running jobs whose lease ended before `expired_before` as interrupted, each with a
    /// log line and an audit event. Returns how many.
    pub async fn interrupt_expired(&self, expired_before: i64) -> Result<usize, JobError> {
        let error = "Steward stopped while this job was running (crash, power loss or kill). It was not \
                     re-run: check the environment, then retry or acknowledge it.";
        let mut tx = self.db().begin_write().await?;
        let interrupted = rows::interrupt_expired(&mut *tx, expired_before, error, now_ms()).await?;
        for row in &interrupted {
            // Programs a crashed Steward left running on this machine must not go on beside a
            // retry: they carry the job's worker in their environment.
            if let Some(owner) = row.lease_owner.clone() {
                let id = row.id;
                let killed = tokio::task::spawn_blocking(move || crate::process::kill_job_leftovers(&owner, id))
                    .await
                    .unwrap_or(0);
                if killed > 0 {
                    tracing::warn!(job = row.id, killed, "stopped processes a crashed Steward left running");
                }
            }
            rows::append_one(&mut *tx, row.id, log::Level::Error.as_str(), error, now_ms()).await?;
            let actor = Actor {
                username: Some(row.requested_by.clone()),
                client_ip: None,
            };
            let target = row.id.to_string();
            let detail = json!({ "environment": row.environment, "state": "interrupted", "error": error });
            audit::record(
                &mut *tx,
                &actor
                    .event("job.finish", Some(&target), audit::Outcome::Failed)
                    .with_detail(detail),
            )
            .await?;
            let job = Job::from(row.clone());
            super::alerts::job_ended(&mut tx, self, &job, JobState::Interrupted, Some(error), now_ms()).await?;
        }
        tx.commit().await?;
        for row in &interrupted {
            tracing::warn!(job = row.id, environment = %row.environment, "job interrupted: its Steward stopped while it ran");
        }
        if !interrupted.is_empty() {
            self.signals().bump();
        }
        Ok(interrupted.len())
    }

    /// Lets every kind remove what its interrupted jobs left behind.
    async fn recover_kinds(&self) {
        for kind in registry() {
            kind.recover(self).await;
        }
    }

    fn lease_until(&self, now: i64) -> i64 {
        now + i64::from(self.config().jobs.lease_seconds) * 1000
    }
}

impl Workers {
    /// A token that, once cancelled, stops this instance's workers from claiming more jobs
    /// (shutdown cancels it first thing).
    pub fn stop_claiming(&self) -> CancellationToken {
        self.stop_claiming.clone()
    }

    /// Stops claiming, waits up to `grace` for running jobs to end, then stops their programs;
    /// those jobs end `interrupted`.
    pub async fn shutdown(self, grace: Duration) {
        self.stop_claiming.cancel();
        let mut all = futures::future::join_all(self.loops);
        if tokio::time::timeout(grace, &mut all).await.is_err() {
            let running: Vec<Arc<Stop>> = self
                .engine
                .signals()
                .running
                .lock()
                .map(|running| running.values().cloned().collect())
                .unwrap_or_default();
            tracing::warn!(jobs = running.len(), "stopping running jobs for shutdown");
            for stop in running {
                stop.stop(StopReason::Shutdown);
            }
            all.await;
        }
    }
}

/// One worker: claim, run, repeat; wait for a notification when the queue is empty.
async fn work(engine: Engine, owner: String, stop_claiming: CancellationToken) {
    let recheck = match engine.db().backend() {
        Backend::Sqlite => IDLE_RECHECK_SQLITE,
        Backend::Postgres => IDLE_RECHECK_POSTGRES,
    };
    loop {
        // Registered before looking, so a job queued in between still wakes this worker.
        let queued = engine.signals().queued.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        if stop_claiming.is_cancelled() {
            return;
        }
        match claim(&engine, &owner).await {
            Ok(Some(job)) => {
                run(&engine, job, &owner).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(worker = %owner, error = %e, "claiming a job failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(ERROR_BACKOFF) => {},
                    () = stop_claiming.cancelled() => return,
                }
                continue;
            }
        }
        tokio::select! {
            () = &mut queued => {},
            () = tokio::time::sleep(recheck) => {},
            () = stop_claiming.cancelled() => return,
        }
    }
}

async fn claim(engine: &Engine, owner: &str) -> sqlx::Result<Option<Job>> {
    // A read first: an empty queue then costs no write lock, which on SQLite every request
    // and log batch would otherwise have to wait for.
    let kinds: Vec<&str> = registry().iter().map(|kind| kind.name).collect();
    if !rows::any_queued(engine.db().pool(), &kinds).await? {
        return Ok(None);
    }
    let now = now_ms();
    let mut tx = engine.db().begin_write().await?;
    let row = rows::claim(
        &mut *tx,
        engine.db().backend(),
        &kinds,
        owner,
        now,
        engine.lease_until(now),
    )
    .await?;
    tx.commit().await?;
    Ok(row.map(Job::from))
}

/// Runs a claimed job to its end and records the end. Never fails: whatever goes wrong ends
/// up in the job's state, error and log.
async fn run(engine: &Engine, job: Job, owner: &str) {
    let started = Instant::now();
    let stop = Arc::new(Stop::default());
    if let Ok(mut running) = engine.signals().running.lock() {
        running.insert(job.id, stop.clone());
    }
    engine.signals().bump();
    tracing::info!(job = job.id, environment = %job.environment, kind = %job.kind, "job started");

    let secrets = job
        .spec
        .as_ref()
        .map(|spec| spec.secrets(engine.config(), &job.environment))
        .unwrap_or_default();
    let (log, writer) = log::start_writer(engine, job.id, secrets);
    let reason = if job.reason.is_empty() {
        String::new()
    } else {
        format!(" — {}", job.reason)
    };
    log.info(format!(
        "Started {} on {} for {} (attempt {}){reason}",
        job.title(),
        job.environment,
        job.requested_by,
        job.attempt
    ))
    .await;
    // A cancel that arrived while the job was queued→running.
    if let Some(by) = &job.cancel_requested_by {
        stop.stop(StopReason::Cancelled(by.clone()));
    }
    // Renews the lease until the end is recorded; aborted on drop, so a panic cannot leave a
    // heartbeat holding the job `running` for ever.
    let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
        engine.clone(),
        job.id,
        owner.to_string(),
        stop.clone(),
    )));

    let outcome = match &job.spec {
        _ if stop.token.is_cancelled() => Outcome::Stopped,
        None => Outcome::failed(format!(
            "This version of Steward cannot run jobs of kind \"{}\"",
            job.kind
        )),
        Some(spec) => {
            let ctx = JobContext::new(engine, &job, owner, &log, &stop.token);
            // The kind's own limit: once passed, the job is told to stop like a cancel (its
            // programs get SIGTERM, then SIGKILL) and ends failed.
            let run = spec.run(&ctx);
            tokio::pin!(run);
            match spec.timeout(engine.config(), &job.environment) {
                None => run.await,
                Some(limit) => tokio::select! {
                    outcome = &mut run => outcome,
                    () = tokio::time::sleep(limit) => {
                        stop.stop(StopReason::TimedOut(limit));
                        run.await
                    }
                },
            }
        }
    };

    let elapsed = format!("{:.1} s", started.elapsed().as_secs_f64());
    let (state, error) = match (outcome, stop.reason()) {
        (Outcome::Succeeded, _) => (JobState::Succeeded, None),
        (_, Some(StopReason::Cancelled(by))) => (JobState::Cancelled, Some(format!("Cancelled by {by}."))),
        (_, Some(StopReason::Shutdown)) => (
            JobState::Interrupted,
            Some("Steward was shut down while this job was running; its program was stopped. Check the environment, then retry or acknowledge it.".to_string()),
        ),
        (_, Some(StopReason::LeaseLost)) => (
            JobState::Interrupted,
            Some("This job's claim expired (the database could not be reached to renew it), so it was stopped. Check the environment, then retry or acknowledge it.".to_string()),
        ),
        (_, Some(StopReason::TimedOut(limit))) => (
            JobState::Failed,
            Some(format!("It did not finish within {} s and was stopped.", limit.as_secs())),
        ),
        (Outcome::Stopped, None) => (JobState::Failed, Some("It stopped before it was done.".to_string())),
        (Outcome::Failed { message, retry_helps }, None) => {
            if retry_helps {
                log.info("The cause may be passing (a server that was down, a busy lock): a retry may help.")
                    .await;
            }
            (JobState::Failed, Some(sentence(&message)))
        }
    };
    match &error {
        None => log.info(format!("Succeeded after {elapsed}.")).await,
        Some(error) => log.error(format!("{error} Ended after {elapsed}.")).await,
    }
    // Every line is stored before the job reads as finished.
    drop(log);
    let _ = writer.await;

    let mut attempt = 1;
    while let Err(e) = finish(engine, &job, owner, state, error.as_deref(), started.elapsed()).await {
        if attempt == 5 {
            // The lease runs out and the reaper marks it interrupted: not lost, only less precise.
            tracing::error!(job = job.id, error = %e, "recording the end of a job failed");
            break;
        }
        tracing::warn!(job = job.id, attempt, error = %e, "recording the end of a job failed; retrying");
        tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
        attempt += 1;
    }
    crate::metrics::job_finished(&job.kind, state.as_str(), started.elapsed());
    drop(heartbeat);
    if let Ok(mut running) = engine.signals().running.lock() {
        running.remove(&job.id);
    }
    engine.signals().bump();
    tracing::info!(job = job.id, state = state.as_str(), elapsed = %elapsed, "job ended");
}

async fn finish(
    engine: &Engine,
    job: &Job,
    owner: &str,
    state: JobState,
    error: Option<&str>,
    elapsed: Duration,
) -> sqlx::Result<()> {
    let steps_done = (state == JobState::Succeeded).then(|| i64::try_from(job.steps.len()).unwrap_or(i64::MAX));
    let mut tx = engine.db().begin_write().await?;
    if rows::finish(&mut *tx, job.id, owner, state.as_str(), error, steps_done, now_ms()).await? {
        let actor = job.actor();
        let outcome = if state == JobState::Succeeded {
            audit::Outcome::Ok
        } else {
            audit::Outcome::Failed
        };
        let target = job.id.to_string();
        let detail = json!({
            "environment": job.environment,
            "kind": job.kind,
            "state": state,
            "error": error,
            "duration_ms": elapsed.as_millis(),
        });
        audit::record(
            &mut *tx,
            &actor.event("job.finish", Some(&target), outcome).with_detail(detail),
        )
        .await?;
        super::alerts::job_ended(&mut tx, engine, job, state, error, now_ms()).await?;
    }
    tx.commit().await
}

/// Renews the lease every second and turns a cancel request or a lost lease into a stop. When
/// renewals keep failing until the lease is nearly over, the job is stopped before anyone else
/// may declare it interrupted and give its environment to another job.
async fn heartbeat(engine: Engine, id: i64, owner: String, stop: Arc<Stop>) {
    let lease = Duration::from_secs(u64::from(engine.config().jobs.lease_seconds));
    let give_up_after = lease.saturating_sub(2 * HEARTBEAT).max(HEARTBEAT);
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        match rows::renew_lease(engine.db().pool(), id, &owner, engine.lease_until(now_ms())).await {
            Ok(Some(None)) => renewed = Instant::now(),
            Ok(Some(Some(by))) => {
                renewed = Instant::now();
                stop.stop(StopReason::Cancelled(by));
            }
            Ok(None) => {
                tracing::error!(job = id, "lost the lease on a running job; stopping it");
                stop.stop(StopReason::LeaseLost);
                return;
            }
            Err(e) => {
                tracing::warn!(job = id, error = %e, "renewing a job's lease failed");
                if renewed.elapsed() >= give_up_after {
                    tracing::error!(job = id, "could not renew the lease in time; stopping the job");
                    stop.stop(StopReason::LeaseLost);
                }
            }
        }
    }
}

/// A task that is aborted when this value is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Marks jobs with expired leases as interrupted, every half lease.
async fn reap(engine: Engine, stop: CancellationToken) {
    let every = Duration::from_millis(u64::from(engine.config().jobs.lease_seconds) * 500);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {},
            () = stop.cancelled() => return,
        }
        match engine.interrupt_expired(now_ms()).await {
            Ok(0) => {}
            Ok(_) => engine.recover_kinds().await,
            Err(e) => tracing::warn!(error = %e, "looking for interrupted jobs failed"),
        }
    }
}

/// PostgreSQL: wakes this instance's workers when any instance queues a job.
async fn listen(engine: Engine, stop: CancellationToken) {
    loop {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect(engine.db().url()).await?;
            listener.listen(PG_CHANNEL).await?;
            loop {
                listener.recv().await?;
                engine.signals().queued.notify_waiters();
                engine.signals().bump();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listening => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "listening for queued jobs failed; reconnecting (workers re-check every few seconds meanwhile)");
                }
            }
            () = stop.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(ERROR_BACKOFF) => {},
            () = stop.cancelled() => return,
        }
    }
}
