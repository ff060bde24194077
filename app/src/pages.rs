//! Route components, one per file, each named `*Page`.

mod account_page;
mod audit_page;
mod backup_page;
mod backups_page;
mod environment_page;
mod environments_page;
mod job_page;
mod jobs_page;
mod login_page;
mod not_found_page;
mod notifications_page;
mod restore_page;
mod retention_page;
mod users_page;

pub use account_page::AccountPage;
pub use audit_page::AuditPage;
pub use backup_page::BackupPage;
pub use backups_page::BackupsPage;
pub use environment_page::EnvironmentPage;
pub use environments_page::EnvironmentsPage;
pub use job_page::JobPage;
pub use jobs_page::JobsPage;
pub use login_page::LoginPage;
pub use not_found_page::NotFoundPage;
pub use notifications_page::NotificationsPage;
pub use restore_page::RestorePage;
pub use retention_page::RetentionPage;
pub use users_page::UsersPage;

/// Sets the HTTP status of the server-rendered response (no effect in the browser).
pub(crate) fn set_status(status: u16) {
    #[cfg(feature = "ssr")]
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = http::StatusCode::from_u16(status)
    {
        response.set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = status;
}
