//! Notifications: telling people that something went wrong, and that it is over.
//!
//! Filled in step by step: the configuration first.

pub mod config;

pub use config::{NotificationsConfig, Rule, Severity, SmtpSecurity, Target};
