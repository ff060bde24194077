//! Deliveries to real receivers started here: an axum server on port 0 standing in for a
//! webhook and for Slack, and Python's aiosmtpd (installed by `scripts/setup.sh` in
//! `.tools/python`) as the SMTP server, whose Maildir is read back. Failures are checked from
//! the outside: the error a person would read, which must hold no secret.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    Router,
    http::{HeaderMap as Headers, StatusCode, Uri},
    routing::post,
};
use serde_json::Value;

use super::*;

const HEADER_SECRET: &str = "hdr-SECRET-4711";
const QUERY_TOKEN: &str = "qry-SECRET-0815";
const SLACK_TOKEN: &str = "XXXXslackTOKENxxxxxxxxxx";
const SMTP_PASSWORD: &str = "smtp-PASSWORD-42";

/// What a receiver saw: each request's headers and body.
type Seen = Arc<Mutex<Vec<(Headers, String)>>>;

/// A receiver on a free port: `/hook` records and answers 204; `/down` answers 503 echoing
/// the request's query and secret header, as a careless proxy might; `/moved` redirects.
async fn receiver() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = Router::new()
        .route(
            "/hook",
            post(move |headers: Headers, body: String| async move {
                record.lock().unwrap().push((headers, body));
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/down",
            post(|uri: Uri, headers: Headers| async move {
                let token = headers
                    .get("x-steward-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("maintenance, come back later ({uri}, token {token})"),
                )
            }),
        )
        .route(
            "/moved",
            post(|| async { (StatusCode::FOUND, [("location", "/hook")], "") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, seen)
}

/// A receiver at `/services/T0001/B0001/<SLACK_TOKEN>`, Slack's URL shape, recording what
/// it gets; any other token is answered 404 `no_service`, as Slack does.
async fn slack_receiver() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/services/T0001/B0001/{token}",
        post(
            move |axum::extract::Path(token): axum::extract::Path<String>, headers: Headers, body: String| async move {
                if token != SLACK_TOKEN {
                    return (StatusCode::NOT_FOUND, "no_service");
                }
                record.lock().unwrap().push((headers, body));
                (StatusCode::OK, "ok")
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, seen)
}

fn message() -> Message {
    Message {
        id: 42,
        kind: "backup_failed".into(),
        environment: Some("prod".into()),
        severity: Severity::Critical,
        recovery: false,
        summary: "prod: backup #12 failed".into(),
        detail: Some("pg_dump: error: connection to server failed\npg_dump: detail: Connection refused".into()),
        url: "http://steward.test:8080/environments/prod/backups/12".into(),
        // 2025-03-01 10:02:03.456 UTC
        at_ms: 1_740_823_323_456,
    }
}

/// A secret in a file of its own (no environment variables: tests run in parallel).
fn secret_file(dir: &Path, name: &str, value: &str) -> SecretSource {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    SecretSource::File(path)
}

fn assert_no_secret(text: &str) {
    for secret in [HEADER_SECRET, QUERY_TOKEN, SLACK_TOKEN, SMTP_PASSWORD] {
        assert!(!text.contains(secret), "a secret shows in: {text}");
    }
}

#[tokio::test]
async fn a_webhook_receives_the_documented_json_and_the_secret_header() {
    let (address, seen) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Webhook {
        url: format!("http://{address}/hook?token={QUERY_TOKEN}"),
        secret_header: Some(SecretHeader {
            name: "X-Steward-Token".into(),
            value: secret_file(dir.path(), "hook-token", HEADER_SECRET),
        }),
    };
    deliver(&target, &message(), Duration::from_secs(5)).await.unwrap();

    let seen = seen.lock().unwrap();
    let [(headers, body)] = seen.as_slice() else {
        panic!("expected one request, got {}", seen.len())
    };
    assert_eq!(headers["x-steward-token"], HEADER_SECRET);
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "id": 42,
            "kind": "backup_failed",
            "environment": "prod",
            "severity": "critical",
            "recovery": false,
            "summary": "prod: backup #12 failed",
            "detail": "pg_dump: error: connection to server failed\npg_dump: detail: Connection refused",
            "url": "http://steward.test:8080/environments/prod/backups/12",
            "at": "2025-03-01T10:02:03.456Z",
            "steward_version": env!("CARGO_PKG_VERSION"),
        })
    );
}

#[tokio::test]
async fn a_webhook_answering_503_is_an_error_naming_status_and_address_without_secrets() {
    let (address, _) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Webhook {
        url: format!("http://user:{SMTP_PASSWORD}@{address}/down?token={QUERY_TOKEN}"),
        secret_header: Some(SecretHeader {
            name: "X-Steward-Token".into(),
            value: secret_file(dir.path(), "hook-token", HEADER_SECRET),
        }),
    };
    let error = deliver(&target, &message(), Duration::from_secs(5)).await.unwrap_err();
    // The receiver echoed the query and the header: both are masked, the URL is shown bare.
    assert_eq!(
        error,
        format!("HTTP 503 from http://{address}/down: maintenance, come back later (/down?token=***, token ***)")
    );
    assert_no_secret(&error);
    assert!(!error.contains("?token=qry"), "{error}");
}

