//! Notifications: telling people that something went wrong, and that it is over.
//!
//! Filled in step by step: the configuration first.

pub mod config;
pub mod send;

pub use config::{NotificationsConfig, Rule, Severity, SmtpSecurity, Target};
