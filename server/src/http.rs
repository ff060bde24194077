//! The HTTP side: one axum router for pages, server functions, static files, `/healthz` and
//! `/metrics` (Prometheus; [`crate::metrics`]).
//!
//! The router is served with `into_make_service_with_connect_info::<SocketAddr>()` so that
//! the client address is known to every handler (the access issue builds the allowlist on it).
//!
//! **Statuses mean what they say.** A server function that fails answers with its typed error
//! (`app::error::AppError`, JSON) under the status [`AppError::status`] gives it: 401, 403,
//! 404, 409, 422, 429, 400 for arguments that cannot be read, and 500 only for `Internal`.
//! `server_fn` itself answers every error with 500; [`server_fn_status`] sets the real one.
//! A plain HTML form post (no JavaScript) is left alone: it gets the usual redirect back to
//! the page, with the error in the URL, which the page shows. Refusals are logged once, at
//! INFO; only internal errors are ERROR lines. A body larger than [`MAX_BODY_BYTES`] is
//! refused with 413 before a server function reads it. `/` and the pages that send a visitor
//! to sign in are real redirects (303, 302) for every client, with or without JavaScript.

use std::{net::SocketAddr, time::Duration};

use app::error::AppError;
use axum::{
    Router,
    body::{Body, HttpBody},
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use engine::Engine;
use futures::StreamExt;
use leptos::{prelude::*, server_fn::error::SERVER_FN_ERROR_HEADER};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// How long `/healthz` waits for the database before answering 503.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest request body Steward reads. Server-function arguments are a few hundred bytes;
/// the limit keeps a careless or hostile client from making the server buffer megabytes.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The same limit in words, for the 413 answer.
const MAX_BODY_WORDS: &str = "2 MiB";

/// How much of a refused body is read (and dropped) before the 413 goes out.
const DISCARD_AT_MOST: usize = 16 * 1024 * 1024;

/// A server function's error body is a few hundred bytes of JSON; more is not one of ours.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Where `/` sends a browser: the console's first page.
const START_PAGE: &str = "/environments";

#[derive(Clone, axum::extract::FromRef)]
struct AppState {
    leptos_options: LeptosOptions,
    engine: Engine,
    metrics: crate::metrics::Endpoint,
}

/// The Leptos settings derived from Steward's configuration (cargo-leptos' own variables are
/// not needed at run time).
pub fn leptos_options(engine: &Engine) -> LeptosOptions {
    let config = engine.config();
    LeptosOptions::builder()
        .output_name(app::OUTPUT_NAME)
        .site_root(config.server.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.server.listen)
        .env(leptos::config::Env::PROD)
        .build()
}

/// Every route Steward answers, behind its layers. From the outside in: the IP allowlist (before
/// anything else, on every route), request tracing, the cross-site write check, sessions.
///
/// Fails when `metrics.token` is configured but cannot be read (see [`crate::metrics`]).
pub async fn router(engine: Engine) -> anyhow::Result<Router> {
    let metrics = crate::metrics::Endpoint::new(&engine)?;
    let routes = routes(engine.clone(), metrics).merge(uploads(engine.clone()));
    let routes = crate::sessions::layer(routes, &engine).await?;
    Ok(routes
        .layer(middleware::from_fn(crate::access::same_origin_writes))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(
            crate::access::Allowlist::new(engine),
            crate::access::allowlist,
        )))
}

fn routes(engine: Engine, metrics: crate::metrics::Endpoint) -> Router {
    let leptos_options = leptos_options(&engine);
    // `/` is a plain HTTP redirect (below), so it works without JavaScript and costs nothing to
    // render; the app keeps its own `/` route for navigation inside the hydrated app.
    let routes: Vec<_> = generate_route_list(app::App)
        .into_iter()
        .filter(|route| route.path() != "/")
        .collect();
    let state = AppState {
        leptos_options: leptos_options.clone(),
        engine: engine.clone(),
        metrics,
    };
    // Pages, server functions and the not-found page all render with the engine at hand.
    let context = move || provide_context(engine.clone());

    Router::new()
        .route("/", get(|| async { Redirect::to(START_PAGE) }))
        .route("/healthz", get(healthz))
        // Prometheus signs in with a bearer token, if any, never a session.
        .route("/metrics", get(crate::metrics::scrape))
        .route("/api/jobs/{id}/events", get(crate::job_feed::events))
        .route("/api/jobs/{id}/log.txt", get(crate::job_feed::download))
        .route("/api/backups/{id}/export.tar", get(crate::transfer::download))
        .route("/api/audit/export.csv", get(crate::audit_export::csv))
        .route("/api/audit/export.jsonl", get(crate::audit_export::jsonl))
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let leptos_options = leptos_options.clone();
            move || app::shell(leptos_options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            context,
            app::shell,
        ))
        .layer(middleware::from_fn(server_fn_status))
        .layer(middleware::from_fn(page_redirects))
        .layer(middleware::from_fn(limit_body))
        // What `server_fn` reads a body with; equal to ours so that no body gets past one limit
        // and is refused by the other.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The one route whose body may be large: an uploaded export, streamed to disk under its own
