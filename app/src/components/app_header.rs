use leptos::{form::ActionForm, prelude::*};
use leptos_router::{components::A, hooks::use_location};

use crate::{
    api::auth::Logout,
    types::{CurrentUser, EnvironmentSummary},
    use_current_user, use_environments,
};

/// The top bar: product name, navigation, the environment switcher and the signed-in user.
/// Visitors see the product name only.
#[component]
pub fn AppHeader() -> impl IntoView {
    let user = use_current_user();
    let environments = use_environments();
    view! {
        <header class="app-header">
            <a class="brand" href="/">
                "Steward"
            </a>
            // One Suspense, nothing suspending inside it: see `require_role` on why.
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let user = user.await.ok().flatten()?;
                    let environments = environments.await.unwrap_or_default();
                    Some(view! { <SignedInHeader user environments /> })
                })}
            </Suspense>
        </header>
    }
}

#[component]
fn SignedInHeader(user: CurrentUser, environments: Vec<EnvironmentSummary>) -> impl IntoView {
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
                <li><A href="/jobs">"Jobs"</A></li>
                <li><A href="/audit">"Audit log"</A></li>
                {is_admin.then(|| view! {
                    <li><A href="/notifications">"Notifications"</A></li>
                    <li><A href="/users">"Users"</A></li>
                })}
            </ul>
        </nav>
        <EnvSwitcher list=environments />
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
fn EnvSwitcher(list: Vec<EnvironmentSummary>) -> impl IntoView {
    let location = use_location();
    let current = {
        let list = list.clone();
        move || {
            location.pathname.with(|path| {
                let name = path.strip_prefix("/environments/")?.split('/').next()?;
                list.iter().find(|e| e.name == name).cloned()
            })
        }
    };
    let current_colour = {
        let current = current.clone();
        move || current().map(|e| e.colour).unwrap_or_default()
    };
    let current_label = move || {
        current()
            .map(|e| e.label)
            .unwrap_or_else(|| "All environments".to_string())
    };

    // Rebuilt on every navigation, so the list closes once an environment is chosen.
    move || {
        location.pathname.track();
        let list = list.clone();
        let (current_colour, current_label) = (current_colour.clone(), current_label.clone());
        view! {
        <details class="env-switcher">
            <summary style:--env-colour=current_colour>
                <span class="env-swatch" aria-hidden="true"></span>
                <span class="visually-hidden">"Environment: "</span>
                {current_label}
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
    }
}
