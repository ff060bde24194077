//! Maintenance mode: an environment that is being worked on (a restore, by hand) tells its
//! users so, through its own `enter` and `leave` hooks (a program or an HTTP endpoint).
//!
//! What `enter` prints as JSON — say, the services it stopped — is kept with the mode and
//! handed to `leave`, so that `leave` brings back exactly what was running. Steward records the
//! mode in the `maintenance` table and shows it on every page of the environment. By hand it
//! is switched by admins (and the CLI) through a `maintenance` job (`crate::kinds::maintenance`),
//! which holds the environment's slot like any job; a restore enters and leaves it itself.
//!
//! Hooks (and smoke checks, which are called the same way) run under the job's [`Watch`]: their
//! output is the job's log, and a cancel or a shutdown stops them within the grace time.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    Engine,
    accounts::Actor,
    audit::{self, Outcome},
    config::Hook,
    db::{
        maintenance::{self as rows, MaintenanceRow},
        now_ms,
    },
    output::{JobLog, Level, mask},
    process::{self, Ended, Program, Watch},
    text::hh_mm_utc,
};

/// An environment in maintenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Maintenance {
    pub environment: String,
    pub since_ms: i64,
    pub entered_by: String,
    pub reason: String,
    /// What the `enter` hook reported (`null` without a hook or output).
    pub hook_state: Value,
    /// The job that entered it (a restore), if any.
    pub job_id: Option<i64>,
}

