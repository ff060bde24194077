//! Jobs: every action Steward performs, on a queue in the database.
//!
//! A job is requested (UI or CLI), recorded as `queued`, claimed by a worker ([`worker`]),
//! run, and ends `succeeded`, `failed`, `cancelled` or — when its Steward died or was stopped
//! under it — `interrupted`. Interrupted jobs are never re-run on their own: a half-done restore
//! needs a person, who acknowledges it or retries it as a new, linked job.
//!
//! The rule the whole product leans on: jobs that change an environment carry the environment
//! as their *exclusive key*, and a unique index over queued and running jobs lets the database
//! refuse a second one, however the requests race. The refusal names the job in the way
//! ([`Busy`]). Every request, refusal, cancel, retry and end is audited in the same transaction
//! as the change.

mod alerts;
pub mod kind;
pub mod log;
pub mod worker;

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Notify, watch};

pub use kind::{Failure, JobContext, JobKind, JobSpec, KindEntry, Outcome, Plan};

pub use crate::manifest::Trigger;
pub use crate::text::MAX_REASON_CHARS;
use crate::{
    Engine,
    accounts::Actor,
    audit,
    db::{self, jobs as rows, now_ms},
    text::hh_mm_utc,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }

    /// Failed, cancelled and interrupted jobs can be run again as a new, linked job.
    pub fn is_retryable(self) -> bool {
        matches!(self, JobState::Failed | JobState::Cancelled | JobState::Interrupted)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as the rest of Steward sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub environment: String,
    /// The typed input; `None` when this binary does not know the job's kind.
    pub spec: Option<JobSpec>,
    /// Whether it holds its environment's slot (changes the environment).
    pub exclusive: bool,
    pub state: JobState,
    pub requested_by: String,
    pub reason: String,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub attempt: i64,
    pub parent_id: Option<i64>,
    pub retry_of: Option<i64>,
    /// The planned steps, and how many are done.
    pub steps: Vec<String>,
    pub steps_done: i64,
    /// Progress within the job as the program reports it (bytes, files, …), when it does.
    pub progress: Option<(i64, i64)>,
    pub error: Option<String>,
    pub cancel_requested_by: Option<String>,
    pub acknowledged_by: Option<String>,
}

impl Job {
    /// Who the job acts for: its requester (audit events of the job are theirs).
    pub fn actor(&self) -> Actor {
        Actor {
            username: Some(self.requested_by.clone()),
            client_ip: None,
        }
    }

    /// The environment's configuration, or the error a job of an environment that is no longer
    /// configured ends with.
    pub fn configured_environment<'c>(
        &self,
        config: &'c crate::Config,
    ) -> Result<&'c crate::config::Environment, String> {
        config
            .environment(&self.environment)
            .ok_or_else(|| format!("the environment {} is no longer configured", self.environment))
    }

    /// "restore #41", "delete-drafts #7".
    pub fn title(&self) -> String {
        let name = self.spec.as_ref().map_or_else(|| self.kind.clone(), JobSpec::title);
        format!("{name} #{}", self.id)
    }
}

impl From<rows::JobRow> for Job {
    fn from(row: rows::JobRow) -> Self {
        Job {
            id: row.id,
            spec: JobSpec::parse(&row.kind, &row.input),
            kind: row.kind,
            environment: row.environment,
            exclusive: row.exclusive_key.is_some(),
            // The CHECK constraint allows nothing else.
            state: JobState::parse(&row.state).unwrap_or(JobState::Failed),
            requested_by: row.requested_by,
            reason: row.reason,
            created_at_ms: row.created_at,
            started_at_ms: row.started_at,
            finished_at_ms: row.finished_at,
            attempt: row.attempt,
            parent_id: row.parent_id,
            retry_of: row.retry_of,
            steps: serde_json::from_str(&row.steps).unwrap_or_default(),
            steps_done: row.step_index,
            progress: row.bytes_done.zip(row.bytes_total),
            error: row.error,
            cancel_requested_by: row.cancel_requested_by,
            acknowledged_by: row.acknowledged_by,
        }
    }
}

/// A request for a new job.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub environment: String,
    pub spec: JobSpec,
    /// Why, in the requester's words (may be empty).
    pub reason: String,
    pub parent_id: Option<i64>,
}

/// The job in the way of a request: "prod is busy: restore #41 started by alice at 10:02 — try
/// again when it ends".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub environment: String,
    pub job_id: i64,
    pub title: String,
    pub requested_by: String,
    pub state: JobState,
    /// When it started, or was requested if it has not started.
    pub since_ms: i64,
}

