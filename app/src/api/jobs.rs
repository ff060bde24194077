//! Jobs: list and read them (viewers), start, cancel, retry and acknowledge them (operators).
//! The live log is not a server function but a stream (`/api/jobs/{id}/events`, served by the
//! `server` crate with the same session and role check).

mod acknowledge_job;
mod cancel_job;
mod get_environment_activity;
mod get_job;
mod list_jobs;
mod retry_job;
mod start_command;

pub use acknowledge_job::*;
pub use cancel_job::*;
pub use get_environment_activity::*;
pub use get_job::*;
pub use list_jobs::*;
pub use retry_job::*;
pub use start_command::*;

/// Lines of the log the job page renders at first; the rest is one download away.
pub const LOG_LINES_SHOWN: i64 = 1000;
