//! User management, for admins.

mod create_user;
mod list_users;
mod reset_user_password;
mod set_user_disabled;
mod set_user_role;
mod unlock_user;

pub use create_user::*;
pub use list_users::*;
pub use reset_user_password::*;
pub use set_user_disabled::*;
pub use set_user_role::*;
pub use unlock_user::*;
