use leptos::prelude::*;

use crate::types::JobStatus;

/// A job's state as a coloured word.
#[component]
pub fn JobStatusBadge(status: JobStatus) -> impl IntoView {
    view! { <span class=format!("job-status job-{}", status.as_str())>{status.as_str()}</span> }
}
