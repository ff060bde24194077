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
pub mod notifications;
pub mod restores;
pub mod retention;
pub mod schedules;
pub mod users;

#[cfg(feature = "ssr")]
use crate::error::AppError;

/// The engine the server put into the Leptos context for this request.
#[cfg(feature = "ssr")]
pub(crate) fn engine() -> Result<engine::Engine, AppError> {
    leptos::prelude::use_context::<engine::Engine>().ok_or_else(request_context_missing)
}

/// The error for a server function that finds its request's context empty. Either the client
/// went away (a closed tab, the end of a load test): the page's reactive owner was disposed
/// while a resource was still loading, so every context is gone, the request's own `Parts`
/// included — nobody reads the answer, nothing is wrong. Or the request is there but the
/// engine is not: the server wiring is broken, an internal error.
#[cfg(feature = "ssr")]
pub(crate) fn request_context_missing() -> AppError {
    if leptos::prelude::use_context::<http::request::Parts>().is_none() {
        tracing::debug!("a server function ran after its request ended (the client went away)");
        AppError::Transport("the request ended before the answer was ready".to_string())
    } else {
        AppError::internal("no Engine in the Leptos context: the server wiring is broken")
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use leptos::prelude::{Owner, provide_context};

    use super::engine;
    use crate::error::AppError;

    #[test]
    fn a_request_that_ended_is_not_an_internal_error() {
        // The page's owner is gone: nothing of the request is left in the context.
        let owner = Owner::new();
        let error = owner.with(|| engine().err());
        assert!(matches!(error, Some(AppError::Transport(_))), "{error:?}");
    }

    #[test]
    fn a_request_without_the_engine_is_broken_wiring() {
        let owner = Owner::new();
        let error = owner.with(|| {
            let (parts, ()) = http::Request::new(()).into_parts();
            provide_context(parts);
            engine().err()
        });
        assert!(matches!(error, Some(AppError::Internal { .. })), "{error:?}");
    }
}
