//! `steward job …` and `steward run`: the job queue from a terminal.
//!
//! Like `steward user …`, these commands open the database directly and act as the `cli` actor,
//! so they work beside a running `steward serve`. They never run a job themselves: they queue,
//! cancel, retry and read, and the workers of `steward serve` do the work. Following a log is
//! therefore polling: the workers live in another process, whose in-memory change signal this
//! one cannot hear.
//!
//! Exit codes as for every command: 0 success, 1 a failure. Following a job (`run`,
//! `job log --follow`) succeeds only when the job did.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use engine::{
    Config, Engine,
    accounts::Actor,
    jobs::{Job, JobError, JobFilter, JobRequest, JobSpec, JobState, log::LogLine},
    kinds::command::Command,
};

use super::open_engine;

/// Log lines read per query.
const CHUNK: i64 = 1000;
/// How often a follower looks for new lines and for the job's end.
const POLL: Duration = Duration::from_millis(300);
/// A job still queued after this long probably has no worker to run it.
const QUEUED_HINT_AFTER: Duration = Duration::from_secs(10);
/// Log lines shown by `steward job show`.
const SHOW_LOG_LINES: i64 = 20;

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// List jobs, newest first.
    List {
        /// Only the jobs of this environment.
        #[arg(long)]
        env: Option<String>,
        /// Only jobs in this state: queued, running, succeeded, failed, cancelled, interrupted.
        #[arg(long, value_parser = parse_state)]
        state: Option<JobState>,
        /// Only jobs of this kind (e.g. `command`).
        #[arg(long)]
        kind: Option<String>,
        /// Show at most this many jobs.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Show everything about a job, and the last lines of its log.
    Show {
        /// The job's number (the ID column of `steward job list`).
        id: i64,
    },
    /// Print a job's log. With --follow, keep printing until the job has ended; the exit code
    /// is then 0 if it succeeded and 1 otherwise.
    Log {
        /// The job's number (the ID column of `steward job list`).
        id: i64,
        /// Wait for new lines until the job has ended.
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a queued job, or stop a running one (its program gets SIGTERM, then SIGKILL after
    /// `jobs.cancel_grace_seconds`).
    Cancel {
        /// The job's number (the ID column of `steward job list`).
        id: i64,
    },
    /// Run a failed, cancelled or interrupted job again, as a new job linked to it.
    Retry {
        /// The job's number (the ID column of `steward job list`).
        id: i64,
        /// Why it is run again (default: "Retry of #ID").
        #[arg(long)]
        reason: Option<String>,
    },
    /// Dismiss a failed, cancelled or interrupted job (and its banner on the environment)
    /// without running it again.
    Acknowledge {
        /// The job's number (the ID column of `steward job list`).
        id: i64,
    },
}

/// `steward run ENV ACTION`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The environment, e.g. `prod`.
    pub env: String,
    /// The action, by its name under the environment's `actions` in the configuration.
    pub action: String,
    /// Why it is run: kept with the job and in the audit log.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `--state failed` → the engine's state; the error lists the states there are.
fn parse_state(s: &str) -> Result<JobState, String> {
    JobState::parse(s).ok_or_else(|| {
        let states: Vec<&str> = JobState::ALL.iter().map(|state| state.as_str()).collect();
        format!("not a job state; one of: {}", states.join(", "))
    })
}

/// `steward job …`.
pub(super) async fn job(config: Config, command: JobCommand) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let following = matches!(command, JobCommand::Log { follow: true, .. });
    let result = match command {
        JobCommand::List {
            env,
            state,
            kind,
            limit,
        } => {
            let filter = JobFilter {
                environment: env,
                kind,
                state,
            };
            list(&engine, &filter, limit).await
        }
        JobCommand::Show { id } => show(&engine, id).await,
        JobCommand::Log { id, follow: false } => print_log(&engine, id).await,
        JobCommand::Log { id, follow: true } => follow(&engine, id).await.and_then(|job| outcome(&job)),
        JobCommand::Cancel { id } => cancel(&engine, id).await,
        JobCommand::Retry { id, reason } => retry(&engine, id, reason.as_deref().unwrap_or_default()).await,
        JobCommand::Acknowledge { id } => acknowledge(&engine, id).await,
    };
    engine.db().close().await;
    if following {
        // Cut off early, the follower did not see how the job ended: not a success.
        result
    } else {
        quiet_on_closed_pipe(result)
    }
}

/// `steward run ENV ACTION`: queue the action as a job, then follow it to its end.
pub(super) async fn run_action(config: Config, args: RunArgs) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = async {
        let request = JobRequest {
            environment: args.env,
            spec: JobSpec::new(Command { action: args.action }),
            reason: args.reason.unwrap_or_default(),
            parent_id: None,
        };
        let job = engine
            .request_job(&Actor::cli(), request)
            .await
            .map_err(|e| explain(&engine, e))?;
        println!(
            "Queued {} on {}; following its log (Ctrl-C stops following, not the job).",
            job.title(),
            job.environment
        );
        let job = follow(&engine, job.id).await?;
        outcome(&job)
    }
    .await;
    engine.db().close().await;
    result
}

