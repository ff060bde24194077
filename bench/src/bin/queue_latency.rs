//! Queue latency: the time from requesting a job to a worker starting it, on SQLite and on
//! PostgreSQL, against a reference run of the bare database work a queue cannot avoid.
//!
//! ```text
//! cargo run --release -p bench --bin queue-latency [-- --backend sqlite|postgres|both --jobs 1000]
//! ```
//!
//! Each backend gets a fresh database (`engine::testing::TestDb`), an engine with one environment
//! whose one non-exclusive action runs `true`, and `jobs.workers = 2`. Jobs are requested one
//! after another — request, wait until it has started *and* finished, next — so each figure is the
//! queue's latency, never a backlog.
//!
//! **Queue latency** is measured in this process with a monotonic clock, at microsecond
//! resolution: from `Instant::now()` just before `Engine::request_job` to the instant the worker
//! emits its `job started` tracing event, which it does right after the claim has committed (a
//! tracing layer here records the instant). Two cross-checks are reported beside it: the first
//! time the job, re-read on every `Engine::job_changes` signal, no longer reads `queued` (an upper
//! bound: it includes one read), and `started_at_ms - created_at_ms` from the database (whole
//! milliseconds on both ends, so ±1 ms).
//!
//! **Reference**: the same number of iterations, on the same database through the same pool, of
//! what any database queue must do: one write transaction that inserts the job row, then one that
//! claims it with the workers' own claim statement (UPDATE … RETURNING) — no audit event, no
//! notification, no wake-up, no worker. Queue and reference alternate in blocks of 10 so that both
//! see the same disk: PostgreSQL's figures are mostly commit fsyncs, which drift by several times
//! within seconds on a shared disk. (So 1 job in 10 follows a reference block rather than the
//! previous job.) The ratio queue p95 / reference p95 is the figure to compare
//! between machines; the absolute p95 is checked against the issue's target (< 100 ms).

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use bench::{Summary, ms};
use clap::{Parser, ValueEnum};
use engine::{
    Config, Engine,
    accounts::Actor,
    config::{Action, Environment, JobsConfig},
    db::{self, Db, jobs as rows},
    jobs::{JobRequest, JobSpec, JobState},
    kinds::command::Command,
    testing::TestDb,
};
use serde::Serialize;
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    Layer,
    filter::{LevelFilter, Targets},
    layer::{Context, SubscriberExt as _},
    util::SubscriberInitExt as _,
};

/// The issue's target for the queue's p95.
const TARGET_P95_MS: f64 = 100.0;
/// A job that has not finished by then means something is broken, not slow.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
const ENVIRONMENT: &str = "bench";
const ACTION: &str = "noop";
const WORKERS: u32 = 2;
/// Queue jobs, then as many reference iterations, then the next block: short, because commit
/// times on a shared disk drift within seconds.
const BLOCK: usize = 10;
/// Untimed pause before a reference block, so that the worker that ran the last job is back to
/// waiting (its re-check of the queue would otherwise contend with the first reference insert).
const SETTLE: Duration = Duration::from_millis(5);
const REFERENCE_OWNER: &str = "bench-reference";

#[derive(Parser)]
#[command(about = "Time from requesting a job to a worker starting it, against a reference run")]
struct Args {
    /// Which databases to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// Jobs measured per backend.
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    /// Jobs (and reference iterations) run first and not counted: connections opened, caches
    /// warm.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Pause between one job's end and the next request. 0 (default): the next job is requested
    /// as soon as the previous one reads finished, while its worker goes back to the queue.
    #[arg(long, default_value_t = 0)]
    gap_ms: u64,
    /// Where the JSON report goes (default: bench/results/queue-latency.json).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Serialize)]
struct Report {
    benchmark: &'static str,
    run_at_unix_ms: i64,
    cpus: usize,
    workers: u32,
    jobs: usize,
    warmup: usize,
    gap_ms: u64,
    target_p95_ms: f64,
    /// What each figure is, for whoever reads only the JSON.
    definitions: BTreeMap<&'static str, &'static str>,
    backends: Vec<BackendReport>,
}

#[derive(Serialize)]
struct BackendReport {
    backend: Backend,
    /// Set when the backend could not be measured (PostgreSQL unreachable).
    skipped: Option<String>,
    queue: Option<Summary>,
    queue_observed: Option<Summary>,
    queue_db_timestamps: Option<Summary>,
    request_job: Option<Summary>,
    reference: Option<Summary>,
    /// Reference iterations whose row an idle worker's periodic re-check claimed first (not
    /// counted; expected 0).
    reference_discarded: usize,
    ratio_p50: Option<f64>,
    ratio_p95: Option<f64>,
    target_met: Option<bool>,
}

impl BackendReport {
    fn skipped(backend: Backend, why: String) -> BackendReport {
        BackendReport {
            backend,
            skipped: Some(why),
            queue: None,
            queue_observed: None,
            queue_db_timestamps: None,
            request_job: None,
            reference: None,
            reference_discarded: 0,
            ratio_p50: None,
            ratio_p95: None,
            target_met: None,
        }
    }
}

/// One measured job.
struct Sample {
    /// Before `request_job` → the worker's `job started` event.
    queue: Duration,
    /// Before `request_job` → a re-read after a `job_changes` signal shows it no longer queued.
    observed: Duration,
    /// `started_at_ms - created_at_ms`, whole milliseconds.
    db_ms: i64,
    /// How long `request_job` itself took (insert, audit, commit, wake-up).
    request: Duration,
}

/// When each job's worker said it started, by job id: filled by the tracing layer below.
#[derive(Clone, Default)]
struct StartTimes(Arc<Mutex<HashMap<i64, Instant>>>);

impl StartTimes {
    fn take(&self, id: i64) -> Option<Instant> {
        self.0.lock().ok()?.remove(&id)
    }
}

impl<S: Subscriber> Layer<S> for StartTimes {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let now = Instant::now();
        let mut fields = StartedFields::default();
        event.record(&mut fields);
        if fields.message == "job started"
            && let Some(id) = fields.job
            && let Ok(mut starts) = self.0.lock()
        {
            starts.insert(id, now);
        }
    }
}

