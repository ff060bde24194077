//! What a job does: the [`JobKind`] trait every kind implements, the [`JobSpec`] handle the
//! queue keeps of a job's typed input, the [`JobContext`] a running job gets, and the typed
//! [`Outcome`] it ends with.
//!
//! The queue (`jobs`, `jobs::worker`) knows no kind: it stores a spec as its kind's name and
//! input (JSON), asks the spec to plan itself when requested and to run when claimed, and maps
//! the outcome to the job's final state. The kinds themselves live in `crate::kinds`, one file
//! each, and are listed once in `crate::kinds::ALL`, which the engine installs here when it is
//! created ([`install`]): that list is what workers claim and what stored inputs are read with.
//! A job whose kind is not in the list (written by a newer Steward) is listed and shown, never
//! claimed.

use std::{
    any::Any,
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{
    Config, Engine,
    config::Environment,
    jobs::{Job, JobError},
    output::JobLog,
    process::Watch,
};

/// One kind of job: its typed input is the implementing type itself (stored as JSON).
pub trait JobKind: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static {
    /// The `kind` column: `backup`, `restore`, … Lowercase letters and `_` only.
    const NAME: &'static str;

    /// How people call this job in messages: "backup", an action's name, "undo".
    fn title(&self) -> String {
        Self::NAME.to_string()
    }

    /// Checks a request against the configuration (and the catalog) and plans the job: whether
    /// it holds its environment's slot, and the steps the job page lists. An `Err` refuses the
    /// request before anything is queued.
    fn plan<'a>(&'a self, engine: &'a Engine, environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>>;

    /// Values the job's log must never show.
    fn secrets(&self, _config: &Config, _environment: &str) -> Vec<String> {
        Vec::new()
    }

    /// How long the job may run before it is stopped and fails; `None`: no limit of its own
    /// (the programs it starts have theirs).
    fn timeout(&self, _config: &Config, _environment: &str) -> Option<Duration> {
        None
    }

    /// The backup this job is about: the one it writes, verifies or restores.
    fn backup_id(&self) -> Option<&str> {
        None
    }

    /// The backup this job writes into storage, if any: its staging area is spared while the
    /// job runs.
    fn writes_backup(&self) -> Option<&str> {
        None
    }

    /// The input of a retry (by default the same input).
    fn for_retry(&self, _environment: &str) -> Self {
        self.clone()
    }

    /// Why a job of this kind cannot be retried, when it cannot (its page offers no Retry).
    fn retry_refusal(&self) -> Option<&'static str> {
        None
    }

    /// Does the work. Check `ctx.stop` between steps; return [`Outcome::Stopped`] (or a
    /// [`Failure::Stopped`]) once it fired.
    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome>;

    /// Removes what jobs of this kind cut off by a crash left behind (partial backups, scratch
    /// files). Called when the workers start and after the reaper interrupted jobs.
    fn recover(_engine: &Engine) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// What a kind's [`JobKind::plan`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Whether the job holds its environment's slot (it changes the environment).
    pub exclusive: bool,
    pub steps: Vec<String>,
}

/// What a running job has at hand.
pub struct JobContext<'a> {
    pub engine: &'a Engine,
    pub job: &'a Job,
    /// This worker's name.
    pub worker: &'a str,
    pub log: &'a JobLog,
    /// Fired on cancel, shutdown, a lost lease or the kind's timeout.
    pub stop: &'a CancellationToken,
    /// `STEWARD_JOB_ID` and `STEWARD_WORKER`: every program of the job gets them, and a
    /// restarted Steward finds by them what a crash left running.
    tool_env: Vec<(String, String)>,
}

