//! The `steward` binary's library: the command line, the HTTP server and its wiring.
//!
//! `cli` parses and dispatches commands; `http` builds the axum router that serves the Leptos
//! app, its server functions, the static assets, `/healthz` and `/metrics` (`metrics`: the
//! Prometheus recorder and the scrape route); `logging` sets up `tracing`.
//! The domain lives in the `engine` crate and the UI in `app`; this crate only connects them,
//! which keeps it small enough to test end to end on a real port.

pub mod access;
pub mod audit_export;
pub mod cli;
pub mod http;
pub mod job_feed;
pub mod logging;
pub mod metrics;
pub mod sessions;
pub mod transfer;
