use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;

use crate::{
    api::auth::ChangeOwnPassword,
    components::{ErrorMessage, current_path, require_role},
    types::Role,
    use_current_user,
};

/// The signed-in user's own account: who they are, and a password change.
#[component]
pub fn AccountPage() -> impl IntoView {
    let user = use_current_user();
    let change = ServerAction::<ChangeOwnPassword>::new();

    let here = current_path();

    view! {
        <Title text="Account" />
        <Suspense fallback=|| ()>
            {move || {
                let here = here.clone();
                Suspend::new(async move {
                    let user = match require_role(user.await, Role::Viewer, &here) {
                        Ok(user) => user,
                        Err(refusal) => return refusal,
                    };
                    view! {
                        <h1>"Your account"</h1>
                        <p>
                            "Signed in as " <strong>{user.username.clone()}</strong> ", role "
                            <strong>{user.role.as_str()}</strong> ": " {user.role.description()} "."
                        </p>
                        <ChangePassword change />
                    }
                        .into_any()
                })
            }}
        </Suspense>
    }
}

#[component]
fn ChangePassword(change: ServerAction<ChangeOwnPassword>) -> impl IntoView {
    view! {
        <section class="panel">
            <h2>"Change your password"</h2>
            <ActionForm action=change attr:class="stack narrow">
                <label for="current">"Current password"</label>
                <input id="current" name="current" type="password" autocomplete="current-password" required />
                <label for="new">"New password (at least 12 characters)"</label>
                <input id="new" name="new" type="password" autocomplete="new-password" minlength="12" required />
                <label for="repeat">"New password again"</label>
                <input id="repeat" name="repeat" type="password" autocomplete="new-password" required />
                <button type="submit" class="primary">"Change password"</button>
            </ActionForm>
            {move || match change.value().get() {
                Some(Ok(())) => Some(view! { <p class="notice" role="status">"Your password was changed."</p> }.into_any()),
                Some(Err(error)) => Some(view! { <ErrorMessage error /> }.into_any()),
                None => None,
            }}
        </section>
    }
}
