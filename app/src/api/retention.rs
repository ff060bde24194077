//! Retention: which backups an environment's rules keep (the preview), applying them (a prune
//! job), and pins.

mod apply_retention;
mod pin_backup;
mod preview_retention;

pub use apply_retention::*;
pub use pin_backup::*;
pub use preview_retention::*;
