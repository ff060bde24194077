//! `steward schedule …`, `steward retention preview` and `steward prune`: what Steward does on
//! its own, and which backups it keeps.
//!
//! A schedule is named `ENV/NAME` (`prod/nightly`), or by `NAME` alone when only one
//! environment has a schedule of that name. Pause, resume and `run` change what the running
//! `steward serve` does (they are recorded in the database it reads); `run` and `prune` queue
//! jobs its workers run.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use engine::{Config, Engine, accounts::Actor, schedules::local, text::human_bytes};

use super::{
    jobs::{explain, follow, outcome},
    open_engine,
};

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// List the schedules (of one environment, or all) with their next runs and latest slots.
    List {
        /// Only this environment, e.g. `prod`.
        env: Option<String>,
    },
    /// Pause a schedule: none of its runs start until it is resumed.
    Pause {
        /// `ENV/NAME`, e.g. `prod/nightly` (or `NAME` when it is unique).
        name: String,
        /// Why, for the audit log and the console.
        #[arg(long, short)]
        reason: String,
    },
    /// Resume a paused schedule from now on (what it skipped while paused is not caught up).
    Resume {
        /// `ENV/NAME`, e.g. `prod/nightly` (or `NAME` when it is unique).
        name: String,
        #[arg(long, short)]
        reason: String,
    },
    /// Run a schedule's job now (needs a running `steward serve`).
    Run {
        /// `ENV/NAME`, e.g. `prod/nightly` (or `NAME` when it is unique).
        name: String,
        /// Print the job's log until it ends; exit code 0 only if it succeeded.
        #[arg(long, short)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// List every backup of an environment as keep or remove, with the rule that keeps it.
    /// Removes nothing.
    Preview {
        /// The environment, e.g. `prod`.
        env: String,
    },
}

pub(super) async fn schedule(config: Config, command: ScheduleCommand) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let actor = Actor::cli();
    let result = async {
        match command {
            ScheduleCommand::List { env } => list(&engine, env.as_deref()).await,
            ScheduleCommand::Pause { name, reason } => {
                let (env, name) = resolve(&engine, &name)?;
                engine.pause_schedule(&actor, &env, &name, &reason).await?;
                println!("Paused {env}/{name}. Resume it with `steward schedule resume {env}/{name} --reason …`.");
                Ok(())
            }
            ScheduleCommand::Resume { name, reason } => {
                let (env, name) = resolve(&engine, &name)?;
                engine.resume_schedule(&actor, &env, &name, &reason).await?;
                println!("Resumed {env}/{name}.");
                Ok(())
            }
            ScheduleCommand::Run {
                name,
                follow: follow_it,
            } => {
                let (env, name) = resolve(&engine, &name)?;
                let job = engine
                    .run_schedule_now(&actor, &env, &name)
                    .await
                    .map_err(|e| match e {
                        engine::schedules::ScheduleError::Job(e) => explain(&engine, e),
                        other => other.into(),
                    })?;
                if !follow_it {
                    println!(
                        "Queued {} of {env} (job #{}). Follow it with `steward job log {} --follow`.",
                        job.title(),
                        job.id,
                        job.id
                    );
                    return Ok(());
                }
                println!("Queued {} of {env} (job #{}); following its log.", job.title(), job.id);
                let job = follow(&engine, job.id).await?;
                outcome(&job)
            }
        }
    }
    .await;
    engine.db().close().await;
    result
}

/// `prod/nightly` → (`prod`, `nightly`); `nightly` → the one environment that has it.
fn resolve(engine: &Engine, name: &str) -> anyhow::Result<(String, String)> {
    if let Some((env, schedule)) = name.split_once('/') {
        return Ok((env.to_string(), schedule.to_string()));
    }
    let owners: Vec<&str> = engine
        .config()
        .environments
        .iter()
        .filter(|env| env.schedules.contains_key(name))
        .map(|env| env.name.as_str())
        .collect();
    match owners.as_slice() {
        [env] => Ok((env.to_string(), name.to_string())),
        [] => Err(anyhow!("there is no schedule \"{name}\" (see `steward schedule list`)")),
        many => Err(anyhow!(
            "\"{name}\" is a schedule of {}: say which, e.g. {}/{name}",
            many.join(", "),
            many[0]
        )),
    }
}

