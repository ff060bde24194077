//! Steward's user interface: the app shell, the routes, and the server functions behind them.
//!
//! Rendered on the server (feature `ssr`, inside the `server` binary) and hydrated in the
//! browser (feature `hydrate`, through the `frontend` wasm crate). Everything server-only —
//! the engine, the database, logging — is behind `ssr`, so the wasm bundle carries none of it.
//!
//! Pages load data through server functions (`api/`), never through direct engine calls, so the
//! same code path serves the first server render and every later client-side navigation.

pub mod api;
pub mod components;
pub mod error;
pub mod format;
pub mod pages;
pub mod types;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Redirect, Route, Router, Routes},
    path,
};

use crate::{
    api::{auth::get_current_user, environments::list_environments},
    components::AppHeader,
    error::AppError,
    pages::{
        AccountPage, AuditPage, BackupPage, BackupsPage, EnvironmentPage, EnvironmentsPage, JobPage, JobsPage,
        LoginPage, NotFoundPage, NotificationsPage, RestorePage, RetentionPage, UsersPage,
    },
    types::{CurrentUser, EnvironmentSummary},
};

/// The name of the compiled browser files (`pkg/steward.js`, `.wasm`, `.css`); equals
/// `output-name` in the workspace's Cargo.toml.
pub const OUTPUT_NAME: &str = "steward";

/// The HTML document around the app: rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The configured environments, loaded once per page and shared by the header's switcher and
/// the pages.
pub type EnvironmentsResource = Resource<Result<Vec<EnvironmentSummary>, AppError>>;

/// The signed-in user (`None` for a visitor), loaded once per page load; signing in and out
/// load a new page.
pub type CurrentUserResource = Resource<Result<Option<CurrentUser>, AppError>>;

pub fn provide_current_user() {
    let user: CurrentUserResource = Resource::new(|| (), |_| get_current_user());
    provide_context(user);
}

pub fn use_current_user() -> CurrentUserResource {
    expect_context::<CurrentUserResource>()
}

pub fn provide_environments() {
    let environments: EnvironmentsResource = Resource::new(|| (), |_| list_environments());
    provide_context(environments);
}

pub fn use_environments() -> EnvironmentsResource {
    expect_context::<EnvironmentsResource>()
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_current_user();
    provide_environments();

    view! {
        <Stylesheet id="steward" href=format!("/pkg/{OUTPUT_NAME}.css") />
        <Title formatter=|page: String| if page.is_empty() { "Steward".to_string() } else { format!("{page} · Steward") } />
        <Router>
            <AppHeader />
            <main class="page">
                <Routes fallback=NotFoundPage>
                    <Route path=path!("/") view=|| view! { <Redirect path="/environments" /> } />
                    // Async: the server waits for the data and sends whole pages, so every page
                    // reads complete without JavaScript (no streamed fragments to swap in).
                    // Each page checks the role itself (`require_role`) and creates its resources
                    // before that check, so server and browser number them in the same order.
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                    <Route path=path!("/environments") view=EnvironmentsPage ssr=SsrMode::Async />
                    <Route path=path!("/environments/:name") view=EnvironmentPage ssr=SsrMode::Async />
                    <Route path=path!("/environments/:name/backups") view=BackupsPage ssr=SsrMode::Async />
                    <Route path=path!("/environments/:name/retention") view=RetentionPage ssr=SsrMode::Async />
                    <Route path=path!("/backups/:id") view=BackupPage ssr=SsrMode::Async />
                    <Route path=path!("/backups/:id/restore") view=RestorePage ssr=SsrMode::Async />
                    <Route path=path!("/jobs") view=JobsPage ssr=SsrMode::Async />
                    <Route path=path!("/jobs/:id") view=JobPage ssr=SsrMode::Async />
                    <Route path=path!("/audit") view=AuditPage ssr=SsrMode::Async />
                    <Route path=path!("/users") view=UsersPage ssr=SsrMode::Async />
                    <Route path=path!("/notifications") view=NotificationsPage ssr=SsrMode::Async />
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}
