//! `/metrics` as Prometheus scrapes it, from a real Steward: every line read by a Prometheus
//! text-format parser; the gauges and histograms moving with real backups of a real directory,
//! a real test restore, maintenance mode and the queue, on SQLite and PostgreSQL; the bearer
//! token (read once at start, never shown); and the IP allowlist in front of it all.
//!
//! The `metrics` facade has one recorder per process, shared by every server a test here
//! starts: the tests that read values take [`SERIAL`] so that one server's scrape does not set
//! the queue's gauges from another's database in the middle of a test.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/steward_cli.rs"]
mod steward_cli;

use std::time::{Duration, Instant};

use engine::{
    Engine,
    accounts::Actor,
    config::{AccessConfig, Resource, SecretSource},
    jobs::{JobRequest, JobSpec, JobState, Trigger},
    kinds::maintenance::Maintenance,
    testing::{TestDb, wait_until_finished},
    users::Role,
};
use harness::*;
use prometheus_parse::{LineInfo, Sample, Scrape, Value};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `/metrics` parsed; fails the test unless every line is a comment or a sample the parser
/// reads (the parser itself skips what it cannot read).
fn parse(text: &str) -> Scrape {
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        assert!(
            matches!(LineInfo::parse(line), LineInfo::Sample { .. }),
            "not a Prometheus sample: {line:?}\n{text}"
        );
    }
    Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("Prometheus text format")
}

/// The value of sample `name` with (at least) `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|sample: &&Sample| sample.metric == name && labels.iter().all(|(k, v)| sample.labels.get(k) == Some(v)))
        .map(|sample| match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => panic!("{name} is a summary, not a histogram"),
        })
}

async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let request = plain_client().get(url);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.unwrap()
}

/// Scrapes `/metrics` (200 expected) and parses it.
async fn scrape(server: &Server, token: Option<&str>) -> Scrape {
    let response = get(&format!("{}/metrics", server.base), token).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    parse(&response.text().await.unwrap())
}

fn now_secs() -> f64 {
    engine::db::now_ms() as f64 / 1000.0
}

async fn wait_for(engine: &Engine, id: i64) {
    let job = wait_until_finished(engine, id).await;
    assert_eq!(job.state, JobState::Succeeded, "job #{id}: {:?}", job.error);
}

