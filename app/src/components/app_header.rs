use leptos::{form::ActionForm, prelude::*};
use leptos_router::{components::A, hooks::use_location};

use crate::{api::auth::Logout, types::CurrentUser, use_current_user, use_environments};

/// The top bar: product name, navigation, the environment switcher and the signed-in user.
/// Visitors see the product name only.
#[component]
pub fn AppHeader() -> impl IntoView {
    let user = use_current_user();
    view! {
        <header class="app-header">
            <a class="brand" href="/">
                "Steward"
            </a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    user.await.ok().flatten().map(|user| view! { <SignedInHeader user /> })
                })}
            </Suspense>
        </header>
    }
}

#[component]
fn SignedInHeader(user: CurrentUser) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = logout.value().get() {
            let _ = window().location().set_href("/login");
        }
    });
    let is_admin = user.is_admin();
    view! {
        <nav aria-label="Sections">
            <ul>
                <li><A href="/environments">"Environments"</A></li>
                <li><span class="nav-later" aria-disabled="true" title="Not available yet">"Backups"</span></li>
                <li><span class="nav-later" aria-disabled="true" title="Not available yet">"Jobs"</span></li>
                <li><A href="/audit">"Audit log"</A></li>
                {is_admin.then(|| view! { <li><A href="/users">"Users"</A></li> })}
            </ul>
        </nav>
        <EnvSwitcher />
        <div class="user-box">
            <A href="/account" attr:title="Your account">
                {user.username.clone()}
                <span class="role-tag">{user.role.as_str()}</span>
            </A>
            <ActionForm action=logout>
                <button type="submit" class="link-button">"Sign out"</button>
            </ActionForm>
        </div>
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
