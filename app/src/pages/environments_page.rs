use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    components::{EnvBadge, ErrorMessage, current_path, require_role},
    types::{EnvironmentSummary, Role},
    use_current_user, use_environments,
};

/// The list of configured environments, with a filter box.
///
/// The filter works without JavaScript (a GET form: press Enter, the server filters by `?q=`)
/// and, once the page is hydrated, narrows the list as you type.
#[component]
pub fn EnvironmentsPage() -> impl IntoView {
    let user = use_current_user();
    let environments = use_environments();
    let here = current_path();
    let initial = use_query_map().with_untracked(|q| q.get("q").unwrap_or_default());
    let filter = RwSignal::new(initial.clone());

    view! {
        <Title text="Environments" />
        <Suspense fallback=|| view! { <p class="muted">"Loading environments…"</p> }>
            {move || {
                let (here, initial) = (here.clone(), initial.clone());
                Suspend::new(async move {
                    if let Err(refusal) = require_role(user.await, Role::Viewer, &here) {
                        return refusal;
                    }
                    let list = environments.await;
                    view! { <EnvironmentsView list initial filter /> }.into_any()
                })
            }}
        </Suspense>
    }
}

#[component]
fn EnvironmentsView(
    list: Result<Vec<EnvironmentSummary>, crate::error::AppError>,
    initial: String,
    filter: RwSignal<String>,
) -> impl IntoView {
    view! {
        <div class="page-head">
            <h1>"Environments"</h1>
            <form class="filter" method="get" action="/environments" role="search">
                <label for="env-filter">"Filter"</label>
                <input
                    id="env-filter"
                    type="search"
                    name="q"
                    placeholder="Name or label"
                    autocomplete="off"
                    // `value` for the server-rendered page, `prop:value` to follow the signal.
                    value=initial
                    prop:value=filter
                    on:input=move |ev| filter.set(event_target_value(&ev))
                />
            </form>
        </div>
        {match list {
            Ok(list) if list.is_empty() => view! { <NoEnvironments /> }.into_any(),
            Ok(list) => view! { <EnvironmentList list filter=filter.read_only() /> }.into_any(),
            Err(error) => view! { <ErrorMessage error /> }.into_any(),
        }}
    }
}

#[component]
fn EnvironmentList(list: Vec<EnvironmentSummary>, filter: ReadSignal<String>) -> impl IntoView {
    let total = list.len();
    let visible = move || filter.with(|f| list.iter().filter(|env| env.matches(f)).cloned().collect::<Vec<_>>());

    view! {
        {move || {
            let shown = visible();
            let count = shown.len();
            let status = if count == total {
                format!("{total} environments")
            } else {
                format!("{count} of {total} environments")
            };
            view! {
                <p class="muted" aria-live="polite" data-testid="env-count">{status}</p>
                {if shown.is_empty() {
                    view! {
                        <p class="empty">"No environment matches \"" {filter.get()} "\"."</p>
                    }
                        .into_any()
                } else {
                    view! {
                        <ul class="env-cards">
                            {shown.into_iter().map(|env| view! { <EnvironmentCard env /> }).collect_view()}
                        </ul>
                    }
                        .into_any()
                }}
            }
        }}
    }
}

#[component]
fn EnvironmentCard(env: EnvironmentSummary) -> impl IntoView {
    let href = format!("/environments/{}", env.name);
    let name = env.name.clone();
    let data_env = env.name.clone();
    let colour = env.colour.clone();
    view! {
        <li class="env-card" style:--env-colour=colour data-env=data_env>
            <a href=href>
                <EnvBadge env />
                <code class="env-name">{name}</code>
            </a>
        </li>
    }
}

#[component]
fn NoEnvironments() -> impl IntoView {
    view! {
        <div class="empty">
            <p>"No environments are configured yet."</p>
            <p>
                "Add an " <code>"[[environments]]"</code> " table with a " <code>"name"</code> ", "
                <code>"label"</code> " and " <code>"colour"</code>
                " to steward.toml (see steward.example.toml) and restart Steward."
            </p>
        </div>
    }
}
