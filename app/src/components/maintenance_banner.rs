use leptos::prelude::*;

use crate::{format::utc, types::MaintenanceState};

/// "Demo shop is in maintenance mode since … — entered by restore #12 (alice): reason", on
/// every page of an environment in maintenance. `label` is what people call the environment
/// (its name when it is no longer configured).
#[component]
pub fn MaintenanceBanner(maintenance: MaintenanceState, label: String) -> impl IntoView {
    let by = match maintenance.job_id {
        Some(job) => view! {
            <a href=format!("/jobs/{job}")>{format!("restore #{job}")}</a>
            {format!(" (requested by {})", maintenance.entered_by)}
        }
        .into_any(),
        None => view! { {maintenance.entered_by.clone()} }.into_any(),
    };
    view! {
        <div class="banner banner-maintenance" role="status" data-testid="maintenance-banner">
            <p>
                <strong>{format!("{label} is in maintenance mode")}</strong>
                {format!(" since {} — entered by ", utc(maintenance.since_ms))}
                {by}
                {format!(": {}", maintenance.reason)}
            </p>
        </div>
    }
}
