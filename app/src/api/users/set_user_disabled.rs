use leptos::prelude::*;

use crate::error::AppError;

/// Disables or re-enables a user. Admins only; the last enabled admin cannot be disabled.
#[server(prefix = "/api", endpoint = "users/set_disabled")]
pub async fn set_user_disabled(username: String, disabled: bool) -> Result<(), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    if disabled && caller.user.username == username {
        return Err(AppError::Conflict {
            message: "You cannot disable yourself.".into(),
        });
    }
    crate::api::engine()?
        .set_disabled(&caller.actor, &username, disabled)
        .await?;
    Ok(())
}
