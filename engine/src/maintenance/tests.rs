//! Maintenance mode with real hook scripts and a real HTTP endpoint.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
};

use super::*;
use crate::{
    Config,
    config::{Environment, MaintenanceConfig},
    db::Db,
    jobs::{JobError, JobRequest, JobSpec, JobState},
    testing::{log_text, pid_in, processes_in_group, wait_until_finished},
};

fn script(body: &str) -> Hook {
    Hook::Command {
        command: vec!["sh".into(), "-c".into(), body.into()],
        env: BTreeMap::new(),
        secret_env: BTreeMap::new(),
        timeout_seconds: 30,
    }
}

/// `shop`: hooks that stop and start "services", recording each call in `calls`; `plain`: no
/// hooks; `broken`: an enter hook that fails; `stuck`: an enter hook that ignores SIGTERM and
/// sleeps for ten minutes, having written its process id beside `calls`.
fn engine(db: &Db, calls: &Path) -> Engine {
    let stuck_pid = calls.with_file_name("stuck.pid");
    let calls = calls.display();
    let environment = |name: &str, maintenance: MaintenanceConfig| Environment {
        name: name.into(),
        label: name.into(),
        colour: "#1f6feb".into(),
        production: false,
        actions: [(
            "slow".to_string(),
            crate::config::Action {
                label: "Slow".into(),
                command: vec!["sleep".into(), "600".into()],
                workdir: None,
                env: BTreeMap::new(),
                secret_env: BTreeMap::new(),
                timeout_seconds: 600,
                exclusive: true,
            },
        )]
        .into(),
        resources: BTreeMap::new(),
        facts: BTreeMap::new(),
        backup_expected_within_hours: None,
        maintenance,
        smoke_checks: BTreeMap::new(),
        ..Default::default()
    };
    let shop = MaintenanceConfig {
        enter: Some(script(&format!(
            "echo \"enter $STEWARD_ENVIRONMENT\" >> '{calls}'; echo 'stopping web and worker' >&2; echo '{{\"stopped\": [\"web\", \"worker\"]}}'"
        ))),
        leave: Some(script(&format!(
            "echo \"leave $STEWARD_MAINTENANCE_STATE\" >> '{calls}'"
        ))),
        leave_on_restore_failure: false,
    };
    let broken = MaintenanceConfig {
        enter: Some(script("echo 'systemctl: unit web not found' >&2; exit 5")),
        leave: None,
        leave_on_restore_failure: false,
    };
    let stuck = MaintenanceConfig {
        enter: Some(script(&format!(
            "echo $$ > '{}'; trap '' TERM; sleep 600",
            stuck_pid.display()
        ))),
        leave: None,
        leave_on_restore_failure: false,
    };
    let config = Config {
        environments: vec![
            environment("shop", shop),
            environment("plain", MaintenanceConfig::default()),
            environment("broken", broken),
            environment("stuck", stuck),
        ],
        jobs: crate::config::JobsConfig {
            cancel_grace_seconds: 1,
            ..Default::default()
        },
        ..Config::default()
    };
    Engine::new(config, db.clone())
}

fn admin() -> Actor {
    Actor {
        username: Some("alice".into()),
        client_ip: Some("10.0.0.7".into()),
    }
}

/// Queues a switch and waits for its job to end.
async fn switch(engine: &Engine, environment: &str, on: bool, reason: &str) -> crate::jobs::Job {
    let job = engine
        .switch_maintenance(&admin(), environment, on, reason)
        .await
        .unwrap();
    wait_until_finished(engine, job.id).await
}

