use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::environments::get_dashboard,
    components::{EnvBadge, ErrorMessage, current_path, require_role},
    format::{ago, bytes, elapsed},
    types::{EnvironmentHealth, EnvironmentSummary, Role},
    use_current_user, use_environments,
};

/// The dashboard: every configured environment with its status at a glance — ok, backup
/// overdue, last job failed, in maintenance, a failed restore waiting — the last backup's age,
/// the last proven restore, the next scheduled run, a running job, storage used; with a filter
/// box.
///
/// The filter works without JavaScript (a GET form: press Enter, the server filters by `?q=`)
/// and, once the page is hydrated, narrows the list as you type.
#[component]
pub fn EnvironmentsPage() -> impl IntoView {
    let user = use_current_user();
    let environments = use_environments();
    let health = Resource::new(|| (), |_| get_dashboard());
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
                    // The cards show without the figures if those cannot be read.
                    let health = health.await.unwrap_or_default();
                    view! { <EnvironmentsView list health initial filter /> }.into_any()
                })
            }}
        </Suspense>
    }
}

#[component]
fn EnvironmentsView(
    list: Result<Vec<EnvironmentSummary>, crate::error::AppError>,
    health: Vec<EnvironmentHealth>,
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
            Ok(list) => view! { <EnvironmentList list health filter=filter.read_only() /> }.into_any(),
            Err(error) => view! { <ErrorMessage error /> }.into_any(),
        }}
    }
}

#[component]
fn EnvironmentList(
    list: Vec<EnvironmentSummary>,
    health: Vec<EnvironmentHealth>,
    filter: ReadSignal<String>,
) -> impl IntoView {
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
                            {shown
                                .into_iter()
                                .map(|env| {
                                    let health = health.iter().find(|h| h.environment == env.name).cloned();
                                    view! { <EnvironmentCard env health /> }
                                })
                                .collect_view()}
                        </ul>
                    }
                        .into_any()
                }}
            }
        }}
    }
}

#[component]
fn EnvironmentCard(env: EnvironmentSummary, health: Option<EnvironmentHealth>) -> impl IntoView {
    let href = format!("/environments/{}", env.name);
    let name = env.name.clone();
    let data_env = env.name.clone();
    let colour = env.colour.clone();
    let status = health.as_ref().map(|h| h.status.clone()).unwrap_or_default();
    view! {
        <li class="env-card" style:--env-colour=colour data-env=data_env data-status=status>
            <a href=href>
                <EnvBadge env />
                <code class="env-name">{name}</code>
            </a>
            {health.map(|health| view! { <HealthFigures health /> })}
        </li>
    }
}

/// The status in a coloured pill, then the figures, one short line each.
#[component]
fn HealthFigures(health: EnvironmentHealth) -> impl IntoView {
    let now = health.as_of_ms;
    let pill = if health.is_ok() {
        "health health-ok"
    } else {
        "health health-bad"
    };
    let status = match &health.why {
        Some(why) => format!("{}: {why}", health.status),
        None => health.status.clone(),
    };
    let last_backup = match &health.last_backup {
        Some((_, at)) => format!("Last backup {}", ago(*at, now)),
        None => "No backup yet".to_string(),
    };
    let proven = match &health.last_proven {
        Some((_, at)) => format!("Last proven restore {}", ago(*at, now)),
        None => "Never proven by a test restore".to_string(),
    };
    let next = health.next_run.as_ref().map(|(at, what)| {
        let what = what.strip_prefix("action:").unwrap_or(what);
        format!("Next {what} in {}", elapsed(now, *at))
    });
    let running = health.running.as_ref().map(|job| {
        let href = format!("/jobs/{}", job.id);
        let progress = format!(
            " running: step {} of {}",
            (job.steps_done + 1).min(job.steps),
            job.steps
        );
        view! {
            <li class="health-running">
                <a href=href>{job.title.clone()}</a>
                {progress}
            </li>
        }
    });
    let stored = format!(
        "{} in {} backup{}",
        bytes(health.stored_bytes),
        health.backup_count,
        if health.backup_count == 1 { "" } else { "s" }
    );
    view! {
        <p class=pill data-testid="health-status">{status}</p>
        <ul class="health-figures">
            <li>{last_backup}</li>
            <li>{proven}</li>
            {next.map(|next| view! { <li data-testid="health-next">{next}</li> })}
            {running}
            <li class="muted">{stored}</li>
        </ul>
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
