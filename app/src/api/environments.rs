//! Environments: the systems Steward looks after, as configured.

mod get_dashboard;
mod get_environment;
mod list_environments;

pub use get_dashboard::*;
pub use get_environment::*;
pub use list_environments::*;
