//! Wire types: what server functions send to the browser. Built explicitly from engine types
//! (never the engine's own structs), so nothing reaches the browser by accident.

mod environment;

pub use environment::EnvironmentSummary;
