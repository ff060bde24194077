//! Server functions: the only API the browser sees, one per file, grouped by resource.
//!
//! Each is a public HTTP endpoint under `/api/…` with a stable path, reachable by anyone who
//! passes the IP allowlist — so each one starts by checking the caller's role on the server
//! ([`guard::require`]), whatever the UI shows or hides. Then it takes the [`engine::Engine`]
//! from the context, calls one engine function, and maps the result to a wire type.

pub mod audit;
pub mod auth;
pub mod backups;
pub mod environments;
#[cfg(feature = "ssr")]
pub mod guard;
pub mod jobs;
pub mod maintenance;
pub mod restores;
pub mod users;

#[cfg(feature = "ssr")]
use crate::error::AppError;

/// The engine the server put into the Leptos context for this request.
#[cfg(feature = "ssr")]
pub(crate) fn engine() -> Result<engine::Engine, AppError> {
    leptos::prelude::use_context::<engine::Engine>()
        .ok_or_else(|| AppError::internal("no Engine in the Leptos context: the server wiring is broken"))
}
