use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::notifications::{SendTestNotification, get_notification_settings, list_notifications},
    components::{AlertLine, ErrorMessage, ListFilter, current_path, require_role},
    format::utc,
    types::{NotificationEntry, NotificationRule, NotificationSettings, NotificationTarget, Role},
    use_current_user, use_environments,
};

/// The history's filter keys in the address: `/notifications?env=prod&state=failed&target=ops&kind=backup_failed&before=120`.
const FILTER_KEYS: [&str; 4] = ["env", "state", "target", "kind"];

/// Notifications (admins): where Steward sends what goes wrong, which events go where, a test
/// per target, and every notification with how its deliveries went. Plain forms and links: it
/// all works without JavaScript.
#[component]
pub fn NotificationsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || query.with(|q| ListFilter::from_query("/notifications", &FILTER_KEYS, q));
    let test = ServerAction::<SendTestNotification>::new();
    let settings = Resource::new(|| (), |()| get_notification_settings());
    let history = Resource::new(
        move || (filter(), test.version().get()),
        |(f, _)| list_notifications(f.get("env"), f.get("kind"), f.get("state"), f.get("target"), f.before),
    );
    let environments = use_environments();
    let user = use_current_user();
    let here = current_path();

    view! {
        <Title text="Notifications" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let here = here.clone();
                Suspend::new(async move {
                    if let Err(refusal) = require_role(user.await, Role::Admin, &here) {
                        return refusal;
                    }
                    let settings = match settings.await {
                        Ok(settings) => settings,
                        Err(error) => return view! { <ErrorMessage error /> }.into_any(),
                    };
                    let current = filter();
                    let env_names: Vec<String> = environments
                        .await
                        .map(|list| list.into_iter().map(|e| e.name).collect())
                        .unwrap_or_default();
                    let target_names: Vec<String> = settings.targets.iter().map(|t| t.name.clone()).collect();
                    let states = ["pending", "delivered", "failed"].map(String::from).to_vec();
                    let body = match history.await {
                        Ok(page) if page.entries.is_empty() => {
                            view! { <p class="empty">"No notifications match."</p> }.into_any()
                        }
                        Ok(page) => {
                            let older = page.older.map(|before| current.older(before));
                            view! {
                                <HistoryTable entries=page.entries />
                                {older.map(|href| view! { <p><a href=href>"Older notifications"</a></p> })}
                            }
                                .into_any()
                        }
                        Err(error) => view! { <ErrorMessage error /> }.into_any(),
                    };
                    view! {
                        <h1>"Notifications"</h1>
                        <p class="muted">
                            "Steward tells these targets when a backup fails, is missed or overdue, when a test restore or a restore fails, when an environment stays in maintenance, when someone is locked out — and when each is over. Times are UTC."
                        </p>
                        <Targets targets=settings.targets.clone() test />
                        <Rules settings=settings.clone() />
                        <h2 id="history">"History"</h2>
                        {current.links("Environment", "env", env_names)}
                        {current.links("Delivery", "state", states)}
                        {current.links("Target", "target", target_names)}
                        {current.links("Kind", "kind", settings.kinds.clone())}
                        {body}
                    }
                        .into_any()
                })
            }}
        </Suspense>
    }
}

