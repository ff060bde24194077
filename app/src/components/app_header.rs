use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_location};

use crate::use_environments;

/// Sections of the console; the ones not built yet are shown, greyed out, so people see
/// where the product is going.
const SECTIONS: [(&str, Option<&str>); 4] = [
    ("Environments", Some("/environments")),
    ("Backups", None),
    ("Jobs", None),
    ("Audit log", None),
];

/// The top bar: product name, navigation, and the environment switcher.
#[component]
pub fn AppHeader() -> impl IntoView {
    view! {
        <header class="app-header">
            <a class="brand" href="/">
                "Steward"
            </a>
            <nav aria-label="Sections">
                <ul>
                    {SECTIONS
                        .into_iter()
                        .map(|(label, href)| match href {
                            Some(href) => view! { <li><A href=href>{label}</A></li> }.into_any(),
                            None => {
                                view! {
                                    <li>
                                        <span class="nav-later" aria-disabled="true" title="Not available yet">
                                            {label}
                                        </span>
                                    </li>
                                }
                                    .into_any()
                            }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <EnvSwitcher />
        </header>
    }
}

/// A disclosure listing the environments as links: works without JavaScript, and keeps the
/// current environment (from the URL) visible in its own colour.
#[component]
fn EnvSwitcher() -> impl IntoView {
    let environments = use_environments();
    let location = use_location();
    let current_name = move || {
        location.pathname.with(|path| {
            path.strip_prefix("/environments/")
                .map(|rest| rest.split('/').next().unwrap_or_default().to_string())
        })
    };

    view! {
        <Suspense fallback=|| view! { <span class="env-switcher">"Environments…"</span> }>
            {move || {
                // Read outside the async block so that navigating re-renders the switcher.
                let current_name = current_name();
                Suspend::new(async move {
                let list = environments.await.unwrap_or_default();
                let current = current_name.and_then(|name| list.iter().find(|e| e.name == name).cloned());
                let summary_colour = current.as_ref().map(|e| e.colour.clone()).unwrap_or_default();
                let summary_label = current
                    .as_ref()
                    .map(|e| e.label.clone())
                    .unwrap_or_else(|| "All environments".to_string());
                view! {
                    <details class="env-switcher">
                        <summary style:--env-colour=summary_colour>
                            <span class="env-swatch" aria-hidden="true"></span>
                            <span class="visually-hidden">"Environment: "</span>
                            {summary_label}
                        </summary>
                        <ul>
                            {list
                                .into_iter()
                                .map(|env| {
                                    let href = format!("/environments/{}", env.name);
                                    view! {
                                        <li>
                                            <a href=href style:--env-colour=env.colour.clone()>
                                                <span class="env-swatch" aria-hidden="true"></span>
                                                {env.label.clone()}
                                            </a>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    </details>
                }
            })
            }}
        </Suspense>
    }
}