#[tokio::test]
async fn a_webhook_redirect_is_not_followed_and_says_so() {
    let (address, seen) = receiver().await;
    let target = Target::Webhook {
        url: format!("http://{address}/moved"),
        secret_header: None,
    };
    let error = deliver(&target, &message(), Duration::from_secs(5)).await.unwrap_err();
    assert!(
        error.starts_with(&format!("HTTP 302 from http://{address}/moved")) && error.contains("redirect"),
        "{error}"
    );
    assert!(seen.lock().unwrap().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_webhook_nobody_listens_on_fails_quickly_without_secrets() {
    let port = free_port();
    let target = Target::Webhook {
        url: format!("http://user:{SMTP_PASSWORD}@127.0.0.1:{port}/hook?token={QUERY_TOKEN}"),
        secret_header: None,
    };
    let error = deliver(&target, &message(), Duration::from_secs(5)).await.unwrap_err();
    assert!(
        error.starts_with(&format!("POST http://127.0.0.1:{port}/hook failed: ")),
        "{error}"
    );
    assert_no_secret(&error);
}

#[tokio::test]
async fn slack_gets_mrkdwn_with_summary_detail_and_the_link_back() {
    let (address, seen) = slack_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Slack {
        url: secret_file(
            dir.path(),
            "slack-url",
            &format!("http://{address}/services/T0001/B0001/{SLACK_TOKEN}"),
        ),
    };
    let mut message = message();
    message.detail = Some("pg_dump: error: relation \"a<b>\" & more\n`````".into());
    deliver(&target, &message, Duration::from_secs(5)).await.unwrap();

    let seen = seen.lock().unwrap();
    let [(headers, body)] = seen.as_slice() else {
        panic!("expected one request, got {}", seen.len())
    };
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_str(body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with(":red_circle: *prod: backup #12 failed*\n"), "{text}");
    // Slack's three markup characters escaped, inside the code block too, and the detail's
    // backticks cannot close the block.
    assert!(
        text.contains("\n```\npg_dump: error: relation \"a&lt;b&gt;\" &amp; more\n`\u{200B}``\u{200B}``\n```\n"),
        "{text}"
    );
    assert!(
        text.ends_with("critical · prod · 2025-03-01 10:02 UTC · <http://steward.test:8080/environments/prod/backups/12|Open in Steward>"),
        "{text}"
    );
}

#[tokio::test]
async fn a_slack_recovery_is_green_and_a_long_detail_is_cut_saying_so() {
    let (address, seen) = slack_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Slack {
        url: secret_file(
            dir.path(),
            "slack-url",
            &format!("http://{address}/services/T0001/B0001/{SLACK_TOKEN}"),
        ),
    };
    let mut message = message();
    message.recovery = true;
    message.summary = "prod: backups succeed again".into();
    message.detail = Some("x".repeat(MAX_SLACK_DETAIL_CHARS + 500));
    deliver(&target, &message, Duration::from_secs(5)).await.unwrap();

    let seen = seen.lock().unwrap();
    let body: Value = serde_json::from_str(&seen[0].1).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with(":white_check_mark: *prod: backups succeed again*"),
        "{text}"
    );
    assert!(text.contains("\n… (500 more characters cut"), "{text}");
    assert!(!text.contains(&"x".repeat(MAX_SLACK_DETAIL_CHARS + 1)), "not cut");
    assert!(text.contains("critical · recovered · prod"), "{text}");
}

#[tokio::test]
async fn a_slack_failure_never_shows_the_webhook_url() {
    let (address, _) = slack_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong_token = "WRONGslackTOKENxxxxxxxxx";
    let target = Target::Slack {
        url: secret_file(
            dir.path(),
            "slack-url",
            &format!("http://{address}/services/T0001/B0001/{wrong_token}"),
        ),
    };
    let error = deliver(&target, &message(), Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(error, "the Slack webhook answered HTTP 404: no_service");

    let nobody = Target::Slack {
        url: secret_file(
            dir.path(),
            "slack-url-closed",
            &format!("http://127.0.0.1:{}/services/T0001/B0001/{SLACK_TOKEN}", free_port()),
        ),
    };
    let error = deliver(&nobody, &message(), Duration::from_secs(5)).await.unwrap_err();
    assert!(error.starts_with("the Slack webhook could not be reached: "), "{error}");
    assert!(!error.contains("/services/"), "{error}");
    assert_no_secret(&error);

    let missing = Target::Slack {
        url: SecretSource::File(dir.path().join("no-such-file")),
    };
    let error = deliver(&missing, &message(), Duration::from_secs(5)).await.unwrap_err();
    assert!(
        error.starts_with("the Slack webhook URL: cannot read ") && error.contains("no-such-file"),
        "{error}"
    );
}

/// A port nothing listens on (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An aiosmtpd process delivering into a Maildir; killed when dropped, so a failing test
/// leaves no server behind.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    /// Starts `python -m aiosmtpd` (the interpreter of `.tools/python`, or
    /// `$STEWARD_TEST_PYTHON`) and waits until it accepts connections.
    async fn start() -> SmtpServer {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = std::env::var_os("STEWARD_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join(".tools/python/bin/python"));
        let setup = "run scripts/setup.sh (it installs aiosmtpd in .tools/python), or point STEWARD_TEST_PYTHON at a Python that has aiosmtpd";
        let probe = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match probe {
            Ok(status) if status.success() => {}
            Ok(_) => panic!("{} cannot import aiosmtpd: {setup}", python.display()),
            Err(e) => panic!("{} cannot be run ({e}): {setup}", python.display()),
        }

        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let stderr = dir.path().join("aiosmtpd.log");
        let port = free_port();
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{} cannot be started ({e}): {setup}", python.display()));
        let mut server = SmtpServer {
            child,
            port,
            maildir,
            stderr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("aiosmtpd exited ({status}): {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on port {port} within 15 s: {}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The mails delivered so far, as the Maildir holds them.
    fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect()
    }
}

fn email_target(port: u16, username: Option<&str>, password: Option<SecretSource>) -> Target {
    Target::Email {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: SmtpSecurity::None,
        username: username.map(str::to_string),
        password,
        from: "Steward <steward@example.com>".into(),
        to: vec!["ops@example.com".into(), "Oncall <oncall@example.com>".into()],
    }
}

#[tokio::test]
async fn a_mail_reaches_a_real_smtp_server_with_subject_detail_and_link() {
    let server = SmtpServer::start().await;
    deliver(
        &email_target(server.port, None, None),
        &message(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();

    let mails = server.mails();
    let [mail] = mails.as_slice() else {
        panic!("expected one mail, got {}: {}", mails.len(), server.log())
    };
    // Headers are CRLF-separated on the wire; the Maildir keeps what came.
    let mail = mail.replace("\r\n", "\n");
    assert!(
        mail.contains("\nSubject: [Steward] prod: backup #12 failed\n"),
        "{mail}"
    );
    assert!(mail.contains("From: Steward <steward@example.com>\n"), "{mail}");
    assert!(
        mail.contains("To: ops@example.com, Oncall <oncall@example.com>\n"),
        "{mail}"
    );
    assert!(mail.contains("Content-Type: text/plain; charset=utf-8\n"), "{mail}");
    for line in [
        "prod: backup #12 failed\n\npg_dump: error: connection to server failed\npg_dump: detail: Connection refused\n",
        "\nOpen in Steward: http://steward.test:8080/environments/prod/backups/12\n",
        "\nSeverity: critical\n",
        "\nEnvironment: prod\n",
        "\nTime: 2025-03-01 10:02:03 UTC\n",
    ] {
        assert!(mail.contains(line), "{line:?} is not in:\n{mail}");
    }
}

#[tokio::test]
async fn a_mail_to_a_port_nobody_listens_on_fails_quickly_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let target = email_target(
        port,
        Some("steward"),
        Some(secret_file(dir.path(), "smtp-password", SMTP_PASSWORD)),
    );
    let started = Instant::now();
    let error = deliver(&target, &message(), Duration::from_secs(3)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        error.starts_with(&format!("mail via 127.0.0.1:{port} failed: ")),
        "{error}"
    );
    assert!(error.to_lowercase().contains("connection refused"), "{error}");
    assert_no_secret(&error);
}

#[tokio::test]
async fn an_smtp_server_that_never_answers_fails_within_the_timeout() {
    // Accepts the connection and says nothing: no greeting ever comes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let error = deliver(&email_target(port, None, None), &message(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        error.starts_with(&format!("mail via 127.0.0.1:{port} failed: ")),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_smtp_password_is_named_by_where_it_was_looked_for() {
    let target = email_target(
        free_port(),
        Some("steward"),
        Some(SecretSource::Env("STEWARD_TEST_SEND_NO_SUCH_VARIABLE".into())),
    );
    let error = deliver(&target, &message(), Duration::from_secs(3)).await.unwrap_err();
    assert!(
        error.ends_with("the SMTP password: the environment variable STEWARD_TEST_SEND_NO_SUCH_VARIABLE is not set"),
        "{error}"
    );

    let without = email_target(free_port(), Some("steward"), None);
    let error = deliver(&without, &message(), Duration::from_secs(3)).await.unwrap_err();
    assert!(error.contains("a username is configured but no password"), "{error}");
}
