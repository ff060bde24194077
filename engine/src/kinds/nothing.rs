//! A kind that does nothing, in tests only: it shows what adding a kind takes — this file and
//! one line in [`super::ALL`] — and that the queue runs it like any other.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    Engine,
    config::Environment,
    jobs::{JobContext, JobError, JobKind, Outcome, Plan},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nothing {
    pub say: String,
    /// How long it then waits (until stopped).
    #[serde(default)]
    pub wait_ms: u64,
    /// Its time limit, if any.
    #[serde(default)]
    pub limit_ms: Option<u64>,
}

impl JobKind for Nothing {
    const NAME: &'static str = "nothing";

    fn plan<'a>(&'a self, _engine: &'a Engine, _environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        Box::pin(async {
            Ok(Plan {
                exclusive: false,
                steps: vec!["Say it".to_string()],
            })
        })
    }

    fn timeout(&self, _config: &crate::Config, _environment: &str) -> Option<std::time::Duration> {
        self.limit_ms.map(std::time::Duration::from_millis)
    }

    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            ctx.log.info(self.say.clone()).await;
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(self.wait_ms)) => Outcome::Succeeded,
                () = ctx.stop.cancelled() => Outcome::Stopped,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Config,
        accounts::Actor,
        jobs::{JobRequest, JobSpec, JobState},
        testing::{log_text, wait_until_finished},
    };

    crate::db_tests! {
            async fn a_new_kind_is_queued_claimed_and_run_like_any_other(db) {
                let config = Config {
                    environments: vec![Environment {
                        name: "dev".into(),
                        label: "Dev".into(),
                        colour: "#2e7d32".into(),
                        production: false,
                        actions: Default::default(),
                        resources: Default::default(),
                        facts: Default::default(),
                        backup_expected_within_hours: None,
                        maintenance: Default::default(),
                        smoke_checks: Default::default(),
    ..Default::default()
                    }],
                    ..Config::default()
                };
                let engine = Engine::new(config, db.clone());
                let workers = engine.start_workers().await.unwrap();
                let actor = Actor { username: Some("alice".into()), client_ip: None };
                let spec = JobSpec::new(Nothing { say: "hello from a new kind".into(), wait_ms: 0, limit_ms: None });
                let job = engine
                    .request_job(&actor, JobRequest { environment: "dev".into(), spec, reason: String::new(), parent_id: None })
                    .await
                    .unwrap();
                assert_eq!((job.kind.as_str(), job.steps.clone()), ("nothing", vec!["Say it".to_string()]));
                let ended = wait_until_finished(&engine, job.id).await;
                assert_eq!(ended.state, JobState::Succeeded, "{:?}", ended.error);
                assert!(log_text(&engine, job.id).await.contains("hello from a new kind"));
                // Stored and read back through the registry, typed.
                let said = ended.spec.as_ref().and_then(JobSpec::get::<Nothing>).map(|n| n.say.clone());
                assert_eq!(said.as_deref(), Some("hello from a new kind"));

                // A kind's time limit: the job is stopped when it passes, and fails saying so.
                let spec = JobSpec::new(Nothing { say: "waiting".into(), wait_ms: 60_000, limit_ms: Some(1000) });
                let job = engine
                    .request_job(&actor, JobRequest { environment: "dev".into(), spec, reason: String::new(), parent_id: None })
                    .await
                    .unwrap();
                let started = std::time::Instant::now();
                let ended = wait_until_finished(&engine, job.id).await;
                assert_eq!(ended.state, JobState::Failed);
                assert_eq!(ended.error.as_deref(), Some("It did not finish within 1 s and was stopped."));
                assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
                workers.shutdown(std::time::Duration::from_secs(5)).await;
            }
        }
}
