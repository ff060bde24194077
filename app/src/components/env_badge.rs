use leptos::prelude::*;

use crate::types::EnvironmentSummary;

/// An environment's label on its own colour, with a "production" mark where it applies.
#[component]
pub fn EnvBadge(env: EnvironmentSummary) -> impl IntoView {
    view! {
        <span class="env-badge" style:--env-colour=env.colour.clone()>
            <span class="env-swatch" aria-hidden="true"></span>
            {env.label.clone()}
            {env.production.then(|| view! { <span class="prod-mark">"production"</span> })}
        </span>
    }
}
