use leptos::prelude::*;

use crate::error::AppError;

/// Lifts the sign-in lock of a username. Admins only.
#[server(prefix = "/api", endpoint = "users/unlock")]
pub async fn unlock_user(username: String) -> Result<(), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    crate::api::engine()?.unlock(&caller.actor, &username).await?;
    Ok(())
}
