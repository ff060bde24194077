//! Route components, one per file, each named `*Page`.

mod environment_page;
mod environments_page;
mod not_found_page;

pub use environment_page::EnvironmentPage;
pub use environments_page::EnvironmentsPage;
pub use not_found_page::NotFoundPage;

/// Sets the HTTP status of the server-rendered response (no effect in the browser).
pub(crate) fn set_status(status: u16) {
    #[cfg(feature = "ssr")]
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = http::StatusCode::from_u16(status)
    {
        response.set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = status;
}