impl<'a> JobContext<'a> {
    pub fn new(
        engine: &'a Engine,
        job: &'a Job,
        worker: &'a str,
        log: &'a JobLog,
        stop: &'a CancellationToken,
    ) -> JobContext<'a> {
        let tool_env = vec![
            ("STEWARD_JOB_ID".to_string(), job.id.to_string()),
            ("STEWARD_WORKER".to_string(), worker.to_string()),
        ];
        JobContext {
            engine,
            job,
            worker,
            log,
            stop,
            tool_env,
        }
    }

    /// The job's environment as configured now.
    pub fn environment(&self) -> Result<&Environment, Failure> {
        self.job
            .configured_environment(self.engine.config())
            .map_err(Failure::from)
    }

    /// The variables every program of this job gets, so that its leftovers can be found.
    pub fn tool_env(&self) -> &[(String, String)] {
        &self.tool_env
    }

    /// Between SIGTERM and SIGKILL when a program of this job is stopped
    /// (`jobs.cancel_grace_seconds`).
    pub fn grace(&self) -> Duration {
        Duration::from_secs(u64::from(self.engine.config().jobs.cancel_grace_seconds))
    }

    /// What the programs, hooks and checks this job starts answer to.
    pub fn watch(&self) -> Watch<'_> {
        Watch {
            log: self.log,
            stop: self.stop,
            grace: self.grace(),
            env: &self.tool_env,
        }
    }

    /// Returns [`Failure::Stopped`] once the job was told to stop: the check between steps.
    pub fn check_stop(&self) -> Result<(), Failure> {
        if self.stop.is_cancelled() {
            Err(Failure::Stopped)
        } else {
            Ok(())
        }
    }
}

/// How a job's work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// It stopped because it was told to (cancel, shutdown, lease lost, timeout).
    Stopped,
    /// It failed: `message` in the operator's words (the tool's own where there is one);
    /// `retry_helps` when the cause may pass by itself (a server that was down, a busy lock).
    Failed {
        message: String,
        retry_helps: bool,
    },
}

impl Outcome {
    /// A failure that a retry as it is will not mend.
    pub fn failed(message: impl Into<String>) -> Outcome {
        Outcome::Failed {
            message: message.into(),
            retry_helps: false,
        }
    }
}

/// Why a step of a job did not succeed: the `Err` of a kind's inner functions, turned into
/// an [`Outcome`] at the end (`?` turns a plain message into a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Stopped,
    Failed { message: String, retry_helps: bool },
}

impl Failure {
    /// The failure's message; "stopped" for a stop.
    pub fn message(&self) -> &str {
        match self {
            Failure::Stopped => "stopped",
            Failure::Failed { message, .. } => message,
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Failed {
            message,
            retry_helps: false,
        }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure::from(message.to_string())
    }
}

impl From<Result<(), Failure>> for Outcome {
    fn from(result: Result<(), Failure>) -> Self {
        match result {
            Ok(()) => Outcome::Succeeded,
            Err(Failure::Stopped) => Outcome::Stopped,
            Err(Failure::Failed { message, retry_helps }) => Outcome::Failed { message, retry_helps },
        }
    }
}

/// A job's typed input, whatever its kind. Cheap to clone; compares and serialises as its
/// stored form (`{"kind": "backup", …input}`).
#[derive(Clone)]
pub struct JobSpec(Arc<dyn ErasedKind>);

impl JobSpec {
    pub fn new<K: JobKind>(kind: K) -> JobSpec {
        JobSpec(Arc::new(kind))
    }

    /// The kind's name, as stored in the `kind` column.
    pub fn kind(&self) -> &'static str {
        self.0.name()
    }

    /// How people call this job: "backup", "delete-drafts", "undo".
    pub fn title(&self) -> String {
        self.0.title()
    }

    /// The typed input, when the job is of kind `K`.
    pub fn get<K: JobKind>(&self) -> Option<&K> {
        self.0.as_any().downcast_ref::<K>()
    }

    /// The stored form: the input's fields and `kind` (kept in the JSON so that older
    /// versions, which read it as a tagged enum, still understand it).
    pub fn to_json(&self) -> Value {
        let mut value = self.0.input();
        if let Value::Object(fields) = &mut value {
            fields.insert("kind".to_string(), Value::String(self.kind().to_string()));
        }
        value
    }

    /// Reads a stored input with the kind of that name; `None` when this build does not know
    /// the kind, or the input does not fit it.
    pub fn parse(kind: &str, input: &str) -> Option<JobSpec> {
        registry()
            .iter()
            .find(|entry| entry.name == kind)
            .and_then(|entry| (entry.parse)(input).ok())
    }

    pub fn backup_id(&self) -> Option<&str> {
        self.0.backup_id()
    }

    pub fn writes_backup(&self) -> Option<&str> {
        self.0.writes_backup()
    }

