use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::jobs::list_jobs,
    components::{ErrorMessage, JobTable, ListFilter, current_path, require_role},
    types::{JobStatus, Role},
    use_current_user, use_environments,
};

/// The filter keys in the address: `/jobs?env=prod&state=failed&kind=command&before=120`.
const FILTER_KEYS: [&str; 3] = ["env", "kind", "state"];

/// All jobs, newest first, filtered by environment, kind and state, 50 a page.
#[component]
pub fn JobsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || query.with(|q| ListFilter::from_query("/jobs", &FILTER_KEYS, q));
    let jobs = Resource::new(filter, |f| {
        list_jobs(Some(f.get("env")), Some(f.get("kind")), Some(f.get("state")), f.before)
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
                            let older = page.older.map(|before| current.older(before));
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
                        {current.links("Environment", "env", env_names)}
                        {current.links("State", "state", states)}
                        {current.links("Kind", "kind", vec!["command".to_string()])}
                        {body}
                    }
                        .into_any()
                })
            }}
        </Suspense>
    }
}
