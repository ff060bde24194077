//! `steward maintenance ENV on|off --reason "…"`: maintenance mode by hand, with the
//! environment's hooks, audited as the `cli` actor. Refused while a job holds the environment.

use clap::{Args, ValueEnum};
use engine::{Config, accounts::Actor};

use super::open_engine;

#[derive(Debug, Args)]
pub struct MaintenanceArgs {
    /// The environment, e.g. `prod`.
    pub env: String,
    /// `on` runs the environment's `enter` hook, `off` its `leave` hook.
    pub mode: Mode,
    /// Why: kept with the mode and in the audit log.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    On,
    Off,
}

pub(super) async fn maintenance(config: Config, args: MaintenanceArgs) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let on = matches!(args.mode, Mode::On);
    let result = engine
        .switch_maintenance(&Actor::cli(), &args.env, on, &args.reason)
        .await;
    engine.db().close().await;
    let switched = result?;
    for line in &switched.hook_output {
        println!("  {line}");
    }
    match switched.maintenance {
        Some(state) if !state.hook_state.is_null() => {
            println!(
                "{} is in maintenance; the enter hook reported {}",
                args.env, state.hook_state
            );
        }
        Some(_) => println!("{} is in maintenance.", args.env),
        None => println!("{} left maintenance.", args.env),
    }
    Ok(())
}
