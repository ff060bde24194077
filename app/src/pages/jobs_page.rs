use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::jobs::list_jobs,
    components::{ErrorMessage, JobTable, current_path, require_role},
    types::{JobStatus, Role},
    use_current_user, use_environments,
};

/// The filter in the address: `/jobs?env=prod&state=failed&kind=command&before=120`.
#[derive(Debug, Clone, PartialEq, Default)]
struct Filter {
    env: String,
    kind: String,
    state: String,
    before: Option<i64>,
}

impl Filter {
    /// This filter with one key changed (and paging reset), as a link.
    fn with(&self, key: &str, value: &str) -> String {
        let mut next = Filter {
            before: None,
            ..self.clone()
        };
        match key {
            "env" => next.env = value.into(),
            "kind" => next.kind = value.into(),
            _ => next.state = value.into(),
        }
        next.href()
    }

    fn href(&self) -> String {
        let mut query: Vec<String> = [("env", &self.env), ("kind", &self.kind), ("state", &self.state)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if let Some(before) = self.before {
            query.push(format!("before={before}"));
        }
        if query.is_empty() {
            "/jobs".into()
        } else {
            format!("/jobs?{}", query.join("&"))
        }
    }
}

/// All jobs, newest first, filtered by environment, kind and state, 50 a page.
#[component]
pub fn JobsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        query.with(|q| Filter {
            env: q.get("env").unwrap_or_default(),
            kind: q.get("kind").unwrap_or_default(),
            state: q.get("state").unwrap_or_default(),
            before: q.get("before").and_then(|b| b.parse().ok()),
        })
    };
    let jobs = Resource::new(filter, |f| {
        list_jobs(Some(f.env), Some(f.kind), Some(f.state), f.before)
    });
    let environments = use_environments();
    let user = use_current_user();
    let here = current_path();

    view! {
        <Title text="Jobs" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let here = here.clone();
                Suspend::new(async move {
                    if let Err(refusal) = require_role(user.await, Role::Viewer, &here) {
                        return refusal;
                    }
                    let current = filter();
                    let env_names: Vec<String> = environments
                        .await
                        .map(|list| list.into_iter().map(|e| e.name).collect())
                        .unwrap_or_default();
                    let states: Vec<String> = JobStatus::ALL.iter().map(|s| s.as_str().to_string()).collect();
                    let body = match jobs.await {
                        Ok(page) if page.jobs.is_empty() => {
                            view! { <p class="empty">"No jobs match."</p> }.into_any()
                        }
                        Ok(page) => {
                            let older = page.older.map(|before| Filter { before: Some(before), ..current.clone() }.href());
                            view! {
                                <JobTable jobs=page.jobs />
                                {older.map(|href| view! { <p><a href=href>"Older jobs"</a></p> })}
                            }
                                .into_any()
                        }
                        Err(error) => view! { <ErrorMessage error /> }.into_any(),
                    };
                    view! {
                        <h1>"Jobs"</h1>
                        <p class="muted">"Every backup, restore, clean-up and command, newest first. Times are UTC."</p>
                        <FilterRow label="Environment" key="env" values=env_names current=current.clone() />
                        <FilterRow label="State" key="state" values=states current=current.clone() />
                        <FilterRow label="Kind" key="kind" values=vec!["command".to_string()] current=current.clone() />
                        {body}
                    }
                        .into_any()
                })
            }}
        </Suspense>
    }
}

/// One filter as a row of links ("All", then each value): works without JavaScript and
/// needs no `<select>`.
#[component]
fn FilterRow(label: &'static str, key: &'static str, values: Vec<String>, current: Filter) -> impl IntoView {
    let selected = match key {
        "env" => current.env.clone(),
        "kind" => current.kind.clone(),
        _ => current.state.clone(),
    };
    let all_href = current.with(key, "");
    let all_current = selected.is_empty().then_some("page");
    view! {
        <nav class="filter-row" aria-label=label>
            <span class="filter-label">{label}</span>
            <a href=all_href aria-current=all_current>"All"</a>
            {values
                .into_iter()
                .map(|value| {
                    let href = current.with(key, &value);
                    let is_current = (value == selected).then_some("page");
                    view! { <a href=href aria-current=is_current>{value}</a> }
                })
                .collect_view()}
        </nav>
    }
}
