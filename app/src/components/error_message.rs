use leptos::prelude::*;

use crate::error::AppError;

/// An error as a person reads it, in a box that screen readers announce.
#[component]
pub fn ErrorMessage(error: AppError) -> impl IntoView {
    view! {
        <p class="error" role="alert">
            {error.to_string()}
        </p>
    }
}