async fn list(engine: &Engine, env: Option<&str>) -> anyhow::Result<()> {
    if let Some(env) = env
        && engine.config().environment(env).is_none()
    {
        return Err(explain(
            engine,
            engine::jobs::JobError::UnknownEnvironment(env.to_string()),
        ));
    }
    let schedules = engine.schedules(env).await?;
    if schedules.is_empty() {
        println!("No schedules are configured: add [environments.schedules.NAME] to the configuration.");
        return Ok(());
    }
    for schedule in schedules {
        let tz = engine
            .config()
            .environment(&schedule.environment)
            .map(|e| e.tz())
            .unwrap_or(engine::schedules::Tz::UTC);
        println!(
            "{}/{}  {}  \"{}\" ({})",
            schedule.environment, schedule.name, schedule.what, schedule.cron, schedule.timezone
        );
        match &schedule.paused {
            Some(pause) => println!(
                "  paused by {} at {}: {}",
                pause.by,
                local(pause.at_ms, tz, "%Y-%m-%d %H:%M %Z"),
                pause.reason
            ),
            None => {
                let next: Vec<String> = schedule
                    .next
                    .iter()
                    .map(|&ms| local(ms, tz, "%Y-%m-%d %H:%M:%S %Z"))
                    .collect();
                println!("  next: {}", next.join(", "));
            }
        }
        for slot in &schedule.recent {
            println!(
                "  {}  {}",
                local(slot.fire_at_ms, tz, "%Y-%m-%d %H:%M:%S"),
                slot.summary(tz)
            );
        }
    }
    Ok(())
}

pub(super) async fn retention(config: Config, command: RetentionCommand) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = match command {
        RetentionCommand::Preview { env } => preview(&engine, &env).await,
    };
    engine.db().close().await;
    result
}

async fn preview(engine: &Engine, env: &str) -> anyhow::Result<()> {
    if engine.config().environment(env).is_none() {
        return Err(explain(
            engine,
            engine::jobs::JobError::UnknownEnvironment(env.to_string()),
        ));
    }
    let preview = engine.retention_preview(env).await?;
    if preview.rules.is_empty() {
        println!("{env} has no retention rules ([environments.retention]): every backup is kept.");
    } else {
        println!("Retention of {env}:");
        for rule in &preview.rules {
            println!("  - {rule}");
        }
    }
    println!();
    println!("{:<26} {:<20} {:>9}  DECISION", "ID", "TAKEN", "SIZE");
    for (backup, verdict) in &preview.backups {
        println!(
            "{:<26} {:<20} {:>9}  {verdict}",
            backup.id,
            app::format::utc(backup.created_at_ms),
            human_bytes(backup.total_size)
        );
    }
    let removals = preview.removals().count();
    println!();
    println!(
        "{} kept, {removals} to remove ({} freed). Apply with `steward prune {env}`.",
        preview.backups.len() - removals,
        human_bytes(preview.reclaimed())
    );
    Ok(())
}

/// `steward prune ENV [--dry-run]`: queues the prune job and follows it.
pub(super) async fn prune(config: Config, env: &str, dry_run: bool) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = async {
        if engine.config().environment(env).is_none() {
            bail!(explain(
                &engine,
                engine::jobs::JobError::UnknownEnvironment(env.to_string())
            ));
        }
        let job = engine
            .request_prune(&Actor::cli(), env, dry_run)
            .await
            .map_err(|e| explain(&engine, e))?;
        println!("Queued {} of {env} (job #{}); following its log.", job.title(), job.id);
        let job = follow(&engine, job.id).await?;
        outcome(&job)
    }
    .await;
    engine.db().close().await;
    result
}