#[derive(Default)]
struct StartedFields {
    message: String,
    job: Option<i64>,
}

impl Visit for StartedFields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "job" {
            self.job = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.jobs > 0, "--jobs must be at least 1");

    let starts = StartTimes::default();
    tracing_subscriber::registry()
        // Only the worker's events reach the hook: sqlx's per-query events would cost time.
        .with(
            starts
                .clone()
                .with_filter(Targets::new().with_target("engine::jobs::worker", Level::INFO)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(LevelFilter::WARN),
        )
        .init();

    let backends: &[Backend] = match args.backend {
        Which::Sqlite => &[Backend::Sqlite],
        Which::Postgres => &[Backend::Postgres],
        Which::Both => &[Backend::Sqlite, Backend::Postgres],
    };
    let mut reports = Vec::new();
    for &backend in backends {
        let test = match backend {
            Backend::Sqlite => Some(TestDb::sqlite().await),
            Backend::Postgres => TestDb::postgres().await,
        };
        let Some(test) = test else {
            let why = format!("PostgreSQL at {} is unreachable", engine::testing::postgres_base_url());
            reports.push(BackendReport::skipped(backend, why));
            continue;
        };
        let report = measure(backend, &test.db, &args, &starts).await;
        test.cleanup().await;
        reports.push(report?);
    }

    print_table(&reports, args.jobs);
    let report = Report {
        benchmark: "queue-latency",
        run_at_unix_ms: db::now_ms(),
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        workers: WORKERS,
        jobs: args.jobs,
        warmup: args.warmup,
        gap_ms: args.gap_ms,
        target_p95_ms: TARGET_P95_MS,
        definitions: definitions(),
        backends: reports,
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results/queue-latency.json"));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nWritten to {}", out.display());
    Ok(())
}

async fn measure(backend: Backend, db: &Db, args: &Args, starts: &StartTimes) -> anyhow::Result<BackendReport> {
    let engine = Engine::new(config(), db.clone());
    let workers = engine.start_workers().await.context("starting the workers")?;
    let mut reference = Reference::new(db)?;
    let name = backend.name();

    for i in 0..args.warmup {
        one_job(&engine, starts)
            .await
            .with_context(|| format!("{name}: warm-up job {}", i + 1))?;
        reference.once().await.context("warm-up reference")?;
    }
    reference.samples.clear();
    reference.discarded = 0;

    // Queue and reference alternate in blocks, so both see the same disk and the same load
    // (commit fsyncs on a shared disk drift by several times within seconds).
    let mut samples = Vec::with_capacity(args.jobs);
    while samples.len() < args.jobs {
        let block = BLOCK.min(args.jobs - samples.len());
        for _ in 0..block {
            let sample = one_job(&engine, starts)
                .await
                .with_context(|| format!("{name}: job {} of {}", samples.len() + 1, args.jobs))?;
            samples.push(sample);
            if args.gap_ms > 0 {
                tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
            }
        }
        tokio::time::sleep(SETTLE).await;
        let wanted = samples.len();
        while reference.samples.len() < wanted {
            reference
                .once()
                .await
                .with_context(|| format!("{name}: reference run"))?;
        }
        if samples.len() % 250 == 0 {
            eprintln!("{name}: {}/{} jobs and reference iterations", samples.len(), args.jobs);
        }
    }
    workers.shutdown(Duration::from_secs(5)).await;
    if reference.discarded > 0 {
        eprintln!(
            "{name}: {} reference iterations were discarded (an idle worker's periodic re-check claimed the row)",
            reference.discarded
        );
    }

    let queue = Summary::of(&samples.iter().map(|s| s.queue).collect::<Vec<_>>());
    let observed = Summary::of(&samples.iter().map(|s| s.observed).collect::<Vec<_>>());
    let db_ms = Summary::of(
        &samples
            .iter()
            .map(|s| Duration::from_millis(u64::try_from(s.db_ms).unwrap_or(0)))
            .collect::<Vec<_>>(),
    );
    let request = Summary::of(&samples.iter().map(|s| s.request).collect::<Vec<_>>());
    let discarded = reference.discarded;
    let reference = Summary::of(&reference.samples);
    let ratio = |pick: fn(&Summary) -> f64| match (queue, reference) {
        (Some(q), Some(r)) if pick(&r) > 0.0 => Some(pick(&q) / pick(&r)),
        _ => None,
    };
    Ok(BackendReport {
        backend,
        skipped: None,
        ratio_p50: ratio(|s| s.p50_ms),
        ratio_p95: ratio(|s| s.p95_ms),
        target_met: queue.map(|q| q.p95_ms < TARGET_P95_MS),
        queue,
        queue_observed: observed,
        queue_db_timestamps: db_ms,
        request_job: request,
        reference,
        reference_discarded: discarded,
    })
}

