use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::{
    api::environments::get_environment,
    components::{EnvBadge, ErrorMessage, current_path, require_role},
    error::AppError,
    types::Role,
    use_current_user,
};

/// One environment: what Steward knows about it.
#[component]
pub fn EnvironmentPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let environment = Resource::new(name, get_environment);
    let user = use_current_user();
    let here = current_path();

    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let here = here.clone();
                Suspend::new(async move {
                if let Err(refusal) = require_role(user.await, Role::Viewer, &here) {
                    return refusal;
                }
                match environment.await {
                    Ok(env) => {
                        view! {
                            <Title text=env.label.clone() />
                            <div class="env-head" style:--env-colour=env.colour.clone()>
                                <h1><EnvBadge env=env.clone() /></h1>
                            </div>
                            <dl class="facts">
                                <dt>"Name"</dt>
                                <dd><code>{env.name.clone()}</code></dd>
                                <dt>"Label"</dt>
                                <dd>{env.label.clone()}</dd>
                                <dt>"Production"</dt>
                                <dd>
                                    {if env.production {
                                        "Yes: destructive actions ask for extra confirmation."
                                    } else {
                                        "No"
                                    }}
                                </dd>
                                <dt>"Colour"</dt>
                                <dd><code>{env.colour.clone()}</code></dd>
                            </dl>
                        }
                            .into_any()
                    }
                    Err(error) => {
                        if matches!(error, AppError::NotFound { .. }) {
                            super::set_status(404);
                        }
                        view! {
                            <Title text="Not found" />
                            <h1>"Environment"</h1>
                            <ErrorMessage error />
                            <p><a href="/environments">"All environments"</a></p>
                        }
                            .into_any()
                    }
                }
            })
            }}
        </Suspense>
    }
}
