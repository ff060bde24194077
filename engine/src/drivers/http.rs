//! The `http` driver: a remote system that backs itself up when asked (a Jenkins-style job
//! trigger, a maintenance endpoint), and reports how it went.
//!
//! Steward POSTs `{backup_id, description, environment, resource}` as JSON to the start URL,
//! then GETs the status URL (with `?backup_id=…` appended) every `poll_seconds` until the
//! answer says `{"state": "done"}` or `{"state": "failed"}` (with an optional `message` and
//! `progress` from 0 to 100), or `timeout_seconds` have passed. Every change of the reported
//! state, message or progress goes into the job log. The data itself stays with the remote
//! system; the artifact is `report.json`, what it reported (the start answer, the final
//! status, timings), so that the backup records which remote backup belongs to it. A remote
//! system names its own backup with `"remote_backup": "snap-1"` in the final status (or the
//! start answer); that name and the final state and message go into the manifest too, so the
//! backup page and `steward backup show` say which remote backup a Steward backup is
//! ([`RemoteReport`]).
//!
//! The secret header is sent with every request and appears nowhere else: not in the log, not
//! in errors, not in the report (a remote system that echoes it gets it masked). Requests go
//! through [`crate::http_client`]: URLs are shown without their query and credentials, which
//! may carry tokens too (credentials in a URL are sent as basic auth); redirects are not
//! followed, so the header never travels to a host nobody configured; an answer larger than
//! [`MAX_JSON_BYTES`] is an error. A status endpoint that fails now
//! and then is tolerated; one that fails [`MAX_FAILED_POLLS`] times in a row ends the backup.
//! Cancelling stops the polling; the remote system is not told (there is no common way to).
//!
//! A restore works the same way when the resource has a `restore_url`: Steward POSTs
//! `{backup_id, environment, resource, report}` (the backup's `report.json`, which names the
//! remote system's own backup) to it, then polls the status URL with `?backup_id=…&operation=restore`.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use reqwest::{
    Method,
    header::{CONTENT_TYPE, HeaderMap},
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::{Artifact, Context, DriverError, HashingWriter, command::label};
use crate::{
    config::SecretHeader,
    db::now_ms,
    http_client::{self, Endpoint, MAX_JSON_BYTES, json_or_text, snippet},
    output::{Level, mask},
};

/// The artifact's file name.
pub const ARTIFACT: &str = "report.json";

/// Consecutive failed status requests after which the backup fails.
pub const MAX_FAILED_POLLS: u32 = 5;

/// The longest one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks the remote system to back itself up and follows it until it is done.
pub async fn backup(
    start_url: &str,
    status_url: &str,
    secret_header: Option<&SecretHeader>,
    poll_seconds: u32,
    timeout_seconds: u32,
    out_dir: &Path,
    ctx: &Context<'_>,
) -> Result<Artifact, DriverError> {
    let label = label(ctx);
    let fail = |message: String| DriverError::Failed(format!("{label}: {message}"));
    let request = json!({
        "backup_id": ctx.backup_id,
        "description": ctx.description,
        "environment": ctx.environment,
        "resource": ctx.resource,
    });
    let call = Call {
        operation: Operation::Backup,
        start_url,
        status_url,
        body: request,
        secret_header,
        poll_seconds,
        timeout_seconds,
    };
    let Finished {
        start_shown,
        start_status,
        start_body,
        status_shown,
        polls,
        final_body,
        final_report,
        started_ms,
        secrets,
    } = call.run(ctx).await?;

    // Report.
    let finished_ms = now_ms();
    let mut report = json!({
        "start": { "url": start_shown, "status": start_status.as_u16(), "answer": start_body },
        "status": { "url": status_shown, "polls": polls, "final": final_body },
        "started_at_ms": started_ms,
        "finished_at_ms": finished_ms,
        "duration_ms": finished_ms - started_ms,
    });
    mask_value(&mut report, &secrets);
    let bytes = serde_json::to_vec_pretty(&report).map_err(|e| fail(format!("the report cannot be written: {e}")))?;
    let path = out_dir.join(ARTIFACT);
    let context = format!("writing {}", path.display());
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(DriverError::io(context.clone()))?;
    let mut writer = HashingWriter::new(file);
    writer
        .write_all(&bytes)
        .await
        .map_err(DriverError::io(context.clone()))?;
    writer.flush().await.map_err(DriverError::io(context.clone()))?;
    let (file, size, sha256) = writer.finish();
    file.sync_all().await.map_err(DriverError::io(context))?;
    (ctx.progress)(size, Some(size));
    ctx.log
        .info(format!("{label}: the remote system finished after {} polls", polls))
        .await;
    let remote_backup = remote_backup_of(&final_body).or_else(|| remote_backup_of(&start_body));
    let mut details = json!({
        "remote_backup": remote_backup,
        "state": final_report.state,
        "message": final_report.message,
        "polls": polls,
        "duration_ms": finished_ms - started_ms,
    });
    mask_value(&mut details, &secrets);
    Ok(Artifact {
        file: ARTIFACT.into(),
        size,
        sha256,
        tool: None,
        details,
    })
}

