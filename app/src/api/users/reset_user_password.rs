use leptos::prelude::*;

use crate::error::AppError;

/// Gives a user a new generated password and returns the username and the password (shown
/// once). Admins only.
#[server(prefix = "/api", endpoint = "users/reset_password")]
pub async fn reset_user_password(username: String) -> Result<(String, String), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    let password = engine::users::generate_password();
    crate::api::engine()?
        .set_password(&caller.actor, &username, &password)
        .await?;
    Ok((username, password))
}
