use leptos::prelude::*;

use crate::error::AppError;

/// Changes a user's role. Admins only; the last enabled admin cannot be demoted.
#[server(prefix = "/api", endpoint = "users/set_role")]
pub async fn set_user_role(username: String, role: String) -> Result<(), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    let role = crate::types::Role::parse(&role)
        .ok_or_else(|| AppError::invalid("role", "Choose admin, operator or viewer."))?;
    crate::api::engine()?
        .set_role(&caller.actor, &username, role.into())
        .await?;
    Ok(())
}