/// The remote system's name for its own backup: `remote_backup` of an answer, a string or a
/// number.
fn remote_backup_of(body: &Value) -> Option<String> {
    match body.get("remote_backup")? {
        Value::String(name) if !name.trim().is_empty() => Some(name.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// What the remote system said about a backup it took, as the manifest keeps it (the
/// `details` of an `http` artifact): its own backup's name, and its final state and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReport {
    /// e.g. `snap-1`; `None` when the remote system did not name it.
    pub remote_backup: Option<String>,
    pub state: Option<String>,
    pub message: Option<String>,
}

impl RemoteReport {
    /// The report of an artifact, if it is an `http` one.
    pub fn of(driver: &str, details: &Value) -> Option<RemoteReport> {
        if driver != "http" {
            return None;
        }
        let text = |key: &str| {
            details
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        };
        Some(RemoteReport {
            remote_backup: text("remote_backup"),
            state: text("state"),
            message: text("message"),
        })
    }
}

impl std::fmt::Display for RemoteReport {
    /// `remote backup snap-1 (done: stored as snap-1)`; `done: stored as snap-1` when the
    /// remote system did not name its backup.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let said = match (&self.state, &self.message) {
            (Some(state), Some(message)) => format!("{state}: {message}"),
            (Some(state), None) => state.clone(),
            (None, Some(message)) => message.clone(),
            (None, None) => String::new(),
        };
        match (&self.remote_backup, said.is_empty()) {
            (Some(name), true) => write!(f, "remote backup {name}"),
            (Some(name), false) => write!(f, "remote backup {name} ({said})"),
            (None, false) => f.write_str(&said),
            (None, true) => f.write_str("nothing"),
        }
    }
}

/// What a remote call asks the remote system to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Backup,
    Restore,
}

impl Operation {
    /// "back up", "restore": what the remote system is asked to do.
    fn verb(self) -> &'static str {
        match self {
            Operation::Backup => "back up",
            Operation::Restore => "restore",
        }
    }

    /// "backup", "restore": what it reports on.
    fn noun(self) -> &'static str {
        match self {
            Operation::Backup => "backup",
            Operation::Restore => "restore",
        }
    }
}

/// One remote operation: a JSON body POSTed to the start URL, then the status URL polled until
/// the remote system reports done or failed.
struct Call<'a> {
    operation: Operation,
    start_url: &'a str,
    status_url: &'a str,
    body: Value,
    secret_header: Option<&'a SecretHeader>,
    poll_seconds: u32,
    timeout_seconds: u32,
}

/// What a remote operation that ended `done` said along the way.
struct Finished {
    start_shown: String,
    start_status: reqwest::StatusCode,
    start_body: Value,
    status_shown: String,
    polls: u32,
    final_body: Value,
    final_report: Reported,
    started_ms: i64,
    /// The values to mask in anything kept or logged.
    secrets: Vec<String>,
}

