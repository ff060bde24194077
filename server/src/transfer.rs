//! A backup leaving and entering the console as one portable file (the export format of
//! `steward backup export`, see `engine::backups::export`):
//!
//! - `GET /api/backups/{id}/export.tar` — operators: the export, streamed as it is written
//!   (each artifact as soon as it is fetched from the repository; nothing is kept on the
//!   server). A failure half-way aborts the download, so a broken file never looks complete.
//! - `POST /api/backups/import` — admins: a `multipart/form-data` form with `environment` and
//!   `file` (the console's Upload form, or `curl -F`). The file is streamed to the data
//!   directory, refused with 413 past `storage.upload_limit_mib`, and imported by an `import`
//!   job; the answer sends a browser to the job's page (303) or gives a script the job (202,
//!   JSON). A refused upload sends a browser back to the environment's backups page with the
//!   reason (`?import_error=`), and a script the status with the reason as text.
//!
//! Both check the session and the role exactly as the server functions do; the IP allowlist
//! and the cross-site write check cover them like every route.

use std::io::Write;

use axum::{
    Extension,
    body::{Body, Bytes},
    extract::{Multipart, Path, State, multipart::Field},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use engine::{
    Engine,
    accounts::ClientIp,
    kinds::import::{Import, Upload},
    text::human_bytes,
    users::Role,
};
use tokio::{io::AsyncWriteExt, sync::mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tower_sessions::Session;

use crate::job_feed::signed_in_as;

/// Bytes handed to the connection at a time.
const CHUNK: usize = 256 * 1024;

/// The multipart envelope around the file (boundaries, the environment field) may add this
/// much to a body's declared length.
const ENVELOPE: u64 = 64 * 1024;

/// The export of backup `id`, as `steward-<id>.tar`.
pub async fn download(
    State(engine): State<Engine>,
    session: Session,
    client_ip: Option<Extension<ClientIp>>,
    Path(id): Path<String>,
) -> Response {
    let client_ip = client_ip.map(|Extension(ClientIp(ip))| ip.to_string());
    let caller = match signed_in_as(&engine, &session, client_ip, Role::Operator).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    match engine.backup(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return (StatusCode::NOT_FOUND, format!("there is no backup {id}\n")).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading a backup failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
    }
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let file_name = format!("steward-{id}.tar");
    tokio::spawn(async move {
        let sink = std::io::BufWriter::with_capacity(CHUNK, Sender(sender.clone()));
        let exported = engine
            .export_backup_into(&caller.actor, &id, sink, "a download from the console")
            .await;
        let failure = match exported {
            Ok((sink, artifacts)) => match sink.into_inner() {
                Ok(_) => {
                    tracing::info!(backup = %id, artifacts, "export downloaded");
                    return;
                }
                Err(e) => e.into_error().to_string(),
            },
            Err(e) => e.to_string(),
        };
        // The browser is told the download failed (the connection is aborted), not handed a
        // file that stops short.
        tracing::warn!(backup = %id, error = %failure, "export download failed");
        let _ = sender.send(Err(std::io::Error::other(failure))).await;
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        Body::from_stream(ReceiverStream::new(receiver)),
    )
        .into_response()
}

/// The sending side of a download as a blocking writer (the export writes from a blocking
/// thread). A browser that went away ends the export with "broken pipe".
struct Sender(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for Sender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was cancelled"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why an upload was refused, and with which status.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// An uploaded export, imported by a job.
pub async fn upload(
    State(engine): State<Engine>,
    session: Session,
    client_ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let client_ip = client_ip.map(|Extension(ClientIp(ip))| ip.to_string());
    let caller = match signed_in_as(&engine, &session, client_ip, Role::Admin).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let limit = engine.config().storage.upload_limit_bytes();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let received = match declared {
        Some(length) if length > limit.saturating_add(ENVELOPE) => Err((None, too_large(limit))),
        _ => receive(&engine, multipart, limit).await,
    };
    let (environment, refusal) = match received {
        Ok(form) => {
            let environment = form.environment.clone();
            match start_import(&engine, &caller.actor, form).await {
                Ok(job_id) => {
                    return if browser {
                        Redirect::to(&format!("/jobs/{job_id}")).into_response()
                    } else {
                        (
                            StatusCode::ACCEPTED,
                            axum::Json(serde_json::json!({ "job": job_id, "href": format!("/jobs/{job_id}") })),
                        )
                            .into_response()
                    };
                }
                Err(refusal) => (Some(environment), refusal),
            }
        }
        Err((environment, refusal)) => (environment, refusal),
    };
    if refusal.status.is_server_error() {
        tracing::error!(status = refusal.status.as_u16(), error = %refusal.message, "an upload failed");
    } else {
        tracing::info!(status = refusal.status.as_u16(), error = %refusal.message, "an upload was refused");
    }
    match environment.filter(|_| browser) {
        Some(environment) if engine.config().environment(&environment).is_some() => {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("import_error", &refusal.message)
                .finish();
            Redirect::to(&format!("/environments/{environment}/backups?{query}")).into_response()
        }
        _ => {
            let mut response = (refusal.status, format!("{}\n", refusal.message)).into_response();
            // The client may still be sending: tell it to stop rather than keep the connection.
            response
                .headers_mut()
                .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            response
        }
    }
}

/// What the form carried: the environment and the saved file.
struct Form {
    environment: String,
    upload: Upload,
    original_name: String,
    bytes: u64,
}

/// Reads the form, saving the file as it arrives. The `Err` carries the environment when the
/// form named one before it failed (a browser is sent back to its page).
async fn receive(engine: &Engine, mut multipart: Multipart, limit: u64) -> Result<Form, (Option<String>, Refusal)> {
    let mut environment: Option<String> = None;
    let mut file: Option<(Upload, String, u64)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return Err((
                    environment,
                    Refusal::new(StatusCode::BAD_REQUEST, format!("the upload could not be read: {e}")),
                ));
            }
        };
        match field.name() {
            Some("environment") => match field.text().await {
                Ok(text) => environment = Some(text.trim().to_string()),
                Err(e) => {
                    return Err((
                        environment,
                        Refusal::new(StatusCode::BAD_REQUEST, format!("the upload could not be read: {e}")),
                    ));
                }
            },
            Some("file") => {
                let name = field.file_name().unwrap_or("the upload").to_string();
                match save(engine, field, limit).await {
                    Ok((upload, bytes)) => file = Some((upload, name, bytes)),
                    Err(refusal) => return Err((environment, refusal)),
                }
            }
            // Anything else (a submit button's name) is read past.
            _ => {}
        }
    }
    let Some(environment) = environment.filter(|e| !e.is_empty()) else {
        return Err((
            None,
            Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "say which environment the backup is imported into (the form's environment field)",
            ),
        ));
    };
    match file {
        Some((_, name, 0)) => Err((
            Some(environment),
            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{name} is empty")),
        )),
        Some((upload, original_name, bytes)) => Ok(Form {
            environment,
            upload,
            original_name,
            bytes,
        }),
        None => Err((
            Some(environment),
            Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "choose the exported file (steward-….tar) to upload",
            ),
        )),
    }
}

