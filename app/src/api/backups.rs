//! Backups: list them, read one, see whether an environment's are up to date (viewers), and
//! take one now (operators). A backup is taken by a `backup` job; the UI follows that job by id.

mod get_backup;
mod get_backup_status;
mod get_storage_usage;
mod list_backups;
mod start_backup;

pub use get_backup::*;
pub use get_backup_status::*;
pub use get_storage_usage::*;
pub use list_backups::*;
pub use start_backup::*;

/// Backups per page of the list.
pub const BACKUPS_PER_PAGE: u32 = 25;

/// Backups in the size chart above the list: the latest ones.
pub const BACKUPS_IN_CHART: i64 = 60;
