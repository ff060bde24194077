use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::audit::list_audit_events,
    components::{ErrorMessage, current_path, require_role},
    format::utc,
    types::Role,
    use_current_user,
};

/// The audit log, newest first, 100 a page.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let before = move || query.read().get("before").and_then(|b| b.parse::<i64>().ok());
    let events = Resource::new(before, list_audit_events);
    let user = use_current_user();
    let here = current_path();

    view! {
        <Title text="Audit log" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let here = here.clone();
                Suspend::new(async move {
                if let Err(refusal) = require_role(user.await, Role::Viewer, &here) {
                    return refusal;
                }
                let heading = view! {
                    <h1>"Audit log"</h1>
                    <p class="muted">"Who did what, from where, when, and how it ended. Times are UTC."</p>
                };
                let body = match events.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No events."</p> }.into_any(),
                    Ok(list) => {
                        let oldest = list.last().map(|e| e.id);
                        view! {
                            <table class="data audit">
                                <thead>
                                    <tr>
                                        <th>"Time"</th>
                                        <th>"Who"</th>
                                        <th>"From"</th>
                                        <th>"Action"</th>
                                        <th>"Target"</th>
                                        <th>"Outcome"</th>
                                        <th>"Detail"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list
                                        .into_iter()
                                        .map(|e| {
                                            let outcome_class = format!("outcome outcome-{}", e.outcome);
                                            view! {
                                                <tr>
                                                    <td class="nowrap">{utc(e.at_ms)}</td>
                                                    <td>{e.actor.unwrap_or_else(|| "—".into())}</td>
                                                    <td>{e.client_ip.unwrap_or_default()}</td>
                                                    <td><code>{e.action}</code></td>
                                                    <td>{e.target.unwrap_or_default()}</td>
                                                    <td><span class=outcome_class>{e.outcome}</span></td>
                                                    <td><code class="detail">{e.detail}</code></td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                            {oldest.map(|id| view! { <p><a href=format!("/audit?before={id}")>"Older events"</a></p> })}
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorMessage error /> }.into_any(),
                };
                view! { {heading} {body} }.into_any()
            })
            }}
        </Suspense>
    }
}
