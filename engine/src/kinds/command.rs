//! The `command` job kind: run one of an environment's configured actions (a program).
//!
//! The program gets the action's `env` and `secret_env`, plus `STEWARD_JOB_ID`,
//! `STEWARD_ENVIRONMENT`, `STEWARD_ACTION` and `STEWARD_WORKER`; it runs in the action's
//! `workdir`; its output is the job log, with the `secret_env` values masked. The action's
//! `timeout_seconds` is the program's limit; whether the action holds the environment's slot is
//! its `exclusive`.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    Config, Engine,
    config::Environment,
    jobs::{Failure, JobContext, JobError, JobKind, Outcome, Plan},
    process::{self, Ended, Program},
};

/// Run the action `action` of the job's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub action: String,
}

impl JobKind for Command {
    const NAME: &'static str = "command";

    fn title(&self) -> String {
        self.action.clone()
    }

    fn plan<'a>(&'a self, engine: &'a Engine, environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        Box::pin(async move {
            let configured =
                engine
                    .config()
                    .action(&environment.name, &self.action)
                    .ok_or_else(|| JobError::UnknownAction {
                        environment: environment.name.clone(),
                        action: self.action.clone(),
                    })?;
            Ok(Plan {
                exclusive: configured.exclusive,
                steps: vec![configured.label.clone()],
            })
        })
    }

    fn secrets(&self, config: &Config, environment: &str) -> Vec<String> {
        // Secrets that cannot be read are left out here: `run` fails on them.
        config
            .action(environment, &self.action)
            .map(|action| {
                action
                    .secret_env
                    .values()
                    .filter_map(|source| source.read().ok())
                    .filter(|secret| !secret.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { run(ctx, &self.action).await.into() })
    }
}

async fn run(ctx: &JobContext<'_>, action_name: &str) -> Result<(), Failure> {
    let job = ctx.job;
    let action = ctx
        .engine
        .config()
        .action(&job.environment, action_name)
        .ok_or_else(|| {
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
    env.extend(ctx.tool_env().iter().cloned());
    env.extend([
        ("STEWARD_ENVIRONMENT".to_string(), job.environment.clone()),
        ("STEWARD_ACTION".to_string(), action_name.to_string()),
    ]);
    let program = Program {
        command: action.command.clone(),
        workdir: action.workdir.clone(),
        env,
        timeout: Duration::from_secs(u64::from(action.timeout_seconds)),
        grace: ctx.grace(),
        stdin: None,
    };
    let shown = action.command.join(" ");
    let name = action.command.first().map_or("the program", String::as_str);
    ctx.log.info(format!("Running: {shown}")).await;
    match process::run(&program, ctx.log, ctx.stop).await {
        Err(e) => Err(format!("{name} could not be started: {e}").into()),
        Ok(Ended::Succeeded) => Ok(()),
        Ok(Ended::Failed(how)) => Err(format!("{name} {how}").into()),
        Ok(Ended::TimedOut) => Err(format!(
            "{name} did not finish within {} s and was stopped",
            action.timeout_seconds
        )
        .into()),
        Ok(Ended::Stopped) => Err(Failure::Stopped),
    }
}
