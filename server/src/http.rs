//! The HTTP side: one axum router for pages, server functions, static files and `/healthz`.
//!
//! The router is served with `into_make_service_with_connect_info::<SocketAddr>()` so that
//! the client address is known to every handler (the access issue builds the allowlist on it).

use std::{net::SocketAddr, time::Duration};

use axum::{Router, extract::State, http::StatusCode, middleware, response::IntoResponse, routing::get};
use engine::Engine;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// How long `/healthz` waits for the database before answering 503.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, axum::extract::FromRef)]
struct AppState {
    leptos_options: LeptosOptions,
    engine: Engine,
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
pub async fn router(engine: Engine) -> anyhow::Result<Router> {
    let routes = routes(engine.clone());
    let routes = crate::sessions::layer(routes, &engine).await?;
    Ok(routes
        .layer(middleware::from_fn(crate::access::same_origin_writes))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(
            crate::access::Allowlist::new(engine),
            crate::access::allowlist,
        )))
}

fn routes(engine: Engine) -> Router {
    let leptos_options = leptos_options(&engine);
    let routes = generate_route_list(app::App);
    let state = AppState {
        leptos_options: leptos_options.clone(),
        engine: engine.clone(),
    };
    // Pages, server functions and the not-found page all render with the engine at hand.
    let context = move || provide_context(engine.clone());

    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/jobs/{id}/events", get(crate::job_feed::events))
        .route("/api/jobs/{id}/log.txt", get(crate::job_feed::download))
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let leptos_options = leptos_options.clone();
            move || app::shell(leptos_options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            context,
            app::shell,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
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