/// Streams a file field to a new upload, refusing it past `limit` bytes.
async fn save(engine: &Engine, mut field: Field<'_>, limit: u64) -> Result<(Upload, u64), Refusal> {
    let internal = |e: std::io::Error| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the upload could not be saved under the data directory: {e}"),
        )
    };
    let upload = engine.receive_upload().await.map_err(internal)?;
    let mut out = tokio::io::BufWriter::with_capacity(
        CHUNK,
        tokio::fs::OpenOptions::new()
            .write(true)
            .open(upload.path())
            .await
            .map_err(internal)?,
    );
    let mut bytes = 0u64;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                bytes += chunk.len() as u64;
                if bytes > limit {
                    return Err(too_large(limit));
                }
                out.write_all(&chunk).await.map_err(internal)?;
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("the upload stopped before its end: {e}"),
                ));
            }
        }
    }
    out.flush().await.map_err(internal)?;
    out.into_inner().sync_all().await.map_err(internal)?;
    Ok((upload, bytes))
}

fn too_large(limit: u64) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the file is larger than the {} an upload may have (storage.upload_limit_mib); import it with `steward backup import` on the server instead",
            human_bytes(limit)
        ),
    )
}

/// Keeps the upload and queues its import; the job's id.
async fn start_import(engine: &Engine, actor: &engine::accounts::Actor, form: Form) -> Result<i64, Refusal> {
    if engine.config().environment(&form.environment).is_none() {
        return Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("there is no environment \"{}\" here", form.environment),
        ));
    }
    let upload = form.upload.keep().await.map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the upload could not be kept: {e}"),
        )
    })?;
    let import = Import {
        upload,
        original_name: form.original_name.clone(),
        bytes: form.bytes,
    };
    let reason = format!("uploaded {}", form.original_name);
    match engine.request_import(actor, &form.environment, import, &reason).await {
        Ok(job) => Ok(job.id),
        Err(e) => {
            // Its own words, and the status the server functions give it; an internal error
            // shows only its reference (the cause is in Steward's log).
            let error = app::error::AppError::from(e);
            Err(Refusal::new(
                error.status(),
                format!("the import was not started: {error}"),
            ))
        }
    }
}
