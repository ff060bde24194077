use leptos::prelude::*;

use crate::{api::notifications::recent_alerts, components::ErrorMessage, format::utc, types::NotificationEntry};

/// An environment's latest notifications (problems and recoveries), each linking the page
/// that explains it; admins get the way to the whole history.
#[component]
pub fn RecentAlerts(environment: String, admin: bool) -> impl IntoView {
    let alerts = Resource::new(
        {
            let environment = environment.clone();
            move || environment.clone()
        },
        recent_alerts,
    );
    let all_href = format!("/notifications?env={environment}");
    view! {
        <section class="panel" aria-labelledby="alerts-heading" data-testid="recent-alerts">
            <div class="panel-head">
                <h2 id="alerts-heading">"Recent alerts"</h2>
                {admin.then(|| view! { <a href=all_href>"All notifications"</a> })}
            </div>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match alerts.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p class="muted">"No alerts: nothing has gone wrong that Steward told anyone about."</p> }
                                .into_any()
                        }
                        Ok(list) => view! {
                            <ul class="alert-list">{list.into_iter().map(|entry| view! { <AlertLine entry /> }).collect_view()}</ul>
                        }
                            .into_any(),
                        Err(error) => view! { <ErrorMessage error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// A notification as one line: when, how bad, what (linking the page that explains it).
#[component]
pub fn AlertLine(entry: NotificationEntry) -> impl IntoView {
    let severity = if entry.recovery {
        "recovered".to_string()
    } else {
        entry.severity.clone()
    };
    view! {
        <li>
            <span class=format!("severity severity-{severity}")>{severity.clone()}</span>
            " "
            <a href=entry.link.clone()>{entry.summary.clone()}</a>
            " "
            <span class="muted nowrap">{utc(entry.at_ms)}</span>
        </li>
    }
}