/// Job-duration observations recorded so far for `kind` ending `outcome`.
fn finished(scrape: &Scrape, kind: &str, outcome: &str) -> f64 {
    value(
        scrape,
        "steward_job_duration_seconds_count",
        &[("kind", kind), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

/// Scrapes until `done` holds (the histogram is recorded a moment after the job reads as
/// finished), for at most 10 s.
async fn scrape_until(server: &Server, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scraped = scrape(server, None).await;
        if done(&scraped) {
            return scraped;
        }
        assert!(Instant::now() < deadline, "no {what} within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Steward on `test` with environment `name` backing up a real directory, workers running.
async fn gauges_move_with_real_backups(test: TestDb, name: &str) {
    let _serial = SERIAL.lock().await;
    let root = tempfile::tempdir().unwrap();
    let site = root.path().join("site");
    std::fs::create_dir_all(site.join("img")).unwrap();
    std::fs::write(site.join("index.html"), "<h1>shop</h1>\n".repeat(200)).unwrap();
    std::fs::write(site.join("img/logo.bin"), vec![42u8; 50_000]).unwrap();
    let mut config = config(&test.url);
    config.data_dir = root.path().join("state");
    let mut environment = environment(name, "Metrics", "#1f6feb", false);
    environment.resources.insert(
        "site".into(),
        Resource::Directory {
            path: site.clone(),
            include: vec![],
            exclude: vec![],
        },
    );
    config.environments.push(environment);
    let server = start(config).await;
    let workers = server.engine.start_workers().await.unwrap();
    server.add_user("operator1", Role::Operator).await;
    let operator = server.client_for("operator1").await;
    let env = [("environment", name)];

    // Never backed up: the timestamps are 0, so "older than 26 h" fires.
    let before = scrape(&server, None).await;
    assert_eq!(
        value(&before, "steward_last_backup_success_timestamp_seconds", &env),
        Some(0.0)
    );
    assert_eq!(
        value(&before, "steward_last_test_restore_success_timestamp_seconds", &env),
        Some(0.0)
    );
    assert_eq!(value(&before, "steward_storage_used_bytes", &env), Some(0.0));
    assert_eq!(value(&before, "steward_backups", &env), Some(0.0));
    assert_eq!(value(&before, "steward_maintenance", &env), Some(0.0));
    assert_eq!(
        value(&before, "steward_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );
    assert_eq!(
        value(&before, "steward_jobs", &[("state", "running"), ("kind", "backup")]),
        Some(0.0)
    );

    // A real backup, started as an operator does over HTTP.
    let mut storage = 0.0;
    let mut last_backup = 0.0;
    for round in 1..=2 {
        let ran_before = finished(&scrape(&server, None).await, "backup", "succeeded");
        let (status, job) = server.call(&operator, "backups/start", &[("environment", name)]).await;
        assert_eq!(status, 200, "{job}");
        wait_for(&server.engine, job["id"].as_i64().unwrap()).await;
        let after = scrape_until(&server, "job-duration observation", |s| {
            finished(s, "backup", "succeeded") > ran_before
        })
        .await;
        assert_eq!(
            finished(&after, "backup", "succeeded"),
            ran_before + 1.0,
            "one backup, one observation"
        );

        let taken = value(&after, "steward_last_backup_success_timestamp_seconds", &env).unwrap();
        assert!((now_secs() - 60.0..=now_secs() + 1.0).contains(&taken), "{taken}");
        assert!(taken >= last_backup);
        last_backup = taken;
        let size = value(&after, "steward_backup_size_bytes", &env).unwrap();
        assert!(size > 0.0, "{size}");
        let used = value(&after, "steward_storage_used_bytes", &env).unwrap();
        assert!(used > storage, "storage used grew: {storage} → {used}");
        assert_eq!(used, storage + size, "storage used is the sum of the backups");
        storage = used;
        assert_eq!(value(&after, "steward_backups", &env), Some(f64::from(round)));
        assert_eq!(
            value(&after, "steward_backup_duration_seconds_count", &env),
            Some(f64::from(round))
        );
        // Something changes for the second backup.
        std::fs::write(site.join("news.html"), "<p>new</p>\n".repeat(500)).unwrap();
    }

    // A real test restore proves the newest backup.
    let newest = engine::db::backups::latest(server.engine.db().pool(), name)
        .await
        .unwrap()
        .unwrap();
    let verified_before = finished(&scrape(&server, None).await, "verify", "succeeded");
    let verify = server.engine.request_verify(&Actor::cli(), &newest.id).await.unwrap();
    wait_for(&server.engine, verify.id).await;
    let after = scrape_until(&server, "verify observation", |s| {
        finished(s, "verify", "succeeded") > verified_before
    })
    .await;
    let proven = value(&after, "steward_last_test_restore_success_timestamp_seconds", &env).unwrap();
    assert!((now_secs() - 60.0..=now_secs() + 1.0).contains(&proven), "{proven}");

    // Maintenance mode, on and off.
    for (on, expected) in [(true, 1.0), (false, 0.0)] {
        let request = JobRequest {
            environment: name.into(),
            spec: JobSpec::new(Maintenance { on }),
            reason: "metrics test".into(),
            parent_id: None,
        };
        let job = server.engine.request_job(&Actor::cli(), request).await.unwrap();
        wait_for(&server.engine, job.id).await;
        let scraped = scrape(&server, None).await;
        assert_eq!(value(&scraped, "steward_maintenance", &env), Some(expected));
    }

    // No workers: a backup waits in the queue, and is counted until it is cancelled.
    workers.shutdown(Duration::from_secs(5)).await;
    let queued = [("state", "queued"), ("kind", "backup")];
    let job = server
        .engine
        .request_backup(&Actor::cli(), name, "", Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(value(&scrape(&server, None).await, "steward_jobs", &queued), Some(1.0));
    server.engine.cancel_job(&Actor::cli(), job.id).await.unwrap();
    assert_eq!(value(&scrape(&server, None).await, "steward_jobs", &queued), Some(0.0));

    test.cleanup().await;
}

#[tokio::test]
async fn gauges_move_with_real_backups_on_sqlite() {
    gauges_move_with_real_backups(sqlite().await, "metrics-sqlite").await;
}

#[tokio::test]
async fn gauges_move_with_real_backups_on_postgres() {
    if let Some(test) = TestDb::postgres().await {
        gauges_move_with_real_backups(test, "metrics-postgres").await;
    }
}

#[tokio::test]
async fn with_a_token_only_its_bearer_may_scrape_and_nobody_signs_in() {
    let _serial = SERIAL.lock().await;
    let test = sqlite().await;
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("metrics-token");
    std::fs::write(&file, "scrape-me-0123\n").unwrap();
    let mut config = config(&test.url);
    config.metrics.token = Some(SecretSource::File(file));
    let server = start(config).await;
    let url = format!("{}/metrics", server.base);

    for token in [None, Some("wrong"), Some("scrape-me-012"), Some("")] {
        let response = get(&url, token).await;
        assert_eq!(response.status(), 401, "token {token:?}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(!response.text().await.unwrap().contains("steward_"));
    }
    let basic = plain_client()
        .get(&url)
        .basic_auth("prometheus", Some("scrape-me-0123"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401, "only a bearer token");

    let response = get(&url, Some("scrape-me-0123")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "a scrape starts no session"
    );
    let scraped = parse(&response.text().await.unwrap());
    assert_eq!(
        value(
            &scraped,
            "steward_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&scraped, "steward_maintenance", &[("environment", "prod")]),
        Some(0.0)
    );
}

#[tokio::test]
async fn outside_the_allowlist_metrics_is_403_token_or_not() {
    let test = sqlite().await;
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("metrics-token");
    std::fs::write(&file, "scrape-me-0123\n").unwrap();
    let mut config = config(&test.url);
    config.metrics.token = Some(SecretSource::File(file));
    config.access = AccessConfig {
        allow: vec!["10.0.0.0/8".parse().unwrap()],
        ..AccessConfig::default()
    };
    let server = start(config).await;
    let url = format!("{}/metrics", server.base);
    for token in [None, Some("scrape-me-0123")] {
        let response = get(&url, token).await;
        assert_eq!(response.status(), 403, "token {token:?}");
        assert_eq!(response.text().await.unwrap(), "403 Forbidden\n");
    }
}

#[tokio::test]
async fn a_token_that_cannot_be_read_stops_the_router_naming_the_key() {
    let test = sqlite().await;
    let secrets = tempfile::tempdir().unwrap();
    let empty = secrets.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    for (source, why) in [
        (SecretSource::File(secrets.path().join("missing")), "cannot read"),
        (SecretSource::File(empty), "is empty"),
    ] {
        let mut config = config(&test.url);
        config.metrics.token = Some(source);
        let engine = Engine::new(config, test.db.clone());
        let Err(e) = server::http::router(engine).await else {
            panic!("the router was built without its token");
        };
        let message = format!("{e:#}");
        assert!(message.contains("metrics.token") && message.contains(why), "{message}");
    }
}

/// `steward serve` as an operator runs it: the token comes from an environment variable.
/// Missing, the server does not start (and prints no first-admin password); set, Prometheus
/// scrapes with it, and the value is in no output.
#[test]
fn the_binary_reads_its_token_at_start_and_never_shows_it() {
    use steward_cli::*;

    // Not `STEWARD_*`: those are configuration keys.
    const VARIABLE: &str = "METRICS_TEST_SCRAPE_TOKEN";
    const TOKEN: &str = "tok-5f2c9a7e-metrics";
    let steward = Steward::new("");
    let mut body = std::fs::read_to_string(&steward.config).unwrap();
    body.push_str(&format!("\n[metrics]\ntoken = {{ env = \"{VARIABLE}\" }}\n"));
    std::fs::write(&steward.config, body).unwrap();

    let mut command = steward.command(&["serve"]);
    command.env_remove(VARIABLE);
    let refused = Proc::spawn(command, "serve (no token)".into()).wait();
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("metrics.token") && refused.stderr.contains(VARIABLE),
        "{refused:?}"
    );
    assert!(!refused.stdout.contains("password:"), "{refused:?}");

    let mut command = steward.command(&["serve"]);
    command.env(VARIABLE, TOKEN).env("RUST_LOG", "info");
    let serve = Serve(Proc::spawn(command, "serve".into()));
    serve.0.wait_for_stderr("job workers started");
    let url = format!("{}/metrics", serve.base());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        assert_eq!(get(&url, None).await.status(), 401);
        assert_eq!(get(&url, Some("not-it")).await.status(), 401);
        let response = get(&url, Some(TOKEN)).await;
        assert_eq!(response.status(), 200);
        let scraped = parse(&response.text().await.unwrap());
        assert_eq!(
            value(
                &scraped,
                "steward_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            Some(1.0)
        );
        // Nothing to back up in `prod`: no age to alert on.
        assert_eq!(
            value(
                &scraped,
                "steward_last_backup_success_timestamp_seconds",
                &[("environment", "prod")]
            ),
            None
        );
        assert!(
            scraped.docs.contains_key("steward_jobs"),
            "described once the recorder is installed"
        );
    });
    assert!(!serve.0.stdout().contains(TOKEN) && !serve.0.stderr().contains(TOKEN));
}
