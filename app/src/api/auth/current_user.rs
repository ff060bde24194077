use leptos::prelude::*;

use crate::{error::AppError, types::CurrentUser};

/// The signed-in user, or `None` for a visitor. Open to everyone who passed the allowlist.
#[server(prefix = "/api", endpoint = "auth/current_user")]
pub async fn get_current_user() -> Result<Option<CurrentUser>, AppError> {
    let caller = crate::api::guard::caller().await?;
    Ok(caller.map(|c| CurrentUser {
        username: c.user.username,
        role: c.user.role.into(),
    }))
}
