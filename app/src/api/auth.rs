//! Signing in and out, and who is signed in.

mod change_own_password;
mod current_user;
mod login;
mod logout;

pub use change_own_password::*;
pub use current_user::*;
pub use login::*;
pub use logout::*;