impl Busy {
    /// The refusal naming `job`, which holds its environment's slot.
    pub(crate) fn of(job: &Job) -> Busy {
        Busy {
            environment: job.environment.clone(),
            job_id: job.id,
            title: job.title(),
            requested_by: job.requested_by.clone(),
            state: job.state,
            since_ms: job.started_at_ms.unwrap_or(job.created_at_ms),
        }
    }
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = hh_mm_utc(self.since_ms);
        match self.state {
            JobState::Queued => write!(
                f,
                "{} is busy: {} requested by {} at {at} UTC is waiting to start — try again when it ends",
                self.environment, self.title, self.requested_by
            ),
            _ => write!(
                f,
                "{} is busy: {} started by {} at {at} UTC — try again when it ends",
                self.environment, self.title, self.requested_by
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("there is no environment \"{0}\"")]
    UnknownEnvironment(String),
    #[error("{environment} has no action \"{action}\"")]
    UnknownAction { environment: String, action: String },
    #[error("{0} has nothing to back up: add a resource under [environments.resources.NAME] in its configuration")]
    NoResources(String),
    #[error("the description is too long ({0} characters; at most {MAX_REASON_CHARS})")]
    DescriptionTooLong(usize),
    #[error("{0}")]
    Busy(Busy),
    #[error("there is no job #{0}")]
    NotFound(i64),
    #[error("job #{id} is {state}: {what}")]
    WrongState {
        id: i64,
        state: JobState,
        what: &'static str,
    },
    #[error("job #{id} was already retried as #{retry}")]
    AlreadyRetried { id: i64, retry: i64 },
    #[error("the reason is too long ({0} characters; at most {MAX_REASON_CHARS})")]
    ReasonTooLong(usize),
    /// This kind of job needs a reason; the text says what it should say.
    #[error("a reason is required: {0}")]
    ReasonRequired(&'static str),
    /// The kind refuses the request as things are now (e.g. already in maintenance).
    #[error("{0}")]
    Refused(String),
    #[error("there is no backup \"{0}\"")]
    UnknownBackup(String),
    /// Why the backup cannot be restored into its environment as configured now.
    #[error("{0}")]
    CannotRestore(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// In-process signals between requests and workers. Other instances (PostgreSQL) learn of new
/// jobs by LISTEN/NOTIFY and of cancels by their workers' heartbeat.
#[derive(Debug, Default)]
pub struct JobSignals {
    /// A job was queued: idle workers look for it at once.
    pub(crate) queued: Notify,
    /// Bumped whenever log lines or a job's state were written, so log followers look.
    pub(crate) changed: watch::Sender<u64>,
    /// Stop handles of the jobs this process is running, by id.
    pub(crate) running: Mutex<HashMap<i64, Arc<worker::Stop>>>,
    /// Cancelled when the process begins to shut down: long-lived log followers end.
    pub(crate) closing: tokio_util::sync::CancellationToken,
}

impl JobSignals {
    pub(crate) fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The notification channel PostgreSQL instances use to wake each other's workers.
pub(crate) const PG_CHANNEL: &str = "steward_jobs";

impl Engine {
    /// Queues a job, or refuses it when its environment is busy. Audited either way.
    pub async fn request_job(&self, actor: &Actor, request: JobRequest) -> Result<Job, JobError> {
        self.queue_job(actor, request, None, None).await
    }

    /// Queues the job of schedule slot `slot_key`, once: when another instance already queued
    /// it, that job is returned.
    pub(crate) async fn request_slot_job(
        &self,
        actor: &Actor,
        request: JobRequest,
        slot_key: &str,
    ) -> Result<Job, JobError> {
        if let Some(row) = rows::by_slot(self.db().pool(), slot_key).await? {
            return Ok(Job::from(row));
        }
        self.queue_job(actor, request, None, Some(slot_key)).await
    }

    async fn queue_job(
        &self,
        actor: &Actor,
        request: JobRequest,
        retry: Option<&Job>,
        slot_key: Option<&str>,
    ) -> Result<Job, JobError> {
        let reason_chars = request.reason.chars().count();
        if reason_chars > MAX_REASON_CHARS {
            return Err(JobError::ReasonTooLong(reason_chars));
        }
        let plan = self.plan(&request.environment, &request.spec).await?;
        let requested_by = actor.username.as_deref().unwrap_or("steward");
        let input = request.spec.to_json().to_string();
        let steps = serde_json::to_string(&plan.steps).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let new = rows::NewJobRow {
            kind: request.spec.kind(),
            environment: &request.environment,
            input: &input,
            exclusive_key: plan.exclusive.then_some(request.environment.as_str()),
            requested_by,
            reason: request.reason.trim(),
            created_at: now_ms(),
            attempt: retry.map_or(1, |job| job.attempt + 1),
            parent_id: request.parent_id,
            retry_of: retry.map(|job| job.id),
            steps: &steps,
            slot_key,
        };

        let mut tx = self.db().begin_write().await?;
        let row = match rows::insert(&mut *tx, &new).await {
            Ok(row) => row,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                if let Some(key) = slot_key
                    && let Some(row) = rows::by_slot(self.db().pool(), key).await?
                {
                    // Another instance queued this slot's job first.
                    return Ok(Job::from(row));
                }
                if let Some(old) = retry
                    && let Some(earlier) = rows::retry_of(self.db().pool(), old.id).await?
                {
                    return Err(JobError::AlreadyRetried {
                        id: old.id,
                        retry: earlier.id,
                    });
                }
                return Err(self.refuse_busy(actor, &request).await?);
            }
            Err(e) => return Err(e.into()),
        };
        let job = Job::from(row);
        let target = job.id.to_string();
        let action = if retry.is_some() { "job.retry" } else { "job.request" };
        let mut detail = json!({
            "environment": job.environment,
            "kind": job.kind,
            "input": request.spec,
            "reason": job.reason,
        });
        if let Some(old) = retry {
            detail["retry_of"] = json!(old.id);
            rows::acknowledge(&mut *tx, old.id, requested_by, now_ms()).await?;
        }
        audit::record(
            &mut *tx,
            &actor
                .event(action, Some(&target), audit::Outcome::Ok)
                .with_detail(detail),
        )
        .await?;
        if self.db().backend() == db::Backend::Postgres {
            // Delivered at commit, to every instance's listener.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(PG_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.signals().queued.notify_waiters();
        self.signals().bump();
        tracing::debug!(job = job.id, environment = %job.environment, kind = %job.kind, by = requested_by, "job queued");
        Ok(job)
    }

    /// Builds the refusal for a request whose environment slot is taken, and audits it.
    async fn refuse_busy(&self, actor: &Actor, request: &JobRequest) -> Result<JobError, JobError> {
        let holder = rows::holder(self.db().pool(), &request.environment)
            .await?
            .map(Job::from);
        let busy = match holder {
            Some(job) => Busy::of(&job),
            // It ended between the refusal and this look-up: still a refusal, and a fair one.
            None => Busy {
                environment: request.environment.clone(),
                job_id: 0,
                title: "another job".into(),
                requested_by: "someone".into(),
                state: JobState::Running,
                since_ms: now_ms(),
            },
        };
        let detail = json!({
            "environment": request.environment,
            "kind": request.spec.kind(),
            "input": request.spec,
            "reason": request.reason,
            "refusal": busy.to_string(),
            "busy_with": busy.job_id,
        });
        let target = busy.job_id.to_string();
        audit::record(
            self.db().pool(),
            &actor
                .event("job.request", Some(&target), audit::Outcome::Refused)
                .with_detail(detail),
        )
        .await?;
        Ok(JobError::Busy(busy))
    }

    /// Checks that the job can exist (its environment, then its kind's own checks) and plans it.
    pub(crate) async fn plan(&self, environment: &str, spec: &JobSpec) -> Result<Plan, JobError> {
        let Some(configured) = self.config().environment(environment) else {
            return Err(JobError::UnknownEnvironment(environment.to_string()));
        };
        spec.plan(self, configured).await
    }

    /// Cancels a queued job at once; asks the worker of a running job to stop it (the job ends
    /// `cancelled` when its program has stopped).
    pub async fn cancel_job(&self, actor: &Actor, id: i64) -> Result<Job, JobError> {
        let by = actor.username.as_deref().unwrap_or("steward");
        let mut tx = self.db().begin_write().await?;
        let cancelled = rows::cancel_queued(
            &mut *tx,
            id,
            by,
            &format!("Cancelled by {by} before it started."),
            now_ms(),
        )
        .await?
            || rows::request_cancel(&mut *tx, id, by).await?;
        let job = rows::get(&mut *tx, id)
            .await?
            .map(Job::from)
            .ok_or(JobError::NotFound(id))?;
        if !cancelled {
            tx.rollback().await?;
            return Err(JobError::WrongState {
                id,
                state: job.state,
                what: "only a queued or running job can be cancelled",
            });
        }
        let target = id.to_string();
        let detail = json!({ "environment": job.environment, "state_then": job.state });
        audit::record(
            &mut *tx,
            &actor
                .event("job.cancel", Some(&target), audit::Outcome::Ok)
                .with_detail(detail),
        )
        .await?;
        tx.commit().await?;
        self.stop_local(id, worker::StopReason::Cancelled(by.to_string()));
        self.signals().bump();
        Ok(job)
    }

    /// Queues a failed, cancelled or interrupted job again, as a new job linked to it.
    pub async fn retry_job(&self, actor: &Actor, id: i64, reason: &str) -> Result<Job, JobError> {
        let old = self.job(id).await?.ok_or(JobError::NotFound(id))?;
        if let Some(earlier) = rows::retry_of(self.db().pool(), id).await? {
            return Err(JobError::AlreadyRetried { id, retry: earlier.id });
        }
        if !old.state.is_retryable() {
            return Err(JobError::WrongState {
                id,
                state: old.state,
                what: "only a failed, cancelled or interrupted job can be retried",
            });
        }
        let spec = old.spec.clone().ok_or(JobError::WrongState {
            id,
            state: old.state,
            what: "this version of Steward does not know its kind, so it cannot be retried",
        })?;
        if let Some(why) = spec.retry_refusal() {
            return Err(JobError::Refused(format!("#{id} cannot be retried: {why}")));
        }
        let reason = if reason.trim().is_empty() {
            format!("Retry of #{id}")
        } else {
            reason.to_string()
        };
        let request = JobRequest {
            environment: old.environment.clone(),
            spec: spec.for_retry(&old.environment),
            reason,
            parent_id: old.parent_id,
        };
        self.queue_job(actor, request, Some(&old), None).await
    }

    /// Dismisses an interrupted job's banner without retrying it.
    pub async fn acknowledge_job(&self, actor: &Actor, id: i64) -> Result<(), JobError> {
        let by = actor.username.as_deref().unwrap_or("steward");
        let mut tx = self.db().begin_write().await?;
        let done = rows::acknowledge(&mut *tx, id, by, now_ms()).await?;
        let job = rows::get(&mut *tx, id)
            .await?
            .map(Job::from)
            .ok_or(JobError::NotFound(id))?;
        if !done {
            tx.rollback().await?;
            return Err(JobError::WrongState {
                id,
                state: job.state,
                what: "only an unacknowledged failed, cancelled or interrupted job can be acknowledged",
            });
        }
        let target = id.to_string();
        audit::record(
            &mut *tx,
            &actor
                .event("job.acknowledge", Some(&target), audit::Outcome::Ok)
                .with_detail(json!({ "environment": job.environment })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The job that retries job `id`, if there is one.
    pub async fn retry_of(&self, id: i64) -> Result<Option<Job>, JobError> {
        Ok(rows::retry_of(self.db().pool(), id).await?.map(Job::from))
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>, JobError> {
        Ok(rows::get(self.db().pool(), id).await?.map(Job::from))
    }

    /// Newest first, filtered by whatever is given, older than `before_id` when paging.
    pub async fn jobs(&self, filter: &JobFilter, before_id: Option<i64>, limit: i64) -> Result<Vec<Job>, JobError> {
        let rows = rows::list(
            self.db().pool(),
            filter.environment.as_deref().unwrap_or_default(),
            filter.kind.as_deref().unwrap_or_default(),
            filter.state.map_or("", JobState::as_str),
            before_id,
            limit,
        )
        .await?;
        Ok(rows.into_iter().map(Job::from).collect())
    }

    /// Interrupted jobs of `environment` that nobody has acknowledged or retried: the
    /// environment shows a banner for each.
    pub async fn interrupted_jobs(&self, environment: &str) -> Result<Vec<Job>, JobError> {
        let rows = rows::unacknowledged_interrupted(self.db().pool(), environment).await?;
        Ok(rows.into_iter().map(Job::from).collect())
    }

    /// Log lines after `after_seq`, oldest first.
    pub async fn job_log(&self, id: i64, after_seq: i64, limit: i64) -> Result<Vec<log::LogLine>, JobError> {
        let rows = rows::log_after(self.db().pool(), id, after_seq, limit).await?;
        Ok(rows.into_iter().map(log::LogLine::from).collect())
    }

    /// The last `limit` lines and how many there are in all.
    pub async fn job_log_tail(&self, id: i64, limit: i64) -> Result<(Vec<log::LogLine>, i64), JobError> {
        let rows = rows::log_tail(self.db().pool(), id, limit).await?;
        let total = rows::log_count(self.db().pool(), id).await?;
        Ok((rows.into_iter().map(log::LogLine::from).collect(), total))
    }

    /// A receiver that changes whenever job state or log lines were written by this process.
    /// Followers wait on it, and re-read at least every second for writes of other instances.
    pub fn job_changes(&self) -> watch::Receiver<u64> {
        self.signals().changed.subscribe()
    }

    /// Ends every log follower of this process (shutdown: open streams would otherwise hold
    /// the HTTP server open).
    pub fn begin_close(&self) {
        self.signals().closing.cancel();
    }

    /// Completes when [`Engine::begin_close`] was called.
    pub async fn closing(&self) {
        self.signals().closing.cancelled().await;
    }

    fn stop_local(&self, id: i64, reason: worker::StopReason) {
        let stop = self
            .signals()
            .running
            .lock()
            .ok()
            .and_then(|running| running.get(&id).cloned());
        if let Some(stop) = stop {
            stop.stop(reason);
        }
    }
}

/// Which jobs to list; `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub environment: Option<String>,
    pub kind: Option<String>,
    pub state: Option<JobState>,
}

#[cfg(test)]
mod tests;