/// limit (`storage.upload_limit_mib`, see [`crate::transfer`]) instead of [`MAX_BODY_BYTES`].
fn uploads(engine: Engine) -> Router {
    Router::new()
        .route("/api/backups/import", axum::routing::post(crate::transfer::upload))
        .layer(DefaultBodyLimit::disable())
        .with_state(engine)
}

/// Gives a failed server function's answer the status its error means (see the module docs)
/// and logs a refusal once, below ERROR. Answers that are not server-function errors — pages,
/// successes, the redirects of plain form posts — pass untouched.
async fn server_fn_status(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, ERROR_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(%path, error = %e, "could not read a server function's error answer");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    // Not our error type (cannot happen while every server function returns `AppError`): the
    // answer stays a 500.
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = error.status();
        if !parts.status.is_server_error() {
            tracing::info!(%path, status = parts.status.as_u16(), %error, "request refused");
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Makes a page that redirects (a visitor sent to sign in) a real 302 whoever asks. Leptos sets
/// the status only for requests that accept `text/html`; anything else (curl, a monitor, a
/// load test) got a 200 with a `Location` header and an empty page. Server functions keep
/// their own convention: the hydrated app follows their redirect header itself.
async fn page_redirects(request: Request, next: Next) -> Response {
    let is_page = request.method() == axum::http::Method::GET && !request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    if is_page && response.status() == StatusCode::OK && response.headers().contains_key(header::LOCATION) {
        *response.status_mut() = StatusCode::FOUND;
        response
            .headers_mut()
            .remove(leptos::server_fn::redirect::REDIRECT_HEADER);
    }
    response
}

/// Refuses a request body larger than [`MAX_BODY_BYTES`] with 413: at once when its length is
/// declared, otherwise (chunked) once that much has arrived. A body within the limit is handed
/// on as it came.
async fn limit_body(request: Request, next: Next) -> Response {
    let hint = request.body().size_hint();
    let limit = MAX_BODY_BYTES as u64;
    if hint.lower() > limit {
        let (parts, body) = request.into_parts();
        // A client waiting for "100 Continue" has not sent the body: nothing to read.
        if !parts.headers.contains_key(header::EXPECT) {
            discard(body.into_data_stream()).await;
        }
        return too_large(&parts);
    }
    if hint.upper().is_some_and(|upper| upper <= limit) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut buffered = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            // The client stopped sending; nobody is there to read an answer.
            return StatusCode::BAD_REQUEST.into_response();
        };
        if buffered.len() + chunk.len() > MAX_BODY_BYTES {
            discard(stream).await;
            return too_large(&parts);
        }
        buffered.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(buffered))).await
}

/// Reads and drops what is left of a refused body, up to [`DISCARD_AT_MOST`]: a client that
/// is still sending when the answer comes and the connection closes may see the connection
/// reset instead of the 413. Past that amount the connection is closed all the same.
async fn discard(mut stream: axum::body::BodyDataStream) {
    let mut read = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        read += chunk.len();
        if read > DISCARD_AT_MOST {
            break;
        }
    }
}

/// 413, with `AppError::TooLarge` as JSON like every server-function error (the hydrated app
/// shows its message), or as a sentence for a browser's plain form post.
fn too_large(request: &axum::http::request::Parts) -> Response {
    let error = AppError::TooLarge {
        limit: MAX_BODY_WORDS.to_string(),
    };
    let path = request.uri.path();
    tracing::info!(%path, status = 413, %error, "request refused");
    let wants_html = request
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let mut response = if wants_html {
        (StatusCode::PAYLOAD_TOO_LARGE, error.to_string()).into_response()
    } else {
        let body = serde_json::to_vec(&error).unwrap_or_default();
        let mut response = (StatusCode::PAYLOAD_TOO_LARGE, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    };
    if let Ok(path) = HeaderValue::from_str(path) {
        response.headers_mut().insert(SERVER_FN_ERROR_HEADER, path);
    }
    // The client may still be sending: tell it to stop rather than keep the connection.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 200 when the database answers, 503 when it does not (load balancers take the instance out).
async fn healthz(State(engine): State<Engine>) -> impl IntoResponse {
    match engine.db().ping(HEALTH_TIMEOUT).await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
