use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_query_map};

use crate::{api::auth::Login, components::ErrorMessage, use_current_user};

/// Sign-in. After success the browser goes to `?next=` (a local path) or the start page.
#[component]
pub fn LoginPage() -> impl IntoView {
    let user = use_current_user();
    let login = ServerAction::<Login>::new();
    let next = use_query_map().with_untracked(|q| q.get("next").unwrap_or_else(|| "/".to_string()));
    // Signed in: load the next page afresh, so that everything on it belongs to the new session.
    let target = crate::api::auth::safe_next(Some(&next));
    Effect::new(move |_| {
        if let Some(Ok(())) = login.value().get() {
            let _ = window().location().set_href(&target);
        }
    });

    view! {
        <Title text="Sign in" />
        <Suspense fallback=|| ()>
            {move || {
                let next = next.clone();
                Suspend::new(async move {
                    if let Ok(Some(_)) = user.await {
                        return view! { <Redirect path=next /> }.into_any();
                    }
                    view! {
                        <section class="login-card">
                            <h1>"Sign in to Steward"</h1>
                            <ActionForm action=login attr:class="stack">
                                <input type="hidden" name="next" value=next />
                                <label for="username">"Username"</label>
                                <input id="username" name="username" autocomplete="username" required autofocus />
                                <label for="password">"Password"</label>
                                <input id="password" name="password" type="password" autocomplete="current-password" required />
                                <button type="submit" class="primary" disabled=move || login.pending().get()>
                                    {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                                </button>
                            </ActionForm>
                            {move || login.value().get().and_then(Result::err).map(|error| view! { <ErrorMessage error /> })}
                        </section>
                    }
                        .into_any()
                })
            }}
        </Suspense>
    }
}
