//! The HTTP client against a real local server that fails, stalls, answers too much and checks
//! credentials; and a failing maintenance hook seen from the outside (error, hook output,
//! audit detail), which must show neither the URL's password nor its token.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    http::{HeaderMap as Headers, StatusCode as Status},
    routing::{get, post},
};
use serde_json::json;

use super::*;
use crate::{
    Config, Engine,
    accounts::Actor,
    config::{Environment, Hook, MaintenanceConfig},
    db::Db,
};

const PASSWORD: &str = "pw";
const TOKEN: &str = "SECRET";

/// What the server saw in `Authorization` headers.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// A server on a free port: `/fail` answers 500 echoing the request's query, `/slow` answers
/// after 5 s, `/huge` 2 MiB, `/ok` 200 with JSON, `/moved` a redirect to `/ok`. Returns
/// `http://user:pw@127.0.0.1:PORT` and what the server saw.
async fn serve() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let remember = move |headers: &Headers| {
        record.lock().unwrap().push(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        );
    };
    let (r1, r2) = (remember.clone(), remember.clone());
    let app = Router::new()
        .route(
            "/fail",
            post(|uri: axum::http::Uri| async move {
                (Status::INTERNAL_SERVER_ERROR, format!("cannot do it for {uri} and pw"))
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/huge",
            post(|| async { "x".repeat(2 * MAX_JSON_BYTES) }).get(|| async { "y".repeat(2 * MAX_JSON_BYTES) }),
        )
        .route(
            "/ok",
            post(move |headers: Headers| async move {
                r1(&headers);
                axum::Json(json!({ "paused": true }))
            })
            .get(move |headers: Headers| async move {
                r2(&headers);
                "fine"
            }),
        )
        .route("/moved", get(|| async { (Status::FOUND, [("location", "/ok")], "") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://user:{PASSWORD}@{address}"), seen)
}

fn assert_hidden(text: &str) {
    assert!(!text.contains(TOKEN), "the token shows in: {text}");
    assert!(!text.contains(PASSWORD), "the password shows in: {text}");
}

#[test]
fn an_endpoint_is_shown_without_credentials_or_query_and_its_secrets_are_known() {
    let endpoint = Endpoint::parse("https://user:p%40ss@host.internal:8443/x/y?token=SECRET&page=1#top").unwrap();
    assert_eq!(endpoint.shown(), "https://host.internal:8443/x/y");
    assert_eq!(format!("{endpoint:?}"), "Endpoint(\"https://host.internal:8443/x/y\")");
    // The password decoded, as it is sent; `page=1` is too short to be a secret.
    assert_eq!(endpoint.secrets(), vec!["p@ss".to_string(), "SECRET".to_string()]);

    let invalid = Endpoint::parse("https://user:pw@ho st/x?token=SECRET").unwrap_err();
    assert!(invalid.starts_with("is not valid: "), "{invalid}");
    assert_hidden(&invalid);
    let ftp = Endpoint::parse("ftp://user:pw@host/x?token=SECRET").unwrap_err();
    assert_eq!(ftp, "must start with http:// or https://, not ftp:");
}

#[tokio::test]
async fn a_failing_hook_shows_neither_the_password_nor_the_token() {
    let (base, _) = serve().await;
    let address = base.split('@').nth(1).unwrap();
    let error = call_hook(
        &format!("{base}/fail?token={TOKEN}"),
        None,
        Some(&json!({})),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    // The server echoed the query and the password: both are masked.
    assert_eq!(
        error,
        format!("http://{address}/fail answered 500 Internal Server Error: cannot do it for /fail?token=*** and ***")
    );

    let refused = call_hook(
        &format!("http://user:{PASSWORD}@127.0.0.1:1/x?token={TOKEN}"),
        None,
        Some(&json!({})),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(
        refused.starts_with("http://127.0.0.1:1/x could not be reached: "),
        "{refused}"
    );
    assert!(refused.to_lowercase().contains("connection refused"), "{refused}");
    assert_hidden(&refused);
}

#[tokio::test]
async fn a_hook_that_does_not_answer_in_time_says_so() {
    let (base, _) = serve().await;
    let address = base.split('@').nth(1).unwrap();
    let started = std::time::Instant::now();
    let error = call_hook(
        &format!("{base}/slow?token={TOKEN}"),
        None,
        Some(&json!({})),
        Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(error, format!("http://{address}/slow did not answer within 1 s"));
}

#[tokio::test]
async fn an_answer_over_the_cap_is_an_error_for_json_and_cut_for_a_page() {
    let (base, _) = serve().await;
    let address = base.split('@').nth(1).unwrap();
    let error = call_hook(
        &format!("{base}/huge?token={TOKEN}"),
        None,
        Some(&json!({})),
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error,
        format!(
            "http://{address}/huge answered 200 OK, but reading the answer failed: the answer is larger than 1 MiB"
        )
    );
    // A smoke check (GET) only has to answer: the page is read up to the cap.
    let answer = call_hook(&format!("{base}/huge"), None, None, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(answer.body.as_str().map(str::len), Some(MAX_JSON_BYTES));
}

#[tokio::test]
async fn credentials_in_a_url_are_sent_as_basic_auth_and_redirects_are_not_followed() {
    let (base, seen) = serve().await;
    let answer = call_hook(&format!("{base}/ok"), None, Some(&json!({})), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.body, json!({ "paused": true }));
    let plain = call_hook(
        &format!("http://{}/ok", base.split('@').nth(1).unwrap()),
        None,
        None,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(plain.body, json!("fine"));
    // base64("user:pw"); no header without credentials.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some("Basic dXNlcjpwdw==".to_string()), None]
    );

    let moved = call_hook(&format!("{base}/moved"), None, None, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        moved.ends_with(
            "/moved answered 302 Found, a redirect, which Steward does not follow: configure the URL it points to"
        ),
        "{moved}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2, "the redirect was not followed");
}

fn engine_with_enter_hook(db: &Db, url: String) -> Engine {
    let environment = Environment {
        name: "shop".into(),
        label: "Shop".into(),
        colour: "#1f6feb".into(),
        production: false,
        actions: BTreeMap::new(),
        resources: BTreeMap::new(),
        facts: BTreeMap::new(),
        backup_expected_within_hours: None,
        maintenance: MaintenanceConfig {
            enter: Some(Hook::Http {
                url,
                secret_header: None,
                timeout_seconds: 5,
            }),
            leave: None,
            leave_on_restore_failure: false,
        },
        smoke_checks: BTreeMap::new(),
        ..Default::default()
    };
    let config = Config {
        environments: vec![environment],
        ..Config::default()
    };
    Engine::new(config, db.clone())
}

crate::db_tests! {
    async fn a_failing_http_hook_keeps_the_urls_secrets_out_of_the_error_the_log_and_the_audit(db) {
        let (base, _) = serve().await;
        let engine = engine_with_enter_hook(db, format!("{base}/fail?token={TOKEN}"));
        let workers = engine.start_workers().await.unwrap();
        let actor = Actor { username: Some("alice".into()), client_ip: None };
        let job = engine.switch_maintenance(&actor, "shop", true, "disk swap").await.unwrap();
        let job = crate::testing::wait_until_finished(&engine, job.id).await;
        assert_eq!(job.state, crate::jobs::JobState::Failed);
        let error = job.error.unwrap_or_default();
        assert!(error.starts_with("entering maintenance failed: the enter hook http://127.0.0.1:"), "{error}");
        assert!(error.contains("/fail answered 500 Internal Server Error"), "{error}");
        assert_hidden(&error);

        let events = crate::audit::recent(db.pool(), None, 10).await.unwrap();
        let failed = events.iter().find(|e| e.action == "maintenance.on").expect("audited");
        let detail = serde_json::to_string(&failed.detail).unwrap();
        assert!(detail.contains("answered 500"), "{detail}");
        assert_hidden(&detail);
        let finished = events.iter().find(|e| e.action == "job.finish").expect("audited");
        assert_hidden(&serde_json::to_string(&finished.detail).unwrap());

        // The job's log (what the browser shows) names the URL without them.
        let logged = crate::testing::log_text(&engine, job.id).await;
        assert!(logged.contains("Calling the enter hook http://127.0.0.1:"), "{logged}");
        assert_hidden(&logged);
        workers.shutdown(Duration::from_secs(5)).await;
    }
}
