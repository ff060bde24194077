//! Pieces used on several pages.

mod app_header;
mod backup_now_form;
mod backup_status_line;
mod backup_table;
mod env_badge;
mod error_message;
mod filter_links;
mod job_log;
mod job_status_badge;
mod job_table;
mod maintenance_banner;
mod page_error;
mod pin_form;
mod recent_alerts;
mod require_role;
mod size_chart;
mod test_restore_badge;
mod verification_badge;

pub use app_header::AppHeader;
pub use backup_now_form::BackupNowForm;
pub use backup_status_line::BackupStatusLine;
pub use backup_table::BackupTable;
pub use env_badge::EnvBadge;
pub use error_message::ErrorMessage;
pub use filter_links::{FilterLinks, ListFilter};
pub use job_log::JobLog;
pub use job_status_badge::JobStatusBadge;
pub use job_table::JobTable;
pub use maintenance_banner::MaintenanceBanner;
pub use page_error::PageError;
pub use pin_form::{PinActions, PinForm};
pub use recent_alerts::{AlertLine, RecentAlerts};
pub use require_role::{current_path, require_role};
pub use size_chart::SizeChart;
pub use test_restore_badge::{TestRestoreBadge, TestRestoreDetail};
pub use verification_badge::{VerificationBadge, verification_sentence};