/// `steward job log 7 | head` closes the pipe early: the reader's choice, not a failure.
fn quiet_on_closed_pipe(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e)
            if e.downcast_ref::<std::io::Error>().map(std::io::Error::kind) == Some(std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

async fn list(engine: &Engine, filter: &JobFilter, limit: i64) -> anyhow::Result<()> {
    let jobs = engine.jobs(filter, None, limit).await?;
    if jobs.is_empty() {
        // A typo in --env would read as "no jobs". Checked only when nothing was found: jobs of
        // an environment since removed from the configuration can still be listed.
        if let Some(env) = &filter.environment
            && engine.config().environment(env).is_none()
        {
            return Err(explain(engine, JobError::UnknownEnvironment(env.clone())));
        }
        println!("No jobs.");
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>6}  {:<12} {:<28} {:<11} {:<16} CREATED",
        "ID", "ENV", "JOB", "STATE", "REQUESTED BY"
    )?;
    for job in jobs {
        writeln!(
            out,
            "{:>6}  {:<12} {:<28} {:<11} {:<16} {}",
            job.id,
            job.environment,
            job.title(),
            job.state.as_str(),
            job.requested_by,
            app::format::utc(job.created_at_ms)
        )?;
    }
    Ok(())
}

async fn show(engine: &Engine, id: i64) -> anyhow::Result<()> {
    let job = find(engine, id).await?;
    let (lines, total) = engine.job_log_tail(id, SHOW_LOG_LINES).await?;
    let none = || "—".to_string();
    let kind = if job.exclusive {
        format!("{} (holds {} while it runs)", job.kind, job.environment)
    } else {
        format!("{} (read-only: runs beside other jobs)", job.kind)
    };
    let finished = match (job.started_at_ms, job.finished_at_ms) {
        (Some(started), Some(finished)) => format!(
            "{} (after {})",
            app::format::utc(finished),
            app::format::duration(started, finished)
        ),
        (None, Some(finished)) => app::format::utc(finished),
        (_, None) => none(),
    };
    let steps = if job.steps.is_empty() {
        none()
    } else {
        format!("{}/{} ({})", job.steps_done, job.steps.len(), job.steps.join(", "))
    };

    let fields = [
        ("environment", job.environment.clone()),
        ("kind", kind),
        ("state", job.state.to_string()),
        ("requested by", job.requested_by.clone()),
        (
            "reason",
            Some(job.reason.clone()).filter(|r| !r.is_empty()).unwrap_or_else(none),
        ),
        ("created", app::format::utc(job.created_at_ms)),
        ("started", job.started_at_ms.map_or_else(none, app::format::utc)),
        ("finished", finished),
        ("attempt", job.attempt.to_string()),
        ("retry of", job.retry_of.map_or_else(none, |id| format!("#{id}"))),
        ("part of", job.parent_id.map_or_else(none, |id| format!("#{id}"))),
        ("steps", steps),
        (
            "progress",
            job.progress
                .map_or_else(none, |(done, total)| format!("{done}/{total}")),
        ),
        ("error", job.error.clone().unwrap_or_else(none)),
        (
            "cancel requested by",
            job.cancel_requested_by.clone().unwrap_or_else(none),
        ),
        ("acknowledged by", job.acknowledged_by.clone().unwrap_or_else(none)),
    ];

    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", job.title())?;
    for (label, value) in fields {
        writeln!(out, "  {label:<20} {value}")?;
    }
    writeln!(out)?;
    if total == 0 {
        writeln!(out, "No log lines yet.")?;
    } else if total > SHOW_LOG_LINES {
        writeln!(
            out,
            "Last {} of {total} log lines (all of them: steward job log {id}):",
            lines.len()
        )?;
    } else {
        writeln!(out, "Log:")?;
    }
    for line in &lines {
        writeln!(out, "{}", format_line(line))?;
    }
    let refusal = job.spec.as_ref().and_then(|spec| spec.retry_refusal());
    if let (true, Some(why)) = (job.state.is_retryable(), refusal) {
        writeln!(out, "\nIt cannot be retried: {why}.")?;
    } else if job.state.is_retryable() && job.acknowledged_by.is_none() {
        writeln!(
            out,
            "\nCheck {}, then run it again with `steward job retry {id}` or dismiss it with `steward job acknowledge {id}`.",
            job.environment
        )?;
    }
    Ok(())
}

async fn cancel(engine: &Engine, id: i64) -> anyhow::Result<()> {
    let job = engine.cancel_job(&Actor::cli(), id).await?;
    if job.state == JobState::Cancelled {
        println!("Cancelled {} before it started.", job.title());
    } else {
        println!(
            "Asked {} to stop; it ends cancelled once its program has stopped (follow it: steward job log {id} --follow).",
            job.title()
        );
    }
    Ok(())
}

async fn retry(engine: &Engine, id: i64, reason: &str) -> anyhow::Result<()> {
    let job = engine
        .retry_job(&Actor::cli(), id, reason)
        .await
        .map_err(|e| explain(engine, e))?;
    println!(
        "Queued {} on {} as a retry of #{id} (follow it: steward job log {} --follow).",
        job.title(),
        job.environment,
        job.id
    );
    Ok(())
}

