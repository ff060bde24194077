//! Restores: what restoring a backup would do (the preview), the restore itself and the Undo of
//! a failed one (operators), and the failed restores an environment shows a banner for
//! (viewers). A restore is a `restore` job; the UI follows that job by id.

mod get_restore_preview;
mod list_failed_restores;
mod start_restore;
mod undo_restore;

pub use get_restore_preview::*;
pub use list_failed_restores::*;
pub use start_restore::*;
pub use undo_restore::*;
