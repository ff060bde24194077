//! Maintenance mode: whether an environment is in it (viewers; every page of the environment
//! says so), and switching it by hand (admins, with a reason; the engine runs the hooks and
//! audits it). Restores enter and leave it themselves.

mod get_maintenance;
mod switch_maintenance;

pub use get_maintenance::*;
pub use switch_maintenance::*;
