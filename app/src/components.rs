//! Pieces used on several pages.

mod app_header;
mod env_badge;
mod error_message;
mod require_role;

pub use app_header::AppHeader;
pub use env_badge::EnvBadge;
pub use error_message::ErrorMessage;
pub use require_role::{current_path, require_role};