/// The targets, each with a Send test button; the latest test's result above them.
#[component]
fn Targets(targets: Vec<NotificationTarget>, test: ServerAction<SendTestNotification>) -> impl IntoView {
    let result = move || {
        test.value().get().map(|result| match result {
            Ok(r) if r.error.is_none() => view! {
                <p class="notice" role="status" data-testid="test-result">
                    {format!("Delivered test notification #{} to {} in {} ms.", r.notification_id, r.target, r.duration_ms)}
                </p>
            }
            .into_any(),
            Ok(r) => view! {
                <p class="error" role="alert" data-testid="test-result">
                    {format!(
                        "Test notification #{} was not delivered to {}: {}",
                        r.notification_id,
                        r.target,
                        r.error.unwrap_or_default()
                    )}
                </p>
            }
            .into_any(),
            Err(error) => view! { <ErrorMessage error /> }.into_any(),
        })
    };
    let body = if targets.is_empty() {
        view! {
            <p class="empty">
                "No targets are configured, so nobody is told when something goes wrong. Add "
                <code>"[notifications.targets.NAME]"</code>
                " (a webhook, a Slack webhook or mail) to the configuration; the README shows how."
            </p>
        }
        .into_any()
    } else {
        view! {
            <table class="data" data-testid="targets">
                <thead>
                    <tr>
                        <th>"Target"</th>
                        <th>"Type"</th>
                        <th>"Delivers to"</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>
                    {targets
                        .into_iter()
                        .map(|target| {
                            view! {
                                <tr>
                                    <td><code>{target.name.clone()}</code></td>
                                    <td>{target.kind}</td>
                                    <td>{target.destination}</td>
                                    <td>
                                        <ActionForm action=test attr:class="inline-form">
                                            <input type="hidden" name="target" value=target.name.clone() />
                                            <button type="submit">"Send test"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="targets-heading">
            <h2 id="targets-heading">"Targets"</h2>
            {result}
            {body}
        </section>
    }
}

#[component]
fn Rules(settings: NotificationSettings) -> impl IntoView {
    let rules = if settings.rules.is_empty() {
        view! { <p>"No rules: every notification goes to every target."</p> }.into_any()
    } else {
        view! { <ul>{settings.rules.into_iter().map(|rule| view! { <li>{rule_sentence(&rule)}</li> }).collect_view()}</ul> }
            .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="rules-heading">
            <h2 id="rules-heading">"Rules"</h2>
            {rules}
            <p class="muted">
                {format!(
                    "A problem that keeps coming back is told at most once every {} minutes. A delivery that fails is tried again, waiting longer each time, up to {} attempts. An environment in maintenance for more than {} is told.",
                    settings.flap_window_minutes,
                    settings.max_attempts,
                    if settings.maintenance_alert_minutes == 0 {
                        "— (never)".to_string()
                    } else {
                        format!("{} minutes", settings.maintenance_alert_minutes)
                    }
                )}
            </p>
        </section>
    }
}

/// "critical notifications of prod → ops-mail, chat".
fn rule_sentence(rule: &NotificationRule) -> String {
    let what = match &rule.min_severity {
        Some(min) if min == "critical" => "critical notifications".to_string(),
        Some(min) => format!("{min} and critical notifications"),
        None => "all notifications".to_string(),
    };
    let of = if rule.environments.is_empty() {
        String::new()
    } else {
        format!(" of {}", rule.environments.join(", "))
    };
    format!("{what}{of} → {}", rule.targets.join(", "))
}

#[component]
fn HistoryTable(entries: Vec<NotificationEntry>) -> impl IntoView {
    view! {
        <table class="data" data-testid="notification-history">
            <thead>
                <tr>
                    <th>"Notification"</th>
                    <th>"Environment"</th>
                    <th>"Deliveries"</th>
                </tr>
            </thead>
            <tbody>
                {entries
                    .into_iter()
                    .map(|entry| {
                        let environment = entry.environment.clone().unwrap_or_else(|| "—".into());
                        let detail = entry.detail.clone().map(|detail| view! { <pre class="alert-detail">{detail}</pre> });
                        let deliveries = entry.deliveries.clone();
                        view! {
                            <tr>
                                <td>
                                    <ul class="alert-list"><AlertLine entry /></ul>
                                    {detail}
                                </td>
                                <td>{environment}</td>
                                <td><Deliveries deliveries /></td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn Deliveries(deliveries: Vec<crate::types::NotificationDelivery>) -> impl IntoView {
    if deliveries.is_empty() {
        return view! { <span class="muted">"No target: no rule matched."</span> }.into_any();
    }
    view! {
        <ul class="delivery-list">
            {deliveries
                .into_iter()
                .map(|d| {
                    let attempts = format!("{} attempt{}", d.attempts, if d.attempts == 1 { "" } else { "s" });
                    let next = d.next_attempt_ms.map(|at| format!(", next {}", utc(at)));
                    let error = d.last_error.map(|e| view! { <div class="muted">{e}</div> });
                    view! {
                        <li>
                            <code>{d.target}</code>
                            " "
                            <span class=format!("delivery delivery-{}", d.state)>{d.state.clone()}</span>
                            " "
                            <span class="muted">{attempts}{next}</span>
                            {error}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}
