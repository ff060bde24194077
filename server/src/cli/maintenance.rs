//! `steward maintenance ENV [on|off --reason "…"]`: maintenance mode by hand, with the
//! environment's hooks, audited as the `cli` actor. The switch is a `maintenance` job that a
//! running `steward serve` takes; its log is printed until it ends. Refused while a job holds
//! the environment.
//! Without `on` or `off` it shows the mode, and the failed restores that left the environment
//! in it (the console's banner), with the command that undoes each.

use clap::{Args, ValueEnum};
use engine::{Config, Engine, accounts::Actor, jobs::JobError};

use super::{
    jobs::{explain, follow, outcome},
    open_engine,
};

#[derive(Debug, Args)]
pub struct MaintenanceArgs {
    /// The environment, e.g. `prod`.
    pub env: String,
    /// `on` runs the environment's `enter` hook, `off` its `leave` hook. Left out: show the
    /// mode.
    pub mode: Option<Mode>,
    /// Why: kept with the mode and in the audit log (required with on|off).
    #[arg(long, requires = "mode", required_if_eq_any = [("mode", "on"), ("mode", "off")])]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    On,
    Off,
}

pub(super) async fn maintenance(config: Config, args: MaintenanceArgs) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = match args.mode {
        None => show(&engine, &args.env).await,
        Some(mode) => switch(&engine, &args.env, mode, args.reason.as_deref().unwrap_or_default()).await,
    };
    engine.db().close().await;
    result
}

async fn switch(engine: &Engine, env: &str, mode: Mode, reason: &str) -> anyhow::Result<()> {
    let on = matches!(mode, Mode::On);
    let job = engine
        .switch_maintenance(&Actor::cli(), env, on, reason)
        .await
        .map_err(|e| explain(engine, e))?;
    println!(
        "Queued {} on {env}; following its log (Ctrl-C stops following, not the switch).",
        job.title()
    );
    let job = follow(engine, job.id).await?;
    outcome(&job)?;
    if let Some(state) = engine.maintenance(env).await?
        && !state.hook_state.is_null()
    {
        println!("The enter hook reported {}", state.hook_state);
    }
    Ok(())
}

async fn show(engine: &Engine, env: &str) -> anyhow::Result<()> {
    if engine.config().environment(env).is_none() {
        return Err(explain(engine, JobError::UnknownEnvironment(env.to_string())));
    }
    match engine.maintenance(env).await? {
        None => println!("{env} is not in maintenance."),
        Some(current) => {
            let entered_by = match current.job_id {
                Some(id) => format!("restore #{id}"),
                None => current.entered_by.clone(),
            };
            println!(
                "{env} is in maintenance since {}, entered by {entered_by}: {}",
                app::format::utc(current.since_ms),
                current.reason
            );
            if !current.hook_state.is_null() {
                println!("  the enter hook reported {}", current.hook_state);
            }
        }
    }
    let failed = engine.failed_restores(env).await?;
    for restore in &failed {
        let job = &restore.job;
        println!(
            "{} {}: {}",
            job.title(),
            job.state,
            job.error.as_deref().unwrap_or("no reason was recorded")
        );
        match &restore.safety_backup {
            Some(_) => println!(
                "  The safety backup {} holds {env} as it was before: `steward restore --undo {} --reason \"…\"` brings it back.",
                restore.safety_backup_id, job.id
            ),
            None => println!(
                "  Nothing was restored (no safety backup was completed): retry it with `steward job retry {}` or dismiss it with `steward job acknowledge {}`.",
                job.id, job.id
            ),
        }
    }
    Ok(())
}
