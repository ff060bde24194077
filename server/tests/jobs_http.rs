//! Jobs over HTTP, against a real server with real workers running real programs: the live
//! log (`/api/jobs/{id}/events`, Server-Sent Events), the download (`/api/jobs/{id}/log.txt`),
//! the job page, and starting an action on a production environment.

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use engine::{
    accounts::Actor,
    config::Action,
    jobs::{JobRequest, JobSpec, JobState},
    kinds::command::Command,
    users::Role,
};
use harness::*;

/// An exclusive action running `command`.
fn action(label: &str, command: Vec<String>, timeout_seconds: u32) -> Action {
    Action {
        label: label.into(),
        command,
        workdir: None,
        env: Default::default(),
        secret_env: Default::default(),
        timeout_seconds,
        exclusive: true,
    }
}

async fn server_with_a_counting_action() -> (Server, engine::testing::TestDb) {
    let test = sqlite().await;
    let mut config = config(&test.url);
    config.environments[0].actions.insert(
        "count".into(),
        action(
            "Count to three",
            vec![
                "sh".into(),
                "-c".into(),
                "for i in 1 2 3; do echo line $i; sleep 0.2; done".into(),
            ],
            60,
        ),
    );
    let server = start(config).await;
    server.add_user("viewer1", Role::Viewer).await;
    (server, test)
}

async fn run_count(server: &Server) -> i64 {
    let request = JobRequest {
        environment: "dev".into(),
        spec: JobSpec::new(Command { action: "count".into() }),
        reason: "feed test".into(),
        parent_id: None,
    };
    server.engine.request_job(&Actor::cli(), request).await.unwrap().id
}

#[tokio::test]
async fn the_event_stream_follows_a_running_job_to_its_end() {
    let (server, _db) = server_with_a_counting_action().await;
    let workers = server.engine.start_workers().await.unwrap();
    let id = run_count(&server).await;

    let viewer = server.client_for("viewer1").await;
    let response = viewer
        .get(format!("{}/api/jobs/{id}/events", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // The stream ends by itself once the job has ended and every line was sent.
    let body = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the stream ends when the job does")
        .unwrap();
    for expected in [
        "event: line",
        "\"line\":\"line 1\"",
        "\"line\":\"line 3\"",
        "event: job",
        "\"status\":\"succeeded\"",
        "event: end",
    ] {
        assert!(body.contains(expected), "missing {expected} in:\n{body}");
    }
    // Lines come before the end, in order.
    let first = body.find("line 1").unwrap();
    let third = body.find("line 3").unwrap();
    assert!(first < third && third < body.find("event: end").unwrap());

    // Resuming after a line sends only what came later.
    let job = server.engine.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    let lines = server.engine.job_log(id, 0, 100).await.unwrap();
    let second = lines.iter().find(|l| l.line == "line 2").unwrap().seq;
    let resumed = viewer
        .get(format!("{}/api/jobs/{id}/events", server.base))
        .header("last-event-id", second.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!resumed.contains("line 1") && !resumed.contains("line 2"), "{resumed}");
    assert!(resumed.contains("line 3"), "{resumed}");
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_log_downloads_as_text() {
    let (server, _db) = server_with_a_counting_action().await;
    let workers = server.engine.start_workers().await.unwrap();
    let id = run_count(&server).await;
    for _ in 0..200 {
        if server.engine.job(id).await.unwrap().unwrap().state.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let viewer = server.client_for("viewer1").await;
    let response = viewer
        .get(format!("{}/api/jobs/{id}/log.txt", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"steward-job-{id}.log\"").as_str()
    );
    let text = response.text().await.unwrap();
    assert!(text.starts_with(&format!("# count #{id} on dev")), "{text}");
    assert!(text.contains("stdout line 2"), "{text}");
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_log_is_for_signed_in_users_only() {
    let (server, _db) = server_with_a_counting_action().await;
    let id = run_count(&server).await;
    let anonymous = cookie_client();
    for path in ["events", "log.txt"] {
        let response = anonymous
            .get(format!("{}/api/jobs/{id}/{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    let viewer = server.client_for("viewer1").await;
    let missing = viewer
        .get(format!("{}/api/jobs/999999/events", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// A program that writes 100,000 lines: the job page still sends only the end of the log, and
/// the download has all of it.
#[tokio::test]
async fn a_huge_log_keeps_the_page_small_and_the_download_whole() {
    let test = sqlite().await;
    let mut config = config(&test.url);
    config.environments[0].actions.insert(
        "many".into(),
        action("Many lines", vec!["seq".into(), "1".into(), "100000".into()], 600),
    );
    let server = start(config).await;
    server.add_user("viewer1", Role::Viewer).await;
    let workers = server.engine.start_workers().await.unwrap();
    let request = JobRequest {
        environment: "dev".into(),
        spec: JobSpec::new(Command { action: "many".into() }),
        reason: String::new(),
        parent_id: None,
    };
    let id = server.engine.request_job(&Actor::cli(), request).await.unwrap().id;
    for _ in 0..1200 {
        if server.engine.job(id).await.unwrap().unwrap().state.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.engine.job(id).await.unwrap().unwrap().state, JobState::Succeeded);

    let viewer = server.client_for("viewer1").await;
    let page = viewer
        .get(format!("{}/jobs/{id}", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">100000<"), "the last line is on the page");
    assert!(!page.contains(">98000<"), "older lines are not");
    assert!(page.contains("earlier lines are in the download"));
    assert!(page.len() < 1_000_000, "page of {} bytes", page.len());

    let download = viewer
        .get(format!("{}/api/jobs/{id}/log.txt", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(download.lines().filter(|l| l.contains(" stdout ")).count(), 100_000);
    workers.shutdown(Duration::from_secs(5)).await;
}

/// A production environment asks for its name before an action runs; nothing is queued without.
#[tokio::test]
async fn a_production_action_needs_the_environment_typed_to_confirm() {
    let test = sqlite().await;
    let mut config = config(&test.url);
    config.environments[1].actions.insert(
        "hello".into(),
        action("Say hello", vec!["echo".into(), "hello".into()], 60),
    );
    let server = start(config).await;
    server.add_user("operator1", Role::Operator).await;
    let operator = server.client_for("operator1").await;
    let args = [("environment", "prod"), ("action", "hello"), ("reason", "check")];

    let (_, body) = server.call(&operator, "jobs/start_command", &args).await;
    assert_eq!(body["Invalid"]["field"], "confirm", "{body}");
    let (_, body) = server
        .call(
            &operator,
            "jobs/start_command",
            &[args[0], args[1], args[2], ("confirm", "dev")],
        )
        .await;
    assert_eq!(body["Invalid"]["field"], "confirm", "{body}");
    assert!(
        server
            .engine
            .jobs(&Default::default(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let (status, body) = server
        .call(
            &operator,
            "jobs/start_command",
            &[args[0], args[1], args[2], ("confirm", "prod")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["environment"], "prod");
    assert_eq!(body["requested_by"], "operator1");
    assert_eq!(body["status"], "queued");

    // A retry on production asks again.
    let id = body["id"].as_i64().unwrap();
    server.engine.cancel_job(&Actor::cli(), id).await.unwrap();
    let id_arg = id.to_string();
    let (_, body) = server.call(&operator, "jobs/retry", &[("id", id_arg.as_str())]).await;
    assert_eq!(body["Invalid"]["field"], "confirm", "{body}");
    let (_, body) = server
        .call(&operator, "jobs/retry", &[("id", id_arg.as_str()), ("confirm", "prod")])
        .await;
    assert_eq!(body["retry_of"], id, "{body}");
}
