use leptos::prelude::*;

use crate::error::AppError;

/// Any signed-in user changes their own password; the current one is required.
#[server(prefix = "/api", endpoint = "auth/change_own_password")]
pub async fn change_own_password(current: String, new: String, repeat: String) -> Result<(), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Viewer).await?;
    if new != repeat {
        return Err(AppError::invalid("repeat", "The two new passwords differ."));
    }
    let engine = crate::api::engine()?;
    engine
        .change_own_password(&caller.actor, caller.user.id, &current, &new)
        .await?;
    Ok(())
}
