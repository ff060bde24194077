//! `GET /api/audit/export.csv` and `GET /api/audit/export.jsonl`: every event the audit page's
//! filter matches (the same query keys: `from`, `to`, `actor`, `action`, `environment`,
//! `outcome`, `target`, `q`), oldest first, streamed as the database hands the rows over — a
//! million events never sit in memory, and a reader that stops stops the query.
//!
//! Viewers and up, as the page; the export itself is audited (`audit.export`, with the filter).

use std::collections::HashMap;

use app::types::AuditQuery;
use axum::{
    Extension,
    body::{Body, Bytes},
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use engine::{
    Engine,
    accounts::ClientIp,
    audit::{self, Event},
    users::Role,
};
use futures::StreamExt;
use tower_sessions::Session;

use crate::job_feed::signed_in_as;

/// Rows serialised per chunk handed to the connection.
const ROWS_PER_CHUNK: usize = 512;

#[derive(Debug, Clone, Copy)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::JsonLines => "application/jsonl; charset=utf-8",
        }
    }
}

pub async fn csv(
    engine: State<Engine>,
    session: Session,
    client_ip: Option<Extension<ClientIp>>,
    query: Query<HashMap<String, String>>,
) -> Response {
    export(engine, session, client_ip, query, Format::Csv).await
}

pub async fn jsonl(
    engine: State<Engine>,
    session: Session,
    client_ip: Option<Extension<ClientIp>>,
    query: Query<HashMap<String, String>>,
) -> Response {
    export(engine, session, client_ip, query, Format::JsonLines).await
}

async fn export(
    State(engine): State<Engine>,
    session: Session,
    client_ip: Option<Extension<ClientIp>>,
    Query(params): Query<HashMap<String, String>>,
    format: Format,
) -> Response {
    let client_ip = client_ip.map(|Extension(ClientIp(ip))| ip.to_string());
    let caller = match signed_in_as(&engine, &session, client_ip, Role::Viewer).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let query = AuditQuery::from_params(|key| params.get(key).cloned());
    let mut filter = match query.to_filter() {
        Ok(filter) => filter,
        Err(refusal) => return (StatusCode::UNPROCESSABLE_ENTITY, format!("{refusal}\n")).into_response(),
    };
    // The export ends where the log stands now: without its own event, and without what is
    // written while it streams.
    filter.through_id = match audit::filter::newest_id(engine.db().pool()).await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::error!(error = %e, "reading the audit log failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
    };
    let event = caller
        .actor
        .event("audit.export", None, audit::Outcome::Ok)
        .with_detail(serde_json::json!({ "format": format.extension(), "filter": query.query_string() }));
    if let Err(e) = audit::record(engine.db().pool(), &event).await {
        tracing::error!(error = %e, "recording an audit export failed");
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
    }
    let header_row = match format {
        Format::Csv => Some(Ok(Bytes::from_static(
            b"id,time_utc,actor,client_ip,action,target,environment,outcome,detail\n",
        ))),
        Format::JsonLines => None,
    };
    let rows = audit::filter::stream(engine.db(), &filter)
        .ready_chunks(ROWS_PER_CHUNK)
        .map(move |chunk| serialise(&chunk, format));
    let body = futures::stream::iter(header_row).chain(rows);
    let stamp: String = app::format::utc_seconds(engine::db::now_ms())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let file_name = format!("steward-audit-{stamp}.{}", format.extension());
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// A chunk of rows as bytes; a database error aborts the download (the client sees a broken
/// transfer, never a file that silently stops short).
fn serialise(chunk: &[sqlx::Result<Event>], format: Format) -> Result<Bytes, std::io::Error> {
    let mut out = Vec::with_capacity(chunk.len() * 200);
    match format {
        Format::Csv => {
            let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(&mut out);
            for event in chunk {
                let event = event.as_ref().map_err(abort)?;
                writer
                    .write_record([
                        event.id.to_string().as_str(),
                        &app::format::utc_seconds(event.at_ms),
                        event.actor.as_deref().unwrap_or_default(),
                        event.client_ip.as_deref().unwrap_or_default(),
                        &event.action,
                        event.target.as_deref().unwrap_or_default(),
                        event.environment.as_deref().unwrap_or_default(),
                        event.outcome.as_str(),
                        &event.detail.to_string(),
                    ])
                    .map_err(std::io::Error::other)?;
            }
            writer.flush()?;
        }
        Format::JsonLines => {
            for event in chunk {
                let event = event.as_ref().map_err(abort)?;
                let line = serde_json::json!({
                    "id": event.id,
                    "at_ms": event.at_ms,
                    "time_utc": app::format::utc_seconds(event.at_ms),
                    "actor": event.actor,
                    "client_ip": event.client_ip,
                    "action": event.action,
                    "target": event.target,
                    "environment": event.environment,
                    "outcome": event.outcome.as_str(),
                    "detail": event.detail,
                });
                serde_json::to_writer(&mut out, &line)?;
                out.push(b'\n');
            }
        }
    }
    Ok(Bytes::from(out))
}

fn abort(e: &sqlx::Error) -> std::io::Error {
    tracing::error!(error = %e, "reading the audit log for an export failed");
    std::io::Error::other("the audit log could not be read")
}
