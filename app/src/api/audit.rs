//! The audit log, read-only.

mod list_audit_events;

pub use list_audit_events::*;