impl Call<'_> {
    async fn run(self, ctx: &Context<'_>) -> Result<Finished, DriverError> {
        let Call {
            operation,
            start_url,
            status_url,
            body,
            secret_header,
            poll_seconds,
            timeout_seconds,
        } = self;
        let (verb, noun) = (operation.verb(), operation.noun());
        let label = label(ctx);
        let fail = |message: String| DriverError::Failed(format!("{label}: {message}"));
        let start_name = match operation {
            Operation::Backup => "start",
            Operation::Restore => "restore",
        };
        let start = Endpoint::parse(start_url).map_err(|why| fail(format!("the {start_name} URL {why}")))?;
        let mut status = Endpoint::parse(status_url).map_err(|why| fail(format!("the status URL {why}")))?;
        status.append_query("backup_id", ctx.backup_id);
        if operation == Operation::Restore {
            status.append_query("operation", "restore");
        }
        let (start_shown, status_shown) = (start.shown(), status.shown());

        let mut headers = HeaderMap::new();
        // What an answer must not show: the URLs' passwords and tokens, the header's value.
        let mut secrets = start.secrets();
        secrets.extend(status.secrets());
        if let Some(header) = secret_header {
            let (name, value, secret) = http_client::sensitive_header(header).map_err(fail)?;
            secrets.push(secret);
            headers.insert(name, value);
        }
        let client = http_client::client(REQUEST_TIMEOUT, headers).map_err(fail)?;

        // Start.
        let started_ms = now_ms();
        let began = Instant::now();
        let deadline = began + Duration::from_secs(u64::from(timeout_seconds));
        ctx.log
            .info(format!(
                "{label}: asking the remote system to {verb}: POST {start_shown}"
            ))
            .await;
        let sent = http_client::send(
            start
                .request(&client, Method::POST)
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string()),
        );
        let response = tokio::select! {
            response = sent => response.map_err(|why| fail(format!("POST {start_shown} failed: {}", mask(&why, &secrets))))?,
            () = ctx.stop.cancelled() => return Err(DriverError::Cancelled),
        };
        let start_status = response.status();
        let start_body = tokio::select! {
            body = http_client::read_capped(response, MAX_JSON_BYTES) => {
                json_or_text(&body.map_err(|why| fail(format!("reading the answer of {start_shown} failed: {why}")))?)
            }
            () = ctx.stop.cancelled() => return Err(DriverError::Cancelled),
        };
        if !start_status.is_success() {
            return Err(fail(format!(
                "the remote system refused to start: {start_shown} answered {start_status}{}",
                snippet(&start_body, &secrets)
            )));
        }
        ctx.log
            .info(format!(
                "{label}: the remote system accepted ({start_status}); polling {status_shown} every {poll_seconds} s"
            ))
            .await;

        // Poll.
        let poll = Duration::from_secs(u64::from(poll_seconds.max(1)));
        let mut polls = 0u32;
        let mut failed_in_a_row = 0u32;
        let mut last: Option<Reported> = None;
        let (final_body, final_report) = loop {
            let now = Instant::now();
            if now >= deadline {
                let said = last
                    .as_ref()
                    .map(Reported::describe)
                    .unwrap_or_else(|| "nothing".into());
                return Err(fail(format!(
                    "the remote system did not report done or failed within {timeout_seconds} s (it last reported: {said})"
                )));
            }
            tokio::select! {
                () = tokio::time::sleep(poll.min(deadline - now)) => {}
                () = ctx.stop.cancelled() => {
                    ctx.log.warn(format!("{label}: polling stopped; the remote system may still be at its {noun}")).await;
                    return Err(DriverError::Cancelled);
                }
            }
            polls += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let request = status
                .request(&client, Method::GET)
                .timeout(REQUEST_TIMEOUT.min(remaining.max(Duration::from_secs(1))));
            let answer = tokio::select! {
                answer = fetch_status(request) => answer,
                () = ctx.stop.cancelled() => return Err(DriverError::Cancelled),
            };
            let (body, reported) = match answer {
                Ok(answer) => answer,
                Err(why) => {
                    failed_in_a_row += 1;
                    let why = mask(&why, &secrets);
                    if failed_in_a_row >= MAX_FAILED_POLLS {
                        return Err(fail(format!(
                            "the status URL {status_shown} failed {failed_in_a_row} times in a row; last: {why}"
                        )));
                    }
                    ctx.log
                        .warn(format!("{label}: asking {status_shown} for the status failed: {why}"))
                        .await;
                    continue;
                }
            };
            failed_in_a_row = 0;
            if last.as_ref() != Some(&reported) {
                let level = if reported.state == "failed" {
                    Level::Warn
                } else {
                    Level::Info
                };
                ctx.log
                    .line(
                        level,
                        format!(
                            "{label}: the remote system reports {}",
                            mask(&reported.describe(), &secrets)
                        ),
                    )
                    .await;
            }
            match reported.state.as_str() {
                "done" => break (body, reported),
                "failed" => {
                    let message = reported.message.as_deref().unwrap_or("no message given");
                    return Err(fail(format!(
                        "the remote system reports that its {noun} failed: {}",
                        mask(message, &secrets)
                    )));
                }
                _ => last = Some(reported),
            }
        };
        Ok(Finished {
            start_shown,
            start_status,
            start_body,
            status_shown,
            polls,
            final_body,
            final_report,
            started_ms,
            secrets,
        })
    }
}

