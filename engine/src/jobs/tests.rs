use std::{collections::BTreeMap, time::Duration};

use super::*;
use crate::audit::Outcome;
use crate::{
    Config,
    config::{Action, Environment, JobsConfig},
    db::Db,
};

const SECRET: &str = "s3cr3t-t0ken-value";

fn action(label: &str, script: &str) -> Action {
    Action {
        label: label.into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        workdir: None,
        env: BTreeMap::new(),
        secret_env: BTreeMap::new(),
        timeout_seconds: 60,
        exclusive: true,
    }
}

/// An engine over `db` with a `prod` environment and a few actions.
fn engine(db: &Db) -> Engine {
    let mut actions = BTreeMap::new();
    actions.insert(
        "hello".into(),
        action("Say hello", "echo hello; echo ::progress:: 1/2; echo world >&2"),
    );
    actions.insert("slow".into(), action("Sleep", "echo sleeping; sleep 600"));
    actions.insert("fail".into(), action("Fail", "echo trying; exit 3"));
    actions.insert("many".into(), action("Many lines", "seq 1 100000"));
    let mut secret = action("Use a token", "echo \"token is $API_TOKEN\"");
    // SAFETY: the same value every time, in a variable only these tests read.
    unsafe { std::env::set_var("STEWARD_JOBS_TESTS_API_TOKEN", SECRET) };
    secret.secret_env.insert(
        "API_TOKEN".into(),
        crate::config::SecretSource::Env("STEWARD_JOBS_TESTS_API_TOKEN".into()),
    );
    actions.insert("secret".into(), secret);
    let mut check = action("Read-only check", "echo fine");
    check.exclusive = false;
    actions.insert("check".into(), check);
    let mut quick_timeout = action("Times out", "sleep 600");
    quick_timeout.timeout_seconds = 1;
    actions.insert("timeout".into(), quick_timeout);
    let config = Config {
        environments: vec![Environment {
            name: "prod".into(),
            label: "Production".into(),
            colour: "#c62828".into(),
            production: true,
            actions,
            resources: Default::default(),
            facts: Default::default(),
            backup_expected_within_hours: None,
            maintenance: Default::default(),
            smoke_checks: Default::default(),
            ..Default::default()
        }],
        jobs: JobsConfig {
            workers: 2,
            // The default: on a busy test machine a 3-s lease ran out while 100,000 log lines
            // were being written (the reaper then interrupted a healthy job). Crash tests set
            // expired leases directly.
            lease_seconds: 30,
            cancel_grace_seconds: 1,
            shutdown_grace_seconds: 1,
        },
        ..Config::default()
    };
    Engine::new(config, db.clone())
}

fn alice() -> Actor {
    Actor {
        username: Some("alice".into()),
        client_ip: Some("10.0.0.7".into()),
    }
}

fn command(action: &str) -> JobRequest {
    JobRequest {
        environment: "prod".into(),
        spec: JobSpec::new(crate::kinds::command::Command { action: action.into() }),
        reason: format!("testing {action}"),
        parent_id: None,
    }
}