/// Requests one job, waits until it has started and finished, and says when it started.
async fn one_job(engine: &Engine, starts: &StartTimes) -> anyhow::Result<Sample> {
    let mut changes = engine.job_changes();
    changes.borrow_and_update();
    let before = Instant::now();
    let job = engine.request_job(&bench_actor(), request()).await?;
    let request = before.elapsed();

    let deadline = tokio::time::Instant::now() + JOB_TIMEOUT;
    let mut observed = None;
    let finished = loop {
        // Marked seen before reading, so a change during the read wakes the next wait.
        changes.borrow_and_update();
        let now = engine.job(job.id).await?.context("the job vanished")?;
        if observed.is_none() && now.state != JobState::Queued {
            observed = Some(before.elapsed());
        }
        if now.state.is_finished() {
            break now;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => bail!("the engine's change signal closed"),
            Err(_) => bail!("job #{} did not finish within {JOB_TIMEOUT:?}: {now:?}", job.id),
        }
    };
    ensure!(
        finished.state == JobState::Succeeded,
        "job #{} ended {}: {:?}",
        job.id,
        finished.state,
        finished.error
    );
    let started = starts.take(job.id).with_context(|| {
        format!(
            "job #{} ran, but no `job started` event of engine::jobs::worker was seen (was the event renamed?)",
            job.id
        )
    })?;
    Ok(Sample {
        queue: started.saturating_duration_since(before),
        observed: observed.unwrap_or_default(),
        db_ms: finished.started_at_ms.unwrap_or(finished.created_at_ms) - finished.created_at_ms,
        request,
    })
}

/// The bare cost underneath the queue, per job: insert the row in one write transaction, claim it
/// in another with the workers' claim statement. Same database, same pool, sequential. It runs
/// while the workers are idle: nothing wakes them (no notification), so they do not look at the
/// table except for their slow periodic re-check.
struct Reference<'a> {
    db: &'a Db,
    input: String,
    samples: Vec<Duration>,
    /// Iterations whose row an idle worker's periodic re-check claimed first.
    discarded: usize,
}