    pub(crate) async fn plan(&self, engine: &Engine, environment: &Environment) -> Result<Plan, JobError> {
        self.0.plan(engine, environment).await
    }

    pub(crate) fn secrets(&self, config: &Config, environment: &str) -> Vec<String> {
        self.0.secrets(config, environment)
    }

    pub(crate) fn timeout(&self, config: &Config, environment: &str) -> Option<Duration> {
        self.0.timeout(config, environment)
    }

    /// Why this job cannot be retried, when it cannot.
    pub fn retry_refusal(&self) -> Option<&'static str> {
        self.0.retry_refusal()
    }

    pub(crate) fn for_retry(&self, environment: &str) -> JobSpec {
        self.0.for_retry(environment)
    }

    pub(crate) async fn run(&self, ctx: &JobContext<'_>) -> Outcome {
        self.0.run(ctx).await
    }
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for JobSpec {
    fn eq(&self, other: &Self) -> bool {
        self.to_json() == other.to_json()
    }
}

impl Serialize for JobSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// A kind as the registry lists it: its name, how its stored input is read, and its recovery.
pub struct KindEntry {
    pub name: &'static str,
    parse: fn(&str) -> Result<JobSpec, serde_json::Error>,
    recover: for<'a> fn(&'a Engine) -> BoxFuture<'a, ()>,
}

impl KindEntry {
    /// The registry's line for kind `K`.
    pub const fn of<K: JobKind>() -> KindEntry {
        KindEntry {
            name: K::NAME,
            parse: parse_as::<K>,
            recover: K::recover,
        }
    }

    pub(crate) async fn recover(&self, engine: &Engine) {
        (self.recover)(engine).await;
    }
}

fn parse_as<K: JobKind>(input: &str) -> Result<JobSpec, serde_json::Error> {
    serde_json::from_str::<K>(input).map(JobSpec::new)
}

static REGISTRY: OnceLock<&'static [KindEntry]> = OnceLock::new();

/// Makes `kinds` the kinds this process knows (the engine does it once, with
/// `crate::kinds::ALL`; later calls change nothing).
pub(crate) fn install(kinds: &'static [KindEntry]) {
    let _ = REGISTRY.set(kinds);
}

/// The kinds this process knows.
pub fn registry() -> &'static [KindEntry] {
    REGISTRY.get().copied().unwrap_or_default()
}

/// The object-safe face of a [`JobKind`], implemented for every kind.
trait ErasedKind: fmt::Debug + Send + Sync {
    fn name(&self) -> &'static str;
    fn title(&self) -> String;
    fn input(&self) -> Value;
    fn as_any(&self) -> &dyn Any;
    fn plan<'a>(&'a self, engine: &'a Engine, environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>>;
    fn secrets(&self, config: &Config, environment: &str) -> Vec<String>;
    fn timeout(&self, config: &Config, environment: &str) -> Option<Duration>;
    fn backup_id(&self) -> Option<&str>;
    fn writes_backup(&self) -> Option<&str>;
    fn for_retry(&self, environment: &str) -> JobSpec;
    fn retry_refusal(&self) -> Option<&'static str>;
    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome>;
}

impl<K: JobKind> ErasedKind for K {
    fn name(&self) -> &'static str {
        K::NAME
    }
    fn title(&self) -> String {
        JobKind::title(self)
    }
    fn input(&self) -> Value {
        // A kind's input is plain data (strings, numbers, enums): it always serialises.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn plan<'a>(&'a self, engine: &'a Engine, environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        JobKind::plan(self, engine, environment)
    }
    fn secrets(&self, config: &Config, environment: &str) -> Vec<String> {
        JobKind::secrets(self, config, environment)
    }
    fn timeout(&self, config: &Config, environment: &str) -> Option<Duration> {
        JobKind::timeout(self, config, environment)
    }
    fn backup_id(&self) -> Option<&str> {
        JobKind::backup_id(self)
    }
    fn writes_backup(&self) -> Option<&str> {
        JobKind::writes_backup(self)
    }
    fn for_retry(&self, environment: &str) -> JobSpec {
        JobSpec::new(JobKind::for_retry(self, environment))
    }
    fn retry_refusal(&self) -> Option<&'static str> {
        JobKind::retry_refusal(self)
    }
    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome> {
        JobKind::run(self, ctx)
    }
}
