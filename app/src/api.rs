//! Server functions: the only API the browser sees, one per file, grouped by resource.
//!
//! Each is a public HTTP endpoint under `/api/…` with a stable path. The body of each is thin:
//! check the caller (from the access issue on), take the [`engine::Engine`] from the context,
//! call one engine function, map the result to a wire type.

pub mod environments;

#[cfg(feature = "ssr")]
use crate::error::AppError;

/// The engine the server put into the Leptos context for this request.
#[cfg(feature = "ssr")]
pub(crate) fn engine() -> Result<engine::Engine, AppError> {
    leptos::prelude::use_context::<engine::Engine>()
        .ok_or_else(|| AppError::internal("no Engine in the Leptos context: the server wiring is broken"))
}