/// Waits until job `id` is in `state` (20 s at most).
async fn wait_for(engine: &Engine, id: i64, state: JobState) -> Job {
    for _ in 0..400 {
        let job = engine.job(id).await.unwrap().unwrap();
        if job.state == state {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job #{id} never became {state}: {:?}", engine.job(id).await.unwrap());
}

async fn log_text(engine: &Engine, id: i64) -> String {
    let lines = engine.job_log(id, 0, 1_000_000).await.unwrap();
    lines.into_iter().map(|l| l.line).collect::<Vec<_>>().join("\n")
}

async fn audit_actions(db: &Db) -> Vec<(String, Outcome)> {
    audit::recent(db.pool(), None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.outcome))
        .collect()
}

/// Fifty requests at once for the same environment: one is queued, forty-nine refused.
async fn race(engines: &[Engine]) {
    let requests = (0..50).map(|i| {
        let engine = engines[i % engines.len()].clone();
        tokio::spawn(async move { engine.request_job(&alice(), command("slow")).await })
    });
    let results: Vec<_> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let accepted: Vec<&Job> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(accepted.len(), 1, "exactly one accepted: {results:?}");
    let winner = accepted[0].id;
    for result in &results {
        match result {
            Ok(_) => {}
            Err(JobError::Busy(busy)) => {
                assert_eq!(busy.job_id, winner);
                let message = busy.to_string();
                assert!(
                    message.starts_with(&format!("prod is busy: slow #{winner} requested by alice at ")),
                    "{message}"
                );
                assert!(message.ends_with("— try again when it ends"), "{message}");
            }
            Err(other) => panic!("expected a busy refusal, got {other}"),
        }
    }
    let refused = audit_actions(engines[0].db())
        .await
        .into_iter()
        .filter(|(action, outcome)| action == "job.request" && *outcome == Outcome::Refused)
        .count();
    assert_eq!(refused, 49);
}

crate::db_tests! {
    async fn fifty_racing_requests_queue_exactly_one(db) {
        race(&[engine(db)]).await;
    }

    async fn read_only_jobs_do_not_take_the_slot(db) {
        let engine = engine(db);
        engine.request_job(&alice(), command("slow")).await.unwrap();
        let check = engine.request_job(&alice(), command("check")).await.unwrap();
        assert!(!check.exclusive);
        assert!(matches!(engine.request_job(&alice(), command("hello")).await, Err(JobError::Busy(_))));
    }

    async fn unknown_environments_and_actions_are_refused_and_nothing_is_queued(db) {
        let engine = engine(db);
        let mut request = command("hello");
        request.environment = "staging".into();
        assert!(matches!(engine.request_job(&alice(), request).await, Err(JobError::UnknownEnvironment(_))));
        assert!(matches!(
            engine.request_job(&alice(), command("format-disk")).await,
            Err(JobError::UnknownAction { .. })
        ));
        let mut long = command("hello");
        long.reason = "x".repeat(MAX_REASON_CHARS + 1);
        assert!(matches!(engine.request_job(&alice(), long).await, Err(JobError::ReasonTooLong(_))));
        assert!(engine.jobs(&JobFilter::default(), None, 10).await.unwrap().is_empty());
    }

    async fn a_worker_runs_a_job_to_success_with_its_log_and_progress(db) {
        let engine = engine(db);
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_job(&alice(), command("hello")).await.unwrap();
        let done = wait_for(&engine, job.id, JobState::Succeeded).await;
        assert_eq!(done.steps_done, 1);
        assert_eq!(done.progress, Some((1, 2)));
        assert!(done.started_at_ms.is_some() && done.finished_at_ms.is_some());
        let lines = engine.job_log(job.id, 0, 100).await.unwrap();
        assert!(lines.iter().any(|l| l.line == "hello" && l.level == log::Level::Stdout));
        assert!(lines.iter().any(|l| l.line == "world" && l.level == log::Level::Stderr));
        assert!(!lines.iter().any(|l| l.level == log::Level::Stdout && l.line.contains("::progress::")));
        assert!(lines.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(audit_actions(db).await.contains(&("job.finish".into(), Outcome::Ok)));
        workers.shutdown(Duration::from_secs(5)).await;
    }

    async fn a_failing_program_fails_the_job_with_its_exit_status(db) {
        let engine = engine(db);
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_job(&alice(), command("fail")).await.unwrap();
        let failed = wait_for(&engine, job.id, JobState::Failed).await;
        assert_eq!(failed.error.as_deref(), Some("sh exited with status 3."));
        // The slot is free again.
        engine.request_job(&alice(), command("hello")).await.unwrap();
        workers.shutdown(Duration::from_secs(5)).await;
    }

    async fn a_program_past_its_timeout_is_stopped_and_fails(db) {
        let engine = engine(db);
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_job(&alice(), command("timeout")).await.unwrap();
        let failed = wait_for(&engine, job.id, JobState::Failed).await;
        assert!(failed.error.as_deref().unwrap_or_default().contains("did not finish within 1 s"), "{failed:?}");
        workers.shutdown(Duration::from_secs(5)).await;
    }

    async fn secrets_never_reach_the_log(db) {
        let engine = engine(db);
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_job(&alice(), command("secret")).await.unwrap();
        wait_for(&engine, job.id, JobState::Succeeded).await;
        let text = log_text(&engine, job.id).await;
        assert!(text.contains("token is ***"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
        workers.shutdown(Duration::from_secs(5)).await;
    }

    async fn cancelling_a_running_job_stops_it_and_says_who(db) {
        let engine = engine(db);
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_job(&alice(), command("slow")).await.unwrap();
        wait_for(&engine, job.id, JobState::Running).await;
        engine.cancel_job(&alice(), job.id).await.unwrap();
        let cancelled = wait_for(&engine, job.id, JobState::Cancelled).await;
        assert_eq!(cancelled.error.as_deref(), Some("Cancelled by alice."));
        assert!(log_text(&engine, job.id).await.contains("Cancelled by alice."));
        assert!(audit_actions(db).await.contains(&("job.cancel".into(), Outcome::Ok)));
        // A finished job cannot be cancelled again.
        assert!(matches!(engine.cancel_job(&alice(), job.id).await, Err(JobError::WrongState { .. })));
        workers.shutdown(Duration::from_secs(5)).await;
    }

    async fn a_queued_job_is_cancelled_at_once_and_can_be_retried(db) {
        let engine = engine(db);
        let job = engine.request_job(&alice(), command("hello")).await.unwrap();
        engine.cancel_job(&alice(), job.id).await.unwrap();
        let cancelled = engine.job(job.id).await.unwrap().unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        let retry = engine.retry_job(&alice(), job.id, "").await.unwrap();
        assert_eq!(retry.retry_of, Some(job.id));
        assert_eq!(retry.attempt, 2);
        assert_eq!(retry.reason, format!("Retry of #{}", job.id));
        assert!(audit_actions(db).await.contains(&("job.retry".into(), Outcome::Ok)));
        // Once is enough: the retry is the job to follow now.
        assert!(matches!(
            engine.retry_job(&alice(), job.id, "").await,
            Err(JobError::AlreadyRetried { retry: r, .. }) if r == retry.id
        ));
        // A queued job is not retryable.
        assert!(matches!(engine.retry_job(&alice(), retry.id, "").await, Err(JobError::WrongState { .. })));
    }

    async fn a_job_whose_steward_died_is_interrupted_and_retried_as_a_linked_job(db) {
        let engine = engine(db);
        let job = engine.request_job(&alice(), command("hello")).await.unwrap();
        // A worker of a Steward that then died: it claimed the job and never renewed the lease.
        let now = now_ms();
        let mut tx = db.begin_write().await.unwrap();
        rows::claim(&mut *tx, db.backend(), &["command"], "dead-worker", now, now + 10).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        assert_eq!(engine.interrupt_expired(now + 1000).await.unwrap(), 1);

        let interrupted = engine.job(job.id).await.unwrap().unwrap();
        assert_eq!(interrupted.state, JobState::Interrupted);
        assert_eq!(engine.interrupted_jobs("prod").await.unwrap().len(), 1, "the banner shows");
        assert!(log_text(&engine, job.id).await.contains("Steward stopped while this job was running"));

        let workers = engine.start_workers().await.unwrap();
        let retry = engine.retry_job(&alice(), job.id, "after the crash").await.unwrap();
        assert_eq!(retry.retry_of, Some(job.id));
        wait_for(&engine, retry.id, JobState::Succeeded).await;
        assert!(engine.interrupted_jobs("prod").await.unwrap().is_empty(), "a retry clears the banner");
        workers.shutdown(Duration::from_secs(5)).await;
    }

    async fn acknowledging_an_interrupted_job_clears_the_banner(db) {
        let engine = engine(db);
        let job = engine.request_job(&alice(), command("hello")).await.unwrap();
        let now = now_ms();
        let mut tx = db.begin_write().await.unwrap();
        rows::claim(&mut *tx, db.backend(), &["command"], "dead-worker", now, now + 10).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        engine.interrupt_expired(now + 1000).await.unwrap();
        engine.acknowledge_job(&alice(), job.id).await.unwrap();
        assert!(engine.interrupted_jobs("prod").await.unwrap().is_empty());
        assert!(matches!(engine.acknowledge_job(&alice(), job.id).await, Err(JobError::WrongState { .. })));
    }

    async fn shutdown_interrupts_a_job_that_does_not_finish_in_time(db) {
        let engine = engine(db);
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_job(&alice(), command("slow")).await.unwrap();
        wait_for(&engine, job.id, JobState::Running).await;
        workers.shutdown(Duration::from_millis(300)).await;
        let job = engine.job(job.id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Interrupted);
        assert!(job.error.unwrap_or_default().contains("shut down"));
    }

    async fn a_hundred_thousand_lines_are_all_stored(db) {
        let engine = engine(db);
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_job(&alice(), command("many")).await.unwrap();
        // Meanwhile another environment's worker is not stalled: a second job runs alongside.
        wait_for(&engine, job.id, JobState::Succeeded).await;
        let (tail, total) = engine.job_log_tail(job.id, 3).await.unwrap();
        assert!(total >= 100_000, "{total}");
        assert!(tail.iter().any(|l| l.line.starts_with("Succeeded after")));
        let stdout: Vec<_> = engine.job_log(job.id, 0, 200_000).await.unwrap()
            .into_iter().filter(|l| l.level == log::Level::Stdout).collect();
        assert_eq!(stdout.len(), 100_000);
        assert_eq!(stdout[99_999].line, "100000");
        workers.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn two_instances_on_one_postgres_still_queue_exactly_one() {
    let Some(test) = crate::testing::TestDb::postgres().await else {
        return;
    };
    let second = Db::connect(&test.url, 4).await.unwrap();
    race(&[engine(&test.db), engine(&second)]).await;
    second.close().await;
    test.cleanup().await;
}

#[tokio::test]
async fn a_job_queued_on_one_postgres_instance_wakes_the_workers_of_another() {
    let Some(test) = crate::testing::TestDb::postgres().await else {
        return;
    };
    let second = Db::connect(&test.url, 4).await.unwrap();
    let web_only = engine(&test.db);
    let worker_instance = engine(&second);
    let workers = worker_instance.start_workers().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // the listener is connected
    let job = web_only.request_job(&alice(), command("hello")).await.unwrap();
    let started = std::time::Instant::now();
    wait_for(&web_only, job.id, JobState::Succeeded).await;
    // Well under the idle re-check (5 s): the notification woke it.
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    workers.shutdown(Duration::from_secs(5)).await;
    second.close().await;
    test.cleanup().await;
}

#[test]
fn busy_messages_name_the_job_in_the_way() {
    let busy = Busy {
        environment: "prod".into(),
        job_id: 41,
        title: "restore #41".into(),
        requested_by: "alice".into(),
        state: JobState::Running,
        since_ms: 1_700_000_000_000 + 10 * 60_000, // 22:23 UTC on that day
    };
    assert_eq!(
        busy.to_string(),
        "prod is busy: restore #41 started by alice at 22:23 UTC — try again when it ends"
    );
}
