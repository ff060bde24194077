//! Who is calling: the session, the signed-in user, the role check. Server side only.
//!
//! The session holds the user's id and the sign-in time, nothing else; the user is read from
//! the database on every call, so a role change or a disabled account takes effect at once.
//! A session older than `sessions.absolute_lifetime_hours` ends however busy it was; the idle
//! timeout is the session layer's expiry.

use engine::{
    accounts::{Actor, ClientIp, User},
    db::now_ms,
    users::Role,
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::error::AppError;

const SESSION_KEY: &str = "steward.user";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SignedIn {
    user_id: i64,
    signed_in_at_ms: i64,
}

/// The signed-in caller of a server function.
pub struct Caller {
    pub user: User,
    pub actor: Actor,
}

pub async fn session() -> Result<Session, AppError> {
    if leptos::prelude::use_context::<axum::http::request::Parts>().is_none() {
        return Err(super::request_context_missing());
    }
    leptos_axum::extract::<Session>().await.map_err(AppError::internal)
}

/// The client address found by the IP allowlist.
pub async fn client_ip() -> Option<String> {
    leptos_axum::extract::<axum::Extension<ClientIp>>()
        .await
        .ok()
        .map(|axum::Extension(ClientIp(ip))| ip.to_string())
}

/// The signed-in user, or `None`. Ends sessions past their absolute lifetime and sessions of
/// users who were disabled or removed.
pub async fn caller() -> Result<Option<Caller>, AppError> {
    let engine = super::engine()?;
    let session = session().await?;
    caller_in(&engine, &session, client_ip().await).await
}

/// [`caller`] for handlers outside Leptos (the job log stream), given what they extracted.
pub async fn caller_in(
    engine: &engine::Engine,
    session: &Session,
    client_ip: Option<String>,
) -> Result<Option<Caller>, AppError> {
    let Some(signed_in) = session.get::<SignedIn>(SESSION_KEY).await.map_err(AppError::internal)? else {
        return Ok(None);
    };
    let lifetime_ms = i64::from(engine.config().sessions.absolute_lifetime_hours) * 3_600_000;
    let user = engine.user(signed_in.user_id).await?;
    match user {
        Some(user) if !user.disabled && now_ms() - signed_in.signed_in_at_ms < lifetime_ms => {
            let actor = Actor {
                username: Some(user.username.clone()),
                client_ip,
            };
            Ok(Some(Caller { user, actor }))
        }
        _ => {
            session.flush().await.map_err(AppError::internal)?;
            Ok(None)
        }
    }
}

/// The caller, if signed in with at least `role`: `Unauthorized` when not signed in,
/// `Forbidden` when the role is not enough.
pub async fn require(role: Role) -> Result<Caller, AppError> {
    let caller = caller().await?.ok_or(AppError::Unauthorized)?;
    if caller.user.role.allows(role) {
        Ok(caller)
    } else {
        Err(AppError::Forbidden)
    }
}

/// Starts a session for `user` under a fresh id (the id a visitor had before signing in is
/// never the id of a signed-in session).
pub async fn sign_in(session: &Session, user: &User) -> Result<(), AppError> {
    session.cycle_id().await.map_err(AppError::internal)?;
    let signed_in = SignedIn {
        user_id: user.id,
        signed_in_at_ms: now_ms(),
    };
    session.insert(SESSION_KEY, signed_in).await.map_err(AppError::internal)
}

/// Sends a plain HTML form post (no JavaScript) on to `path` once it succeeded. Calls from the
/// hydrated app are left alone: the page itself loads `path` afresh, so that everything on it
/// is rendered for the new session.
pub async fn redirect_plain_form(path: &str) {
    let headers = leptos_axum::extract::<axum::http::HeaderMap>()
        .await
        .unwrap_or_default();
    let accepts_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if accepts_html {
        leptos_axum::redirect(path);
    }
}
