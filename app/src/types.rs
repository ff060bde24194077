//! Wire types: what server functions send to the browser. Built explicitly from engine types
//! (never the engine's own structs), so nothing reaches the browser by accident — a password
//! hash has no path here.

mod audit;
mod environment;
mod user;

pub use audit::AuditEntry;
pub use environment::EnvironmentSummary;
pub use user::{CurrentUser, LockedName, Role, UserSummary};
