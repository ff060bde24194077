use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::audit::list_audit_events,
    components::{ErrorMessage, current_path, require_role},
    format::utc,
    types::{AuditEntry, AuditQuery, AuditView, ChainCheck, Role},
    use_current_user,
};

/// Actions and families offered in the filter's suggestions (any other name can be typed).
const ACTION_SUGGESTIONS: [&str; 12] = [
    "backup.*",
    "restore.*",
    "job.*",
    "maintenance.*",
    "schedule.*",
    "user.*",
    "login",
    "logout",
    "access.refused",
    "backup.export",
    "backup.import",
    "job.request",
];

/// The audit log, newest first, 100 a page, under a filter that lives in the address: a plain
/// GET form (works without JavaScript, every filtered view is a link to share), export links of
/// the same filter, and the last check of the log's hash chain.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let audit_query = move || query.with(|q| AuditQuery::from_params(|key| q.get(key)));
    let view_data = Resource::new(audit_query, list_audit_events);
    let user = use_current_user();
    let here = current_path();

    view! {
        <Title text="Audit log" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let here = here.clone();
                let current = audit_query();
                Suspend::new(async move {
                    if let Err(refusal) = require_role(user.await, Role::Viewer, &here) {
                        return refusal;
                    }
                    let data = view_data.await;
                    let environments = data.as_ref().map(|d| d.environments.clone()).unwrap_or_default();
                    let body = match data {
                        Ok(data) => view! { <AuditResults data query=current.clone() /> }.into_any(),
                        Err(error) => view! { <ErrorMessage error /> }.into_any(),
                    };
                    view! {
                        <h1>"Audit log"</h1>
                        <p class="muted">"Who did what, from where, when, and how it ended. Times are UTC."</p>
                        <AuditFilterForm query=current environments />
                        {body}
                    }
                    .into_any()
                })
            }}
        </Suspense>
    }
}

#[component]
fn AuditFilterForm(query: AuditQuery, environments: Vec<String>) -> impl IntoView {
    let outcome = query.outcome.clone();
    let environment = query.environment.clone();
    view! {
        <form class="audit-filter" method="get" action="/audit" role="search">
            <label>"From" <input type="date" name="from" value=query.from /></label>
            <label>"To" <input type="date" name="to" value=query.to /></label>
            <label>"Who" <input type="text" name="actor" value=query.actor placeholder="username" /></label>
            <label>
                "Action"
                <input type="text" name="action" value=query.action placeholder="restore.*" list="audit-actions" />
            </label>
            <datalist id="audit-actions">
                {ACTION_SUGGESTIONS.map(|a| view! { <option value=a></option> }).collect_view()}
            </datalist>
            <label>
                "Environment"
                <select name="environment">
                    <option value="" selected=environment.is_empty()>"any"</option>
                    {environments
                        .into_iter()
                        .map(|env| {
                            let selected = env == environment;
                            view! { <option value=env.clone() selected=selected>{env.clone()}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Outcome"
                <select name="outcome">
                    {["", "ok", "refused", "failed"]
                        .map(|value| {
                            let label = if value.is_empty() { "any" } else { value };
                            view! { <option value=value selected=outcome == value>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>"About" <input type="text" name="target" value=query.target placeholder="job, backup or user" /></label>
            <label>"Text" <input type="search" name="q" value=query.q placeholder="in target or detail" /></label>
            <button type="submit" class="button">"Filter"</button>
            <a href="/audit">"Clear"</a>
        </form>
    }
}

#[component]
fn AuditResults(data: AuditView, query: AuditQuery) -> impl IntoView {
    let AuditView {
        events,
        older,
        searched_to,
        chain,
        ..
    } = data;
    let window = searched_to.map(|id| {
        view! {
            <p class="notice" data-testid="text-window">
                {format!("The text search looked through the events back to #{id}; ")}
                <a href=query.older(id)>"search older events"</a>
                "."
            </p>
        }
    });
    let csv = query.href("/api/audit/export.csv");
    let jsonl = query.href("/api/audit/export.jsonl");
    let newest = query.before.is_some().then(|| query.href("/audit"));
    let list = if events.is_empty() {
        let message = if query.is_filtered() {
            "No event matches this filter."
        } else {
            "No events."
        };
        view! { <p class="empty">{message}</p> }.into_any()
    } else {
        view! { <AuditTable events /> }.into_any()
    };
    view! {
        <ChainStatus chain />
        <p class="audit-export">
            "Export what this filter matches (every page): "
            <a href=csv download="">"CSV"</a>
            " · "
            <a href=jsonl download="">"JSON Lines"</a>
        </p>
        {list}
        {window}
        <p class="pager">
            {newest.map(|href| view! { <a href=href>"Newest events"</a> })}
            {older.filter(|_| searched_to.is_none()).map(|id| view! { <a href=query.older(id)>"Older events"</a> })}
        </p>
    }
}

/// When the hash chain was last walked and what that found.
#[component]
fn ChainStatus(chain: Option<ChainCheck>) -> impl IntoView {
    match chain {
        None => view! {
            <p class="chain-status muted">"The log's hash chain has not been verified yet (Steward does it every hour; `steward audit verify` now)."</p>
        }
        .into_any(),
        Some(check) if check.ok => {
            let head = check.head_id.map(|id| format!(", up to event {id}")).unwrap_or_default();
            view! {
                <p class="chain-status chain-ok">
                    {format!(
                        "Hash chain verified {} by {}: intact, {} event{}{head}.",
                        utc(check.at_ms),
                        check.by,
                        check.checked,
                        if check.checked == 1 { "" } else { "s" }
                    )}
                </p>
            }
            .into_any()
        }
        Some(check) => view! {
            <p class="chain-status chain-broken error" role="alert">
                {format!(
                    "Hash chain verified {} by {}: BROKEN — {}. Events after the first {} cannot be trusted.",
                    utc(check.at_ms),
                    check.by,
                    check.problem.unwrap_or_default(),
                    check.checked
                )}
            </p>
        }
        .into_any(),
    }
}

#[component]
fn AuditTable(events: Vec<AuditEntry>) -> impl IntoView {
    view! {
        <table class="data audit">
            <thead>
                <tr>
                    <th>"Time"</th>
                    <th>"Who"</th>
                    <th>"From"</th>
                    <th>"Action"</th>
                    <th>"About"</th>
                    <th>"Environment"</th>
                    <th>"Outcome"</th>
                    <th>"Detail"</th>
                </tr>
            </thead>
            <tbody>
                {events
                    .into_iter()
                    .map(|e| {
                        let outcome_class = format!("outcome outcome-{}", e.outcome);
                        let about = match (e.subject_href(), e.target.clone()) {
                            (Some(href), Some(target)) => view! { <a href=href>{target}</a> }.into_any(),
                            (_, target) => target.unwrap_or_default().into_any(),
                        };
                        let environment = e.environment.clone().map(|env| {
                            let href = format!("/environments/{}", crate::types::encode(&env));
                            view! { <a href=href>{env}</a> }
                        });
                        view! {
                            <tr id=format!("event-{}", e.id)>
                                <td class="nowrap">{utc(e.at_ms)}</td>
                                <td>{e.actor.unwrap_or_else(|| "—".into())}</td>
                                <td>{e.client_ip.unwrap_or_default()}</td>
                                <td><code>{e.action}</code></td>
                                <td>{about}</td>
                                <td>{environment}</td>
                                <td><span class=outcome_class>{e.outcome}</span></td>
                                <td><code class="detail">{e.detail}</code></td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