/// Asks the remote system to restore the remote backup that `report` (the artifact of a
/// backup: what the remote system answered when it was taken) describes, and follows it until
/// it is done. The request carries the backup id and that report; the status URL is polled with
/// `operation=restore`.
pub async fn restore(
    restore_url: &str,
    status_url: &str,
    secret_header: Option<&SecretHeader>,
    poll_seconds: u32,
    timeout_seconds: u32,
    report: &Path,
    ctx: &Context<'_>,
) -> Result<(), DriverError> {
    let label = label(ctx);
    let text = tokio::fs::read(report)
        .await
        .map_err(DriverError::io(format!("reading {}", report.display())))?;
    let report: Value = serde_json::from_slice(&text)
        .map_err(|e| DriverError::Failed(format!("{label}: the backup's report.json cannot be read: {e}")))?;
    let call = Call {
        operation: Operation::Restore,
        start_url: restore_url,
        status_url,
        body: json!({
            "backup_id": ctx.backup_id,
            "environment": ctx.environment,
            "resource": ctx.resource,
            "report": report,
        }),
        secret_header,
        poll_seconds,
        timeout_seconds,
    };
    let finished = call.run(ctx).await?;
    ctx.log
        .info(format!(
            "{label}: the remote system restored backup {} after {} polls",
            ctx.backup_id, finished.polls
        ))
        .await;
    Ok(())
}

/// What one status answer said.
#[derive(Debug, Clone, PartialEq)]
struct Reported {
    state: String,
    message: Option<String>,
    progress: Option<u8>,
}

impl Reported {
    /// `running, 40 %: copying files`.
    fn describe(&self) -> String {
        let mut text = self.state.clone();
        if let Some(progress) = self.progress {
            text.push_str(&format!(", {progress} %"));
        }
        if let Some(message) = &self.message {
            text.push_str(&format!(": {message}"));
        }
        text
    }

    fn from_body(body: &Value) -> Result<Reported, String> {
        let state = body
            .get("state")
            .and_then(Value::as_str)
            .ok_or_else(|| "the answer has no \"state\"".to_string())?
            .trim()
            .to_ascii_lowercase();
        let message = match body.get("message") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => Some(other.to_string()),
        };
        let progress = body
            .get("progress")
            .and_then(Value::as_f64)
            .map(|p| p.clamp(0.0, 100.0).round() as u8);
        Ok(Reported {
            state,
            message,
            progress,
        })
    }
}

/// One status request: the body and what it says, or why there is no usable answer.
async fn fetch_status(request: reqwest::RequestBuilder) -> Result<(Value, Reported), String> {
    let response = http_client::send(request).await?;
    let status = response.status();
    let body = json_or_text(&http_client::read_capped(response, MAX_JSON_BYTES).await?);
    if !status.is_success() {
        return Err(format!("answered {status}{}", snippet(&body, &[])));
    }
    let reported = Reported::from_body(&body).map_err(|why| format!("{why}{}", snippet(&body, &[])))?;
    Ok((body, reported))
}

