//! The `command` job kind: run one of an environment's configured actions (a program).
//!
//! The program gets the action's `env` and `secret_env`, plus `STEWARD_JOB_ID`,
//! `STEWARD_ENVIRONMENT`, `STEWARD_ACTION` and `STEWARD_WORKER`; it runs in the action's `workdir`; its output is
//! the job log, with the `secret_env` values masked.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{
    Engine,
    config::Action,
    jobs::{Job, log::JobLog},
    process::{self, Ended, Program},
};

/// The values the log must never show (those that cannot be read are skipped: `run` fails
/// on them).
pub(crate) fn secrets(action: &Action) -> Vec<String> {
    action
        .secret_env
        .values()
        .filter_map(|source| source.read().ok())
        .filter(|secret| !secret.is_empty())
        .collect()
}

/// Runs the action; `Err` carries the one-line reason it failed.
pub(crate) async fn run(
    engine: &Engine,
    job: &Job,
    worker: &str,
    action_name: &str,
    log: &JobLog,
    stop: &CancellationToken,
) -> Result<(), String> {
    let action = engine.config().action(&job.environment, action_name).ok_or_else(|| {
        format!(
            "the action \"{action_name}\" of {} is no longer configured",
            job.environment
        )
    })?;
    let mut env: Vec<(String, String)> = action.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, source) in &action.secret_env {
        let value = source.read().map_err(|why| format!("the secret {key}: {why}"))?;
        env.push((key.clone(), value));
    }
    env.extend([
        ("STEWARD_JOB_ID".to_string(), job.id.to_string()),
        // With the job id, lets a restarted Steward find what a crash left running.
        ("STEWARD_WORKER".to_string(), worker.to_string()),
        ("STEWARD_ENVIRONMENT".to_string(), job.environment.clone()),
        ("STEWARD_ACTION".to_string(), action_name.to_string()),
    ]);
    let program = Program {
        command: action.command.clone(),
        workdir: action.workdir.clone(),
        env,
        timeout: Duration::from_secs(u64::from(action.timeout_seconds)),
        grace: Duration::from_secs(u64::from(engine.config().jobs.cancel_grace_seconds)),
        stdin: None,
    };
    let shown = action.command.join(" ");
    let name = action.command.first().map_or("the program", String::as_str);
    log.info(format!("Running: {shown}")).await;
    match process::run(&program, log, stop).await {
        Err(e) => Err(format!("{name} could not be started: {e}")),
        Ok(Ended::Succeeded) => Ok(()),
        Ok(Ended::Failed(how)) => Err(format!("{name} {how}")),
        Ok(Ended::TimedOut) => Err(format!(
            "{name} did not finish within {} s and was stopped",
            action.timeout_seconds
        )),
        Ok(Ended::Stopped) => Err("Stopped".into()),
    }
}
