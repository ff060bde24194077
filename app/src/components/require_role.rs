use leptos::prelude::*;
use leptos_router::{components::Redirect, hooks::use_location};

use crate::{components::ErrorMessage, error::AppError, types::Role, use_current_user};

/// Shows `children` to a signed-in user with at least `role`; sends visitors to the sign-in
/// page (and back here afterwards); tells everyone else they may not.
///
/// This is about what the page shows. The server functions behind the page check the role
/// again, on the server, whatever this component does.
#[component]
pub fn RequireRole(role: Role, children: ChildrenFn) -> impl IntoView {
    let user = use_current_user();
    let location = use_location();
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let children = children.clone();
                let search = location.search.get_untracked();
                let here = if search.is_empty() {
                    location.pathname.get_untracked()
                } else {
                    format!("{}?{search}", location.pathname.get_untracked())
                };
                Suspend::new(async move {
                    match user.await {
                        Ok(Some(user)) if user.role >= role => children().into_any(),
                        Ok(Some(_)) => {
                            crate::pages::set_status(403);
                            view! {
                                <h1>"Not allowed"</h1>
                                <ErrorMessage error=AppError::Forbidden />
                            }
                                .into_any()
                        }
                        Ok(None) => {
                            let to = format!("/login?next={}", urlencode(&here));
                            view! { <Redirect path=to /> }.into_any()
                        }
                        Err(error) => view! { <ErrorMessage error /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// Percent-encodes a path for a query parameter.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
