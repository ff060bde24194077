//! A job's log for the browser, outside the server functions because it is long-lived or large:
//!
//! - `GET /api/jobs/{id}/events` — Server-Sent Events: `line` events (one per log line, the
//!   line's `seq` as the event id, so a reconnecting browser resumes with `Last-Event-ID`),
//!   `job` events when the job's state or progress changed, and a final `end` event once the
//!   job has finished and every line was sent. New lines reach the browser within a second:
//!   the stream wakes when this process writes lines and re-reads every second for lines
//!   other instances wrote.
//! - `GET /api/jobs/{id}/log.txt` — the whole log as a text download.
//!
//! Both check the session and the viewer role exactly as the server functions do.

use std::{convert::Infallible, time::Duration};

use app::{
    api::guard,
    types::{JobLogLine, JobSummary},
};
use axum::{
    Extension,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use engine::{Engine, accounts::ClientIp, users::Role};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tower_sessions::Session;

/// Lines read from the database per query.
const CHUNK: i64 = 1000;
/// Re-read at least this often (lines written by another instance).
const RECHECK: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
pub struct After {
    /// Send lines after this `seq` (the page already shows those up to it).
    after: Option<i64>,
}

/// The live event stream of job `id`.
pub async fn events(
    State(engine): State<Engine>,
    session: Session,
    client_ip: Option<Extension<ClientIp>>,
    Path(id): Path<i64>,
    Query(query): Query<After>,
    headers: HeaderMap,
) -> Response {
    let client_ip = client_ip.map(|Extension(ClientIp(ip))| ip.to_string());
    if let Err(refusal) = authorise(&engine, &session, client_ip.clone()).await {
        return refusal;
    }
    match engine.job(id).await {
        Ok(Some(_)) => {}
        Ok(None) => return (StatusCode::NOT_FOUND, "no such job\n").into_response(),
        Err(e) => return internal(&e),
    }
    // A reconnecting EventSource says where it got to; that wins over the page's `after`.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let after = resume.or(query.after).unwrap_or(0);
    let (sender, receiver) = mpsc::channel(64);
    let caller = Caller { session, client_ip };
    tokio::spawn(follow(engine, caller, id, after, sender));
    Sse::new(ReceiverStream::new(receiver))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Who follows a stream, to check again while it lasts.
struct Caller {
    session: Session,
    client_ip: Option<String>,
}

/// Sends what is new until the job ended, the browser went away, the server is closing, or the
/// caller may no longer read it (signed out, disabled, demoted: checked at every look).
async fn follow(
    engine: Engine,
    caller: Caller,
    id: i64,
    mut after: i64,
    sender: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut changes = engine.job_changes();
    let mut last_sent: Option<JobSummary> = None;
    let mut first = true;
    loop {
        changes.mark_unchanged();
        if !first
            && authorise(&engine, &caller.session, caller.client_ip.clone())
                .await
                .is_err()
        {
            return;
        }
        first = false;
        let Ok(Some(job)) = engine.job(id).await else { return };
        let finished = job.state.is_finished();
        // Lines first: a browser that sees "finished" has every line already.
        loop {
            let Ok(lines) = engine.job_log(id, after, CHUNK).await else {
                return;
            };
            let count = lines.len();
            for line in lines {
                after = line.seq;
                let line = JobLogLine::from(line);
                let event = Event::default().event("line").id(line.seq.to_string()).json_data(&line);
                if let Ok(event) = event
                    && sender.send(Ok(event)).await.is_err()
                {
                    return;
                }
            }
            if count < CHUNK as usize {
                break;
            }
        }
        let summary = JobSummary::from(job);
        if last_sent.as_ref() != Some(&summary) {
            if let Ok(event) = Event::default().event("job").json_data(&summary)
                && sender.send(Ok(event)).await.is_err()
            {
                return;
            }
            last_sent = Some(summary);
        }
        if finished {
            let _ = sender.send(Ok(Event::default().event("end").data("end"))).await;
            return;
        }
        tokio::select! {
            _ = changes.changed() => {},
            () = tokio::time::sleep(RECHECK) => {},
            () = sender.closed() => return,
            () = engine.closing() => return,
        }
    }
}

/// The whole log of job `id` as `steward-job-ID.log`.
pub async fn download(
    State(engine): State<Engine>,
    session: Session,
    client_ip: Option<Extension<ClientIp>>,
    Path(id): Path<i64>,
) -> Response {
    let client_ip = client_ip.map(|Extension(ClientIp(ip))| ip.to_string());
    if let Err(refusal) = authorise(&engine, &session, client_ip).await {
        return refusal;
    }
    let job = match engine.job(id).await {
        Ok(Some(job)) => job,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such job\n").into_response(),
        Err(e) => return internal(&e),
    };
    let (sender, receiver) = mpsc::channel::<Result<String, std::io::Error>>(4);
    tokio::spawn(async move {
        let header = format!(
            "# {} on {}, requested by {}, {}\n",
            job.title(),
            job.environment,
            job.requested_by,
            job.state
        );
        if sender.send(Ok(header)).await.is_err() {
            return;
        }
        let mut after = 0;
        loop {
            let lines = match engine.job_log(id, after, CHUNK).await {
                Ok(lines) => lines,
                Err(e) => {
                    let _ = sender.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let Some(last) = lines.last() else { return };
            after = last.seq;
            let text: String = lines
                .iter()
                .map(|l| {
                    format!(
                        "{} {:<6} {}\n",
                        app::format::utc_seconds(l.at_ms),
                        l.level.as_str(),
                        l.line
                    )
                })
                .collect();
            if sender.send(Ok(text)).await.is_err() {
                return;
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"steward-job-{id}.log\""),
            ),
        ],
        Body::from_stream(ReceiverStream::new(receiver)),
    )
        .into_response()
}

/// Signed in with at least the viewer role, or the response to send instead.
async fn authorise(engine: &Engine, session: &Session, client_ip: Option<String>) -> Result<(), Response> {
    signed_in_as(engine, session, client_ip, Role::Viewer).await.map(drop)
}

/// The caller, signed in with at least `role`, or the response to send instead (401, 403).
pub(crate) async fn signed_in_as(
    engine: &Engine,
    session: &Session,
    client_ip: Option<String>,
    role: Role,
) -> Result<guard::Caller, Response> {
    match guard::caller_in(engine, session, client_ip).await {
        Ok(Some(caller)) if caller.user.role.allows(role) => Ok(caller),
        Ok(Some(_)) => Err((StatusCode::FORBIDDEN, "not allowed\n").into_response()),
        Ok(None) => Err((StatusCode::UNAUTHORIZED, "please sign in\n").into_response()),
        Err(_) => Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()),
    }
}

fn internal(error: &engine::jobs::JobError) -> Response {
    tracing::error!(%error, "reading a job failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}