async fn acknowledge(engine: &Engine, id: i64) -> anyhow::Result<()> {
    engine.acknowledge_job(&Actor::cli(), id).await?;
    println!("Acknowledged job #{id}.");
    Ok(())
}

/// Prints the whole log of job `id` as it is now.
async fn print_log(engine: &Engine, id: i64) -> anyhow::Result<()> {
    // An unknown id would otherwise print nothing and succeed.
    find(engine, id).await?;
    print_lines(engine, id, 0).await?;
    Ok(())
}

/// Prints the log of job `id` from the start until the job has ended and every line is
/// printed; returns the ended job.
pub(super) async fn follow(engine: &Engine, id: i64) -> anyhow::Result<Job> {
    let since = Instant::now();
    let mut after = 0;
    let mut hinted = false;
    loop {
        // The state before the lines: a job reads as ended only once all its lines are stored,
        // so the lines read after seeing it ended are the last ones.
        let job = find(engine, id).await?;
        after = print_lines(engine, id, after).await?;
        if job.state.is_finished() {
            return Ok(job);
        }
        if !hinted && job.state == JobState::Queued && since.elapsed() >= QUEUED_HINT_AFTER {
            eprintln!("still queued: is `steward serve` running with jobs.workers > 0?");
            hinted = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Prints the lines after `after_seq`, in chunks; returns the last `seq` printed.
async fn print_lines(engine: &Engine, id: i64, mut after_seq: i64) -> anyhow::Result<i64> {
    loop {
        let lines = engine.job_log(id, after_seq, CHUNK).await?;
        let mut out = std::io::stdout().lock();
        for line in &lines {
            writeln!(out, "{}", format_line(line))?;
        }
        out.flush()?;
        match lines.last() {
            Some(last) if lines.len() as i64 == CHUNK => after_seq = last.seq,
            Some(last) => return Ok(last.seq),
            None => return Ok(after_seq),
        }
    }
}

/// `10:02:07 stdout copying files`: time (UTC), who wrote it, the line.
fn format_line(line: &LogLine) -> String {
    format!(
        "{} {:<6} {}",
        app::format::clock(line.at_ms),
        line.level.as_str(),
        line.line
    )
}

/// The outcome of a followed job as the exit code: its error, if any, on standard error.
pub(super) fn outcome(job: &Job) -> anyhow::Result<()> {
    match job.state {
        JobState::Succeeded => Ok(()),
        state => Err(anyhow!(
            "{} {state}: {}",
            job.title(),
            job.error.as_deref().unwrap_or("no reason was recorded")
        )),
    }
}

async fn find(engine: &Engine, id: i64) -> anyhow::Result<Job> {
    Ok(engine.job(id).await?.ok_or(JobError::NotFound(id))?)
}

/// A refused request, with what would have been accepted when the name was wrong.
pub(super) fn explain(engine: &Engine, e: JobError) -> anyhow::Error {
    match e {
        JobError::UnknownEnvironment(name) => {
            let names: Vec<&str> = engine
                .config()
                .environments
                .iter()
                .map(|env| env.name.as_str())
                .collect();
            anyhow!("there is no environment \"{name}\" (configured: {})", listing(&names))
        }
        JobError::UnknownAction { environment, action } => {
            let names: Vec<&str> = engine
                .config()
                .environment(&environment)
                .map(|env| env.actions.keys().map(String::as_str).collect())
                .unwrap_or_default();
            anyhow!(
                "{environment} has no action \"{action}\" (its actions: {})",
                listing(&names)
            )
        }
        other => other.into(),
    }
}

fn listing(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use engine::jobs::log::Level;

    use super::*;

    #[test]
    fn log_lines_read_as_time_level_line() {
        let line = LogLine {
            seq: 3,
            at_ms: 1_763_776_807_000,
            level: Level::Stdout,
            line: "copying files".into(),
        };
        assert_eq!(format_line(&line), "02:00:07 stdout copying files");
        let line = LogLine {
            level: Level::Info,
            ..line
        };
        assert_eq!(format_line(&line), "02:00:07 info   copying files");
    }

    #[test]
    fn only_a_succeeded_job_is_a_success() {
        let job = Job {
            id: 7,
            kind: "command".into(),
            environment: "prod".into(),
            spec: Some(JobSpec::new(Command {
                action: "deploy".into(),
            })),
            exclusive: true,
            state: JobState::Succeeded,
            requested_by: "cli".into(),
            reason: String::new(),
            created_at_ms: 0,
            started_at_ms: None,
            finished_at_ms: None,
            attempt: 1,
            parent_id: None,
            retry_of: None,
            steps: Vec::new(),
            steps_done: 0,
            progress: None,
            error: None,
            cancel_requested_by: None,
            acknowledged_by: None,
        };
        assert!(outcome(&job).is_ok());
        let failed = Job {
            state: JobState::Failed,
            error: Some("Sh exited with status 3.".into()),
            ..job
        };
        let message = outcome(&failed).unwrap_err().to_string();
        assert_eq!(message, "deploy #7 failed: Sh exited with status 3.");
    }
}
