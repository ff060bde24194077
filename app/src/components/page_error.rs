use leptos::prelude::*;
use leptos_meta::Title;

use crate::{components::ErrorMessage, error::AppError};

/// A page whose subject could not be loaded: its heading, the error, and the way back. A "not
/// found" answers with HTTP status 404, so that links to gone things read as such.
#[component]
pub fn PageError(
    /// The page's heading, e.g. "Backup".
    heading: &'static str,
    error: AppError,
    /// Where to go instead, and what to call it.
    back: (&'static str, &'static str),
) -> impl IntoView {
    if matches!(error, AppError::NotFound { .. }) {
        crate::pages::set_status(404);
    }
    let (href, label) = back;
    view! {
        <Title text=heading />
        <h1>{heading}</h1>
        <ErrorMessage error />
        <p><a href=href>{label}</a></p>
    }
}
