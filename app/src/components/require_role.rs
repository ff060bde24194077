use leptos::prelude::*;
use leptos_router::{components::Redirect, hooks::use_location};

use crate::{
    components::ErrorMessage,
    error::AppError,
    types::{CurrentUser, Role},
};

/// Decides, inside a page's `Suspend`, whether the signed-in user may see the page: `Ok(user)`
/// when they have at least `role`; otherwise the view to show instead — the sign-in page for a
/// visitor (coming back here afterwards), "Not allowed" for too small a role.
///
/// A function, not a wrapping component, on purpose: a `<Suspense>` created after an `.await`
/// gets a different hydration id on the server than in the browser, so each page has exactly
/// one `<Suspense>` and decides inside it.
///
/// This is about what the page shows. The server functions behind the page check the role
/// again, on the server, whatever this does.
pub fn require_role(
    user: Result<Option<CurrentUser>, AppError>,
    role: Role,
    here: &str,
) -> Result<CurrentUser, AnyView> {
    match user {
        Ok(Some(user)) if user.role >= role => Ok(user),
        Ok(Some(_)) => {
            crate::pages::set_status(403);
            Err(view! {
                <h1>"Not allowed"</h1>
                <ErrorMessage error=AppError::Forbidden />
            }
            .into_any())
        }
        Ok(None) => {
            let to = format!("/login?next={}", urlencode(here));
            Err(view! { <Redirect path=to /> }.into_any())
        }
        Err(error) => Err(view! { <ErrorMessage error /> }.into_any()),
    }
}

/// The current path and query, for coming back after signing in.
pub fn current_path() -> String {
    let location = use_location();
    let search = location.search.get_untracked();
    let path = location.pathname.get_untracked();
    if search.is_empty() {
        path
    } else {
        format!("{path}?{search}")
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
