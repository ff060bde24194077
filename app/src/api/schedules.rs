//! Schedules: what Steward does on its own — listed for everyone, paused, resumed and run now
//! by admins.

mod list_schedules;
mod pause_schedule;
mod run_schedule;

pub use list_schedules::*;
pub use pause_schedule::*;
pub use run_schedule::*;