impl From<MaintenanceRow> for Maintenance {
    fn from(row: MaintenanceRow) -> Self {
        Maintenance {
            hook_state: serde_json::from_str(&row.hook_state).unwrap_or(Value::Null),
            environment: row.environment,
            since_ms: row.since,
            entered_by: row.entered_by,
            reason: row.reason,
            job_id: row.job_id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error("there is no environment \"{0}\"")]
    UnknownEnvironment(String),
    #[error("{environment} is already in maintenance (since {since} UTC, by {by})")]
    AlreadyOn {
        environment: String,
        since: String,
        by: String,
    },
    #[error("{0} is not in maintenance")]
    NotOn(String),
    /// The hook's own words; the environment may be partly switched.
    #[error("{0}")]
    Hook(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl Engine {
    /// The environment's maintenance mode, if it is in it.
    pub async fn maintenance(&self, environment: &str) -> Result<Option<Maintenance>, MaintenanceError> {
        Ok(rows::get(self.db().pool(), environment).await?.map(Maintenance::from))
    }

    /// Runs the `enter` hook and records the mode (with what the hook reported), audited.
    pub(crate) async fn enter_maintenance(
        &self,
        actor: &Actor,
        environment: &str,
        reason: &str,
        job_id: Option<i64>,
        watch: &Watch<'_>,
    ) -> Result<Maintenance, MaintenanceError> {
        let config = self
            .config()
            .environment(environment)
            .ok_or_else(|| MaintenanceError::UnknownEnvironment(environment.to_string()))?;
        if let Some(current) = self.maintenance(environment).await? {
            return Err(MaintenanceError::AlreadyOn {
                environment: environment.to_string(),
                since: hh_mm_utc(current.since_ms),
                by: current.entered_by,
            });
        }
        let hook_state = match &config.maintenance.enter {
            None => Value::Null,
            Some(hook) => match run_hook(hook, environment, "enter", &Value::Null, watch).await {
                Ok(state) => state,
                Err(why) => {
                    let message = format!(
                        "entering maintenance failed: {why} — {environment} may be partly in maintenance; check it"
                    );
                    self.audit_switch(
                        actor,
                        environment,
                        "maintenance.on",
                        Outcome::Failed,
                        reason,
                        json!({ "error": message }),
                    )
                    .await?;
                    return Err(MaintenanceError::Hook(message));
                }
            },
        };
        let row = MaintenanceRow {
            environment: environment.to_string(),
            since: now_ms(),
            entered_by: actor.username.clone().unwrap_or_else(|| "steward".into()),
            reason: reason.to_string(),
            hook_state: hook_state.to_string(),
            job_id,
        };
        let mut tx = self.db().begin_write().await?;
        rows::insert(&mut *tx, &row).await?;
        audit::record(
            &mut *tx,
            &actor
                .event("maintenance.on", Some(environment), Outcome::Ok)
                .with_detail(json!({ "reason": reason, "hook_state": hook_state, "job": job_id })),
        )
        .await?;
        tx.commit().await?;
        watch.log.info(format!("{environment} is in maintenance.")).await;
        Ok(Maintenance::from(row))
    }

    /// Runs the `leave` hook with what `enter` reported and ends the mode, audited. When the
    /// hook fails the environment stays in maintenance.
    pub(crate) async fn leave_maintenance(
        &self,
        actor: &Actor,
        environment: &str,
        reason: &str,
        watch: &Watch<'_>,
    ) -> Result<(), MaintenanceError> {
        let config = self
            .config()
            .environment(environment)
            .ok_or_else(|| MaintenanceError::UnknownEnvironment(environment.to_string()))?;
        let current = self
            .maintenance(environment)
            .await?
            .ok_or_else(|| MaintenanceError::NotOn(environment.to_string()))?;
        if let Some(hook) = &config.maintenance.leave
            && let Err(why) = run_hook(hook, environment, "leave", &current.hook_state, watch).await
        {
            let message = format!("leaving maintenance failed: {why} — {environment} stays in maintenance");
            self.audit_switch(
                actor,
                environment,
                "maintenance.off",
                Outcome::Failed,
                reason,
                json!({ "error": message }),
            )
            .await?;
            return Err(MaintenanceError::Hook(message));
        }
        let mut tx = self.db().begin_write().await?;
        rows::delete(&mut *tx, environment).await?;
        audit::record(
            &mut *tx,
            &actor
                .event("maintenance.off", Some(environment), Outcome::Ok)
                .with_detail(json!({ "reason": reason, "hook_state": current.hook_state })),
        )
        .await?;
        tx.commit().await?;
        watch.log.info(format!("{environment} left maintenance.")).await;
        Ok(())
    }

    async fn audit_switch(
        &self,
        actor: &Actor,
        environment: &str,
        action: &str,
        outcome: Outcome,
        reason: &str,
        mut detail: Value,
    ) -> Result<(), MaintenanceError> {
        detail["reason"] = json!(reason);
        audit::record(
            self.db().pool(),
            &actor.event(action, Some(environment), outcome).with_detail(detail),
        )
        .await?;
        Ok(())
    }
}

/// Calls a maintenance hook with the state `enter` reported; returns what it reported.
async fn run_hook(
    hook: &Hook,
    environment: &str,
    which: &str,
    state: &Value,
    watch: &Watch<'_>,
) -> Result<Value, String> {
    let call = HookCall {
        what: format!("the {which} hook"),
        vars: vec![
            ("STEWARD_ENVIRONMENT".to_string(), environment.to_string()),
            ("STEWARD_MAINTENANCE".to_string(), which.to_string()),
            ("STEWARD_MAINTENANCE_STATE".to_string(), state.to_string()),
        ],
        body: Some(json!({ "environment": environment, "maintenance": which, "state": state })),
    };
    call_hook(hook, &call, watch).await
}

/// How a hook is called: what messages call it, the variables a program gets, and the JSON
/// body an HTTP hook is POSTed (`None`: a GET, as smoke checks are).
pub(crate) struct HookCall {
    /// "the enter hook", "the smoke check home".
    pub what: String,
    pub vars: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// Calls a hook; returns what it reported (its standard output or answer, as JSON when it is
/// JSON, else as a string; `null` when empty), or why it failed. A stop (cancel, shutdown)
/// ends it: a program gets SIGTERM, then SIGKILL after the grace time; a request is dropped.
pub(crate) async fn call_hook(hook: &Hook, call: &HookCall, watch: &Watch<'_>) -> Result<Value, String> {
    let what = &call.what;
    let log = watch.log;
    match hook {
        Hook::Command {
            command,
            env,
            secret_env,
            timeout_seconds,
        } => {
            let name = command.first().map_or("the hook", String::as_str);
            let mut vars: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let mut secrets = Vec::new();
            for (key, source) in secret_env {
                let value = source.read().map_err(|why| format!("{what}'s secret {key}: {why}"))?;
                secrets.push(value.clone());
                vars.push((key.clone(), value));
            }
            vars.extend(call.vars.iter().cloned());
            vars.extend(watch.env.iter().cloned());
            let program = Program {
                command: command.clone(),
                workdir: None,
                env: vars,
                timeout: Duration::from_secs(u64::from(*timeout_seconds)),
                grace: watch.grace,
                stdin: None,
            };
            log.info(format!("Running {what} {name}")).await;
            // The hook's lines go to the log (secrets masked) and its standard output is kept.
            let (relay, mut lines) = JobLog::channel();
            let target = log.clone();
            let forward = tokio::spawn(async move {
                let (mut stdout, mut last_stderr) = (Vec::new(), None);
                while let Some((level, line)) = lines.recv().await {
                    let line = mask(&line, &secrets);
                    match level {
                        Level::Stdout => stdout.push(line.clone()),
                        Level::Stderr if !line.trim().is_empty() => last_stderr = Some(line.clone()),
                        _ => {}
                    }
                    target.line(level, line).await;
                }
                (stdout, last_stderr)
            });
            let ended = process::run(&program, &relay, watch.stop).await;
            drop(relay);
            let (stdout, last_stderr) = forward.await.unwrap_or_default();
            let last = last_stderr.map(|l| format!(": {l}")).unwrap_or_default();
            match ended {
                Ok(Ended::Succeeded) => Ok(reported(&stdout.join("\n"))),
                Ok(Ended::Failed(how)) => Err(format!("{what} {name} {how}{last}")),
                Ok(Ended::TimedOut) => Err(format!(
                    "{what} {name} did not finish within {timeout_seconds} s and was stopped"
                )),
                Ok(Ended::Stopped) => Err(format!("{what} {name} was stopped")),
                Err(e) => Err(format!("{what} {name} could not be started: {e}")),
            }
        }
        Hook::Http {
            url,
            secret_header,
            timeout_seconds,
        } => {
            // Shown without credentials and query: either may hold a token.
            let shown =
                crate::http_client::Endpoint::parse(url).map_or_else(|_| "(an invalid URL)".into(), |e| e.shown());
            log.info(format!("Calling {what} {shown}")).await;
            let timeout = Duration::from_secs(u64::from(*timeout_seconds));
            tokio::select! {
                answer = crate::http_client::call_hook(url, secret_header.as_ref(), call.body.as_ref(), timeout) => answer
                    .map(|answer| answer.body)
                    .map_err(|why| format!("{what} {why}")),
                () = watch.stop.cancelled() => Err(format!("{what} {shown} was stopped")),
            }
        }
    }
}

/// A hook's output as the state to keep: JSON as it is, other text as a string.
fn reported(text: &str) -> Value {
    let text = text.trim();
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests;