/// Masks the secrets in every string of a JSON value.
fn mask_value(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(text) => *text = mask(text, secrets),
        Value::Array(items) => items.iter_mut().for_each(|item| mask_value(item, secrets)),
        Value::Object(fields) => fields.values_mut().for_each(|field| mask_value(field, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        sync::{Arc, Mutex},
    };

    use axum::{
        Json, Router,
        extract::{Query, State},
        http::{HeaderMap as Headers, StatusCode},
        routing::{get, post},
    };

    use super::*;
    use crate::{
        config::SecretSource,
        drivers::{sha256_of, testing::Harness},
    };

    const TOKEN: &str = "tok-s3cret-42";

    /// How the stand-in remote system behaves.
    #[derive(Clone, Copy)]
    enum Remote {
        /// Reports progress twice, then done (echoing the token, as a careless system might).
        Finishes,
        /// Reports running once, then failed.
        Fails,
        /// Reports running forever.
        NeverFinishes,
    }

    #[derive(Default)]
    struct Seen {
        started: Vec<Value>,
        polls: u32,
        tokens: Vec<Option<String>>,
        backup_ids: Vec<Option<String>>,
        operations: Vec<Option<String>>,
    }

    #[derive(Clone)]
    struct Server {
        remote: Remote,
        seen: Arc<Mutex<Seen>>,
    }

    fn token_of(headers: &Headers) -> Option<String> {
        headers
            .get("x-maintenance-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    async fn start(
        State(server): State<Server>,
        headers: Headers,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        let token = token_of(&headers);
        let mut seen = server.seen.lock().unwrap();
        seen.tokens.push(token.clone());
        if token.as_deref() != Some(TOKEN) {
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": "bad token"})));
        }
        seen.started.push(body);
        (StatusCode::ACCEPTED, Json(json!({"accepted": true, "job": 42})))
    }

    async fn status(
        State(server): State<Server>,
        headers: Headers,
        Query(query): Query<HashMap<String, String>>,
    ) -> Json<Value> {
        let mut seen = server.seen.lock().unwrap();
        seen.polls += 1;
        seen.tokens.push(token_of(&headers));
        seen.backup_ids.push(query.get("backup_id").cloned());
        seen.operations.push(query.get("operation").cloned());
        Json(match (server.remote, seen.polls) {
            (Remote::Finishes, 1) => json!({"state": "running", "progress": 10, "message": "dumping"}),
            (Remote::Finishes, 2) => json!({"state": "running", "progress": 60.4, "message": "uploading"}),
            (Remote::Finishes, _) => {
                json!({"state": "done", "progress": 100, "message": "stored as snap-42", "remote_backup": "snap-42", "echo": TOKEN})
            }
            (Remote::Fails, 1) => json!({"state": "running"}),
            (Remote::Fails, _) => json!({"state": "failed", "message": "disk full on backup host"}),
            (Remote::NeverFinishes, _) => json!({"state": "running", "progress": 5}),
        })
    }

    /// Starts the stand-in on a free port; returns its base URL.
    async fn serve(remote: Remote) -> (String, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/start", post(start))
            .route("/restore", post(start))
            .route("/status", get(status))
            .with_state(Server {
                remote,
                seen: seen.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}"), seen)
    }

    fn header(harness: &Harness) -> SecretHeader {
        let path = harness.scratch.path().join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        SecretHeader {
            name: "X-Maintenance-Token".into(),
            value: SecretSource::File(path),
        }
    }

    #[tokio::test]
    async fn a_remote_backup_is_started_followed_and_reported() {
        let (base, seen) = serve(Remote::Finishes).await;
        let harness = Harness::new();
        let header = header(&harness);
        let started = Instant::now();
        let artifact = backup(
            &format!("{base}/start?token=in-query"),
            &format!("{base}/status"),
            Some(&header),
            1,
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap();
        eprintln!("the remote backup took {:?}", started.elapsed());

        {
            let seen = seen.lock().unwrap();
            assert_eq!(
                seen.started,
                vec![json!({
                    "backup_id": "staging-20261122-0436-7f3a",
                    "description": "before the upgrade",
                    "environment": "staging",
                    "resource": "main",
                })]
            );
            assert_eq!(seen.polls, 3);
            assert!(
                seen.tokens.iter().all(|t| t.as_deref() == Some(TOKEN)),
                "{:?}",
                seen.tokens
            );
            assert!(
                seen.backup_ids
                    .iter()
                    .all(|id| id.as_deref() == Some("staging-20261122-0436-7f3a"))
            );
        }

        let path = harness.out.path().join(&artifact.file);
        assert_eq!(artifact.file, Path::new(ARTIFACT));
        assert_eq!(
            sha256_of(&path).await.unwrap(),
            (artifact.size, artifact.sha256.clone())
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let report: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(report["status"]["final"]["state"], "done");
        assert_eq!(report["status"]["final"]["message"], "stored as snap-42");
        assert_eq!(report["status"]["final"]["echo"], "***");
        assert_eq!(report["status"]["polls"], 3);
        assert_eq!(report["start"]["answer"]["job"], 42);
        assert_eq!(report["start"]["url"], format!("{base}/start"));
        assert!(report["duration_ms"].as_i64().is_some_and(|ms| ms >= 2000), "{report}");
        assert_eq!(artifact.details["message"], "stored as snap-42");
        assert_eq!(artifact.details["remote_backup"], "snap-42");
        assert_eq!(
            RemoteReport::of("http", &artifact.details).unwrap().to_string(),
            "remote backup snap-42 (done: stored as snap-42)"
        );
        assert_eq!(RemoteReport::of("directory", &artifact.details), None);
        assert!(!text.contains(TOKEN) && !text.contains("in-query"), "{text}");
        assert!(!artifact.details.to_string().contains(TOKEN));

        let lines = harness.lines().await;
        let logged: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
        for expected in [
            "resource \"main\" of staging: the remote system reports running, 10 %: dumping",
            "resource \"main\" of staging: the remote system reports running, 60 %: uploading",
            "resource \"main\" of staging: the remote system reports done, 100 %: stored as snap-42",
        ] {
            assert!(logged.contains(&expected), "{expected} not in {logged:#?}");
        }
        assert!(!format!("{logged:?}").contains(TOKEN), "{logged:#?}");
    }

    #[tokio::test]
    async fn a_remote_restore_is_given_the_backups_report_and_followed() {
        let (base, seen) = serve(Remote::Finishes).await;
        let harness = Harness::new();
        let header = header(&harness);
        let artifact = backup(
            &format!("{base}/start"),
            &format!("{base}/status"),
            Some(&header),
            1,
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap();
        let polls_for_backup = seen.lock().unwrap().polls as usize;

        restore(
            &format!("{base}/restore"),
            &format!("{base}/status"),
            Some(&header),
            1,
            30,
            &harness.out.path().join(&artifact.file),
            &harness.ctx(),
        )
        .await
        .unwrap();
        {
            let seen = seen.lock().unwrap();
            let asked = &seen.started[1];
            assert_eq!(asked["backup_id"], "staging-20261122-0436-7f3a");
            assert_eq!(asked["resource"], "main");
            // The remote system learns which of its backups to bring back from what it said then.
            assert_eq!(asked["report"]["start"]["answer"]["job"], 42);
            assert_eq!(asked["report"]["status"]["final"]["message"], "stored as snap-42");
            assert!(seen.operations[..polls_for_backup].iter().all(Option::is_none));
            assert!(
                seen.operations[polls_for_backup..]
                    .iter()
                    .all(|op| op.as_deref() == Some("restore")),
                "{:?}",
                seen.operations
            );
            assert!(seen.tokens.iter().all(|t| t.as_deref() == Some(TOKEN)));
        }
        let lines = harness.lines().await;
        let asking = format!("resource \"main\" of staging: asking the remote system to restore: POST {base}/restore");
        assert!(lines.iter().any(|(_, line)| *line == asking), "{lines:#?}");
    }

    #[tokio::test]
    async fn a_remote_failure_fails_the_backup_with_the_remote_message() {
        let (base, _) = serve(Remote::Fails).await;
        let harness = Harness::new();
        let header = header(&harness);
        let error = backup(
            &format!("{base}/start"),
            &format!("{base}/status"),
            Some(&header),
            1,
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "resource \"main\" of staging: the remote system reports that its backup failed: disk full on backup host"
        );
        assert!(!harness.out.path().join(ARTIFACT).exists());
    }

    #[tokio::test]
    async fn a_remote_system_that_never_finishes_times_out() {
        let (base, seen) = serve(Remote::NeverFinishes).await;
        let harness = Harness::new();
        let header = header(&harness);
        let started = Instant::now();
        let error = backup(
            &format!("{base}/start"),
            &format!("{base}/status"),
            Some(&header),
            1,
            2,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        let took = started.elapsed();
        assert_eq!(
            error,
            "resource \"main\" of staging: the remote system did not report done or failed within 2 s (it last reported: running, 5 %)"
        );
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert_eq!(seen.lock().unwrap().polls, 2);
    }

    #[tokio::test]
    async fn cancelling_stops_the_polling() {
        let (base, _) = serve(Remote::NeverFinishes).await;
        let harness = Harness::new();
        let header = header(&harness);
        let stop = harness.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stop.cancel();
        });
        let started = Instant::now();
        let result = backup(
            &format!("{base}/start"),
            &format!("{base}/status"),
            Some(&header),
            1,
            60,
            harness.out.path(),
            &harness.ctx(),
        )
        .await;
        assert!(matches!(result, Err(DriverError::Cancelled)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_refused_start_names_the_answer_and_an_unreachable_system_its_cause() {
        let (base, _) = serve(Remote::Finishes).await;
        let harness = Harness::new();
        let error = backup(
            &format!("{base}/start"),
            &format!("{base}/status"),
            None,
            1,
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            format!(
                "resource \"main\" of staging: the remote system refused to start: {base}/start answered 401 Unauthorized: {{\"error\":\"bad token\"}}"
            )
        );

        let error = backup(
            "http://127.0.0.1:1/start?token=t0k",
            "http://127.0.0.1:1/status",
            None,
            1,
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("resource \"main\" of staging: POST http://127.0.0.1:1/start failed: "),
            "{error}"
        );
        assert!(error.to_lowercase().contains("connection refused"), "{error}");
        assert!(!error.contains("t0k"), "{error}");
    }
}
