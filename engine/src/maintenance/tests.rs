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
    jobs::{JobRequest, JobSpec},
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
/// hooks; `broken`: an enter hook that fails.
fn engine(db: &Db, calls: &Path) -> Engine {
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
    let config = Config {
        environments: vec![
            environment("shop", shop),
            environment("plain", MaintenanceConfig::default()),
            environment("broken", broken),
        ],
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

crate::db_tests! {
    async fn enter_keeps_what_the_hook_reported_and_leave_gets_it_back(db) {
        let dir = tempfile::tempdir().unwrap();
        let calls = dir.path().join("calls");
        let engine = engine(db, &calls);
        let on = engine.switch_maintenance(&admin(), "shop", true, "disk replacement").await.unwrap();
        let state = on.maintenance.expect("in maintenance");
        assert_eq!(state.hook_state, json!({ "stopped": ["web", "worker"] }));
        assert_eq!((state.entered_by.as_str(), state.reason.as_str()), ("alice", "disk replacement"));
        assert!(on.hook_output.iter().any(|l| l == "stopping web and worker"), "{:?}", on.hook_output);
        assert_eq!(engine.maintenance("shop").await.unwrap().unwrap().hook_state, state.hook_state);

        let again = engine.switch_maintenance(&admin(), "shop", true, "twice").await.unwrap_err();
        assert!(again.to_string().starts_with("shop is already in maintenance (since "), "{again}");

        let off = engine.switch_maintenance(&admin(), "shop", false, "disk replaced").await.unwrap();
        assert!(off.maintenance.is_none());
        assert!(engine.maintenance("shop").await.unwrap().is_none());
        let recorded = std::fs::read_to_string(&calls).unwrap();
        assert_eq!(recorded, "enter shop\nleave {\"stopped\":[\"web\",\"worker\"]}\n");
        let not_on = engine.switch_maintenance(&admin(), "shop", false, "again").await.unwrap_err();
        assert_eq!(not_on.to_string(), "shop is not in maintenance");

        let audit: Vec<(String, Outcome)> = audit::recent(db.pool(), None, 100).await.unwrap().into_iter().map(|e| (e.action, e.outcome)).collect();
        assert!(audit.contains(&("maintenance.on".to_string(), Outcome::Ok)), "{audit:?}");
        assert!(audit.contains(&("maintenance.off".to_string(), Outcome::Ok)), "{audit:?}");
    }

    async fn without_hooks_the_mode_is_recorded_and_a_failing_hook_changes_nothing(db) {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &dir.path().join("calls"));
        let on = engine.switch_maintenance(&admin(), "plain", true, "upgrade").await.unwrap();
        assert_eq!(on.maintenance.unwrap().hook_state, Value::Null);
        engine.switch_maintenance(&admin(), "plain", false, "done").await.unwrap();

        let failed = engine.switch_maintenance(&admin(), "broken", true, "upgrade").await.unwrap_err().to_string();
        assert!(failed.contains("exited with status 5: systemctl: unit web not found"), "{failed}");
        assert!(failed.contains("broken may be partly in maintenance"), "{failed}");
        assert!(engine.maintenance("broken").await.unwrap().is_none());

        let no_reason = engine.switch_maintenance(&admin(), "plain", true, "  ").await.unwrap_err();
        assert!(matches!(no_reason, MaintenanceError::ReasonRequired));
        let unknown = engine.switch_maintenance(&admin(), "nope", true, "x").await.unwrap_err();
        assert_eq!(unknown.to_string(), "there is no environment \"nope\"");
    }

    async fn a_switch_by_hand_waits_for_the_environments_job(db) {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &dir.path().join("calls"));
        let job = engine
            .request_job(&admin(), JobRequest {
                environment: "plain".into(),
                spec: JobSpec::Command { action: "slow".into() },
                reason: String::new(),
                parent_id: None,
            })
            .await
            .unwrap();
        let busy = engine.switch_maintenance(&admin(), "plain", true, "now").await.unwrap_err().to_string();
        assert!(busy.starts_with(&format!("plain is busy: slow #{}", job.id)), "{busy}");
        assert!(engine.maintenance("plain").await.unwrap().is_none());
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
    let state = run_hook(&hook, "shop", "enter", &Value::Null, &log).await.unwrap();
    assert_eq!(state, json!({ "paused": ["queue"] }));
    run_hook(&hook, "shop", "leave", &state, &log).await.unwrap();
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