impl<'a> Reference<'a> {
    fn new(db: &'a Db) -> anyhow::Result<Reference<'a>> {
        Ok(Reference {
            db,
            input: JobSpec::new(Command { action: ACTION.into() }).to_json().to_string(),
            samples: Vec::new(),
            discarded: 0,
        })
    }

    async fn once(&mut self) -> anyhow::Result<()> {
        let db = self.db;
        let before = Instant::now();
        let mut tx = db.begin_write().await?;
        let new = rows::NewJobRow {
            kind: "command",
            environment: ENVIRONMENT,
            input: &self.input,
            exclusive_key: None,
            requested_by: "bench",
            reason: "",
            created_at: db::now_ms(),
            attempt: 1,
            parent_id: None,
            retry_of: None,
            steps: r#"["No-op"]"#,
            slot_key: None,
        };
        let inserted = rows::insert(&mut *tx, &new).await?;
        tx.commit().await?;
        let now = db::now_ms();
        let mut tx = db.begin_write().await?;
        let claimed = rows::claim(&mut *tx, db.backend(), &["command"], REFERENCE_OWNER, now, now + 30_000).await?;
        tx.commit().await?;
        let elapsed = before.elapsed();

        match claimed {
            Some(row) if row.id == inserted.id => {
                self.samples.push(elapsed);
                // Untimed: leave the row as a finished job, so neither the reaper nor the
                // workers ever see it again.
                let mut tx = db.begin_write().await?;
                let done = rows::finish(
                    &mut *tx,
                    row.id,
                    REFERENCE_OWNER,
                    "succeeded",
                    None,
                    Some(1),
                    db::now_ms(),
                )
                .await?;
                tx.commit().await?;
                ensure!(done, "finishing reference row #{} failed", row.id);
            }
            Some(row) => bail!("the reference claimed job #{} instead of #{}", row.id, inserted.id),
            None => self.discarded += 1,
        }
        Ok(())
    }
}

fn config() -> Config {
    let mut actions = BTreeMap::new();
    actions.insert(
        ACTION.to_string(),
        Action {
            label: "No-op".into(),
            command: vec!["true".into()],
            workdir: None,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            timeout_seconds: 60,
            exclusive: false,
        },
    );
    Config {
        environments: vec![Environment {
            name: ENVIRONMENT.into(),
            label: "Benchmark".into(),
            colour: "#607d8b".into(),
            production: false,
            actions,
            resources: Default::default(),
            facts: Default::default(),
            backup_expected_within_hours: None,
            maintenance: Default::default(),
            smoke_checks: Default::default(),
            ..Default::default()
        }],
        jobs: JobsConfig {
            workers: WORKERS,
            lease_seconds: 30,
            cancel_grace_seconds: 1,
            shutdown_grace_seconds: 5,
        },
        ..Config::default()
    }
}

fn bench_actor() -> Actor {
    Actor {
        username: Some("bench".into()),
        client_ip: None,
    }
}

fn request() -> JobRequest {
    JobRequest {
        environment: ENVIRONMENT.into(),
        spec: JobSpec::new(Command { action: ACTION.into() }),
        reason: String::new(),
        parent_id: None,
    }
}

fn definitions() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "queue",
            "Instant before Engine::request_job -> the worker's `job started` tracing event (emitted right after \
             its claim committed); monotonic clock, microsecond resolution",
        ),
        (
            "queue_observed",
            "Instant before Engine::request_job -> the first re-read (woken by Engine::job_changes) showing the job \
             no longer queued; an upper bound, it includes that read",
        ),
        (
            "queue_db_timestamps",
            "job.started_at - job.created_at from the database; whole milliseconds at both ends (+-1 ms)",
        ),
        (
            "request_job",
            "How long Engine::request_job itself took (insert, audit event, commit, wake-up)",
        ),
        (
            "reference",
            "No worker: one write transaction inserting a job row, then one claiming it with the workers' claim \
             statement; same database, same pool, sequential",
        ),
        ("ratio_p95", "queue.p95_ms / reference.p95_ms (ratio_p50 likewise)"),
    ])
}

fn print_table(reports: &[BackendReport], jobs: usize) {
    println!(
        "\nQueue latency: request -> worker starts the job ({jobs} jobs one after another, {WORKERS} workers; \
         monotonic clock, µs resolution)\n"
    );
    println!(
        "{:<11} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  target p95 < {TARGET_P95_MS:.0} ms",
        "backend", "jobs", "p50", "p95", "max", "ref p50", "ref p95", "p50/ref", "p95/ref"
    );
    for report in reports {
        let (Some(q), Some(r)) = (report.queue, report.reference) else {
            println!(
                "{:<11} skipped: {}",
                report.backend.name(),
                report.skipped.as_deref().unwrap_or("no samples")
            );
            continue;
        };
        let ratio = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |x| format!("{x:.2}×"));
        println!(
            "{:<11} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {}",
            report.backend.name(),
            q.samples,
            ms(q.p50_ms),
            ms(q.p95_ms),
            ms(q.max_ms),
            ms(r.p50_ms),
            ms(r.p95_ms),
            ratio(report.ratio_p50),
            ratio(report.ratio_p95),
            if report.target_met == Some(true) {
                "met"
            } else {
                "NOT met"
            },
        );
    }
    println!("\nCross-checks (same jobs):");
    for report in reports {
        if let (Some(o), Some(d), Some(rq)) = (report.queue_observed, report.queue_db_timestamps, report.request_job) {
            println!(
                "  {:<11} seen via job_changes + re-read: p50 {}, p95 {}, max {}; DB started_at - created_at \
                 (whole ms, ±1 ms): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; request_job alone: p50 {}, p95 {}",
                report.backend.name(),
                ms(o.p50_ms),
                ms(o.p95_ms),
                ms(o.max_ms),
                d.p50_ms,
                d.p95_ms,
                d.max_ms,
                ms(rq.p50_ms),
                ms(rq.p95_ms),
            );
        }
    }
}
