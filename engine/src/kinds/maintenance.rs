//! The `maintenance` job kind: an admin switches an environment into or out of maintenance
//! by hand. The switch is a job like any other: it holds the environment's slot (two admins
//! switching at once: one runs, the other is told who is in the way), returns its id at once,
//! and the hook runs in a worker with a live log — never inside a web request — where Cancel
//! and shutdown reach it.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    Engine,
    accounts::Actor,
    config::Environment,
    jobs::{Failure, Job, JobContext, JobError, JobKind, JobRequest, JobSpec, Outcome, Plan},
};

/// Switch maintenance mode on or off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub on: bool,
}

impl JobKind for Maintenance {
    const NAME: &'static str = "maintenance";

    fn title(&self) -> String {
        if self.on {
            "enter maintenance".to_string()
        } else {
            "leave maintenance".to_string()
        }
    }

    fn plan<'a>(&'a self, engine: &'a Engine, environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        Box::pin(async move {
            let current = engine
                .maintenance(&environment.name)
                .await
                .map_err(|e| JobError::Refused(e.to_string()))?;
            match (self.on, current) {
                (true, Some(current)) => Err(JobError::Refused(format!(
                    "{} is already in maintenance (since {} UTC, by {})",
                    environment.name,
                    crate::text::hh_mm_utc(current.since_ms),
                    current.entered_by
                ))),
                (false, None) => Err(JobError::Refused(format!("{} is not in maintenance", environment.name))),
                _ => Ok(Plan {
                    exclusive: true,
                    steps: vec![
                        if self.on {
                            "Enter maintenance"
                        } else {
                            "Leave maintenance"
                        }
                        .to_string(),
                    ],
                }),
            }
        })
    }

    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { switch(ctx, self.on).await.into() })
    }
}

async fn switch(ctx: &JobContext<'_>, on: bool) -> Result<(), Failure> {
    let (engine, job) = (ctx.engine, ctx.job);
    let actor = job.actor();
    let result = if on {
        engine
            .enter_maintenance(&actor, &job.environment, &job.reason, None, &ctx.watch())
            .await
            .map(drop)
    } else {
        engine
            .leave_maintenance(&actor, &job.environment, &job.reason, &ctx.watch())
            .await
    };
    match result {
        Ok(()) => Ok(()),
        Err(_) if ctx.stop.is_cancelled() => Err(Failure::Stopped),
        Err(e) => Err(e.to_string().into()),
    }
}

impl Engine {
    /// Queues a switch of maintenance mode by hand (admins, `steward maintenance`); refused
    /// without a reason, when the environment already is in that mode, or while a job holds
    /// the environment.
    pub async fn switch_maintenance(
        &self,
        actor: &Actor,
        environment: &str,
        on: bool,
        reason: &str,
    ) -> Result<Job, JobError> {
        if reason.trim().is_empty() {
            return Err(JobError::ReasonRequired(
                "say why the environment goes into or out of maintenance",
            ));
        }
        self.request_job(
            actor,
            JobRequest {
                environment: environment.to_string(),
                spec: JobSpec::new(Maintenance { on }),
                reason: reason.to_string(),
                parent_id: None,
            },
        )
        .await
    }
}