crate::db_tests! {
    async fn enter_keeps_what_the_hook_reported_and_leave_gets_it_back(db) {
        let dir = tempfile::tempdir().unwrap();
        let calls = dir.path().join("calls");
        let engine = engine(db, &calls);
        let workers = engine.start_workers().await.unwrap();
        let on = switch(&engine, "shop", true, "disk replacement").await;
        assert_eq!(on.state, JobState::Succeeded, "{:?}", on.error);
        assert_eq!((on.kind.as_str(), on.title()), ("maintenance", format!("enter maintenance #{}", on.id)));
        let state = engine.maintenance("shop").await.unwrap().expect("in maintenance");
        assert_eq!(state.hook_state, json!({ "stopped": ["web", "worker"] }));
        assert_eq!((state.entered_by.as_str(), state.reason.as_str()), ("alice", "disk replacement"));
        // What the hook printed is the job's log.
        let log = log_text(&engine, on.id).await;
        assert!(log.contains("stopping web and worker"), "{log}");

        let again = engine.switch_maintenance(&admin(), "shop", true, "twice").await.unwrap_err();
        assert!(again.to_string().starts_with("shop is already in maintenance (since "), "{again}");

        let off = switch(&engine, "shop", false, "disk replaced").await;
        assert_eq!(off.state, JobState::Succeeded, "{:?}", off.error);
        assert!(engine.maintenance("shop").await.unwrap().is_none());
        let recorded = std::fs::read_to_string(&calls).unwrap();
        assert_eq!(recorded, "enter shop\nleave {\"stopped\":[\"web\",\"worker\"]}\n");
        let not_on = engine.switch_maintenance(&admin(), "shop", false, "again").await.unwrap_err();
        assert_eq!(not_on.to_string(), "shop is not in maintenance");

        let audit: Vec<(String, Outcome)> = audit::recent(db.pool(), None, 100).await.unwrap().into_iter().map(|e| (e.action, e.outcome)).collect();
        assert!(audit.contains(&("maintenance.on".to_string(), Outcome::Ok)), "{audit:?}");
        assert!(audit.contains(&("maintenance.off".to_string(), Outcome::Ok)), "{audit:?}");
        workers.shutdown(std::time::Duration::from_secs(5)).await;
    }

    async fn without_hooks_the_mode_is_recorded_and_a_failing_hook_changes_nothing(db) {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &dir.path().join("calls"));
        let workers = engine.start_workers().await.unwrap();
        assert_eq!(switch(&engine, "plain", true, "upgrade").await.state, JobState::Succeeded);
        assert_eq!(engine.maintenance("plain").await.unwrap().unwrap().hook_state, Value::Null);
        assert_eq!(switch(&engine, "plain", false, "done").await.state, JobState::Succeeded);

        let failed = switch(&engine, "broken", true, "upgrade").await;
        assert_eq!(failed.state, JobState::Failed);
        let error = failed.error.unwrap_or_default();
        assert!(error.contains("exited with status 5: systemctl: unit web not found"), "{error}");
        assert!(error.contains("broken may be partly in maintenance"), "{error}");
        assert!(engine.maintenance("broken").await.unwrap().is_none());

        let no_reason = engine.switch_maintenance(&admin(), "plain", true, "  ").await.unwrap_err();
        assert!(matches!(no_reason, JobError::ReasonRequired(_)), "{no_reason}");
        let unknown = engine.switch_maintenance(&admin(), "nope", true, "x").await.unwrap_err();
        assert_eq!(unknown.to_string(), "there is no environment \"nope\"");
        workers.shutdown(std::time::Duration::from_secs(5)).await;
    }

    async fn a_switch_by_hand_waits_for_the_environments_job(db) {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &dir.path().join("calls"));
        let job = engine
            .request_job(&admin(), JobRequest {
                environment: "plain".into(),
                spec: JobSpec::new(crate::kinds::command::Command { action: "slow".into() }),
                reason: String::new(),
                parent_id: None,
            })
            .await
            .unwrap();
        let busy = engine.switch_maintenance(&admin(), "plain", true, "now").await.unwrap_err().to_string();
        assert!(busy.starts_with(&format!("plain is busy: slow #{}", job.id)), "{busy}");
        assert!(engine.maintenance("plain").await.unwrap().is_none());
    }

    async fn cancel_reaches_a_hook_that_hangs_and_leaves_no_process(db) {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &dir.path().join("calls"));
        let workers = engine.start_workers().await.unwrap();
        let job = engine.switch_maintenance(&admin(), "stuck", true, "upgrade").await.unwrap();
        let group = pid_in(&dir.path().join("stuck.pid")).await;
        assert!(processes_in_group(group) >= 1, "the hook runs");
        let asked = std::time::Instant::now();
        engine.cancel_job(&admin(), job.id).await.unwrap();
        let ended = wait_until_finished(&engine, job.id).await;
        let took = asked.elapsed();
        assert_eq!(ended.state, JobState::Cancelled, "{:?}", ended.error);
        // SIGTERM is ignored by the hook: SIGKILL after cancel_grace_seconds (1 s).
        assert!(took < std::time::Duration::from_secs(1 + 2), "took {took:?}");
        assert_eq!(processes_in_group(group), 0);
        assert!(engine.maintenance("stuck").await.unwrap().is_none());
        workers.shutdown(std::time::Duration::from_secs(5)).await;
    }

    async fn a_shutdown_stops_a_hanging_hook_and_marks_the_switch_interrupted(db) {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &dir.path().join("calls"));
        let workers = engine.start_workers().await.unwrap();
        let job = engine.switch_maintenance(&admin(), "stuck", true, "upgrade").await.unwrap();
        let group = pid_in(&dir.path().join("stuck.pid")).await;
        let asked = std::time::Instant::now();
        // What SIGTERM to Steward does: stop claiming, let jobs run for the shutdown grace,
        // then stop their programs (cancel grace, then SIGKILL).
        workers.shutdown(std::time::Duration::from_millis(500)).await;
        let took = asked.elapsed();
        assert!(took < std::time::Duration::from_millis(500 + 1000 + 2000), "took {took:?}");
        let ended = engine.job(job.id).await.unwrap().unwrap();
        assert_eq!(ended.state, JobState::Interrupted, "{:?}", ended.error);
        assert_eq!(processes_in_group(group), 0);
    }

    async fn two_admins_switching_at_once_one_runs_the_other_is_told_who_is_in_the_way(db) {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &dir.path().join("calls"));
        let alice = admin();
        let (first, second) = tokio::join!(
            engine.switch_maintenance(&alice, "shop", true, "first"),
            engine.switch_maintenance(&alice, "shop", true, "second"),
        );
        let (ok, refused) = match (first, second) {
            (Ok(job), Err(e)) | (Err(e), Ok(job)) => (job, e),
            other => panic!("one switch must run and one be refused: {other:?}"),
        };
        assert!(
            refused.to_string().starts_with(&format!("shop is busy: enter maintenance #{}", ok.id)),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn an_http_hook_is_posted_the_state_with_its_secret_header() {
    use axum::{Json, Router, http::HeaderMap, routing::post};
    // What the endpoint received: the secret header and the body.
    type Calls = Arc<Mutex<Vec<(Option<String>, Value)>>>;
    let seen: Calls = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/maintenance",
        post(move |headers: HeaderMap, Json(body): Json<Value>| {
            let record = record.clone();
            async move {
                let token = headers.get("x-token").and_then(|v| v.to_str().ok()).map(str::to_string);
                record.lock().unwrap().push((token, body));
                Json(json!({ "paused": ["queue"] }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/maintenance", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0k3n\n").unwrap();
    let hook = Hook::Http {
        url,
        secret_header: Some(crate::config::SecretHeader {
            name: "X-Token".into(),
            value: crate::config::SecretSource::File(token),
        }),
        timeout_seconds: 10,
    };
    let (log, mut lines) = JobLog::channel();
    tokio::spawn(async move { while lines.recv().await.is_some() {} });
    let stop = tokio_util::sync::CancellationToken::new();
    let watch = Watch {
        log: &log,
        stop: &stop,
        grace: Duration::from_secs(2),
        env: &[],
    };
    let state = run_hook(&hook, "shop", "enter", &Value::Null, &watch).await.unwrap();
    assert_eq!(state, json!({ "paused": ["queue"] }));
    run_hook(&hook, "shop", "leave", &state, &watch).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0],
        (
            Some("t0k3n".into()),
            json!({ "environment": "shop", "maintenance": "enter", "state": null })
        )
    );
    assert_eq!(seen[1].1["state"], json!({ "paused": ["queue"] }));
}
