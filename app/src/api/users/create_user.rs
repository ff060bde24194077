use leptos::prelude::*;

use crate::error::AppError;

/// Adds a user and returns the username and, when none was given, the generated password
/// (shown once). Admins only.
#[server(prefix = "/api", endpoint = "users/create")]
pub async fn create_user(
    username: String,
    role: String,
    password: Option<String>,
) -> Result<(String, Option<String>), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    let role = crate::types::Role::parse(&role)
        .ok_or_else(|| AppError::invalid("role", "Choose admin, operator or viewer."))?;
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(password) => (password, false),
        None => (engine::users::generate_password(), true),
    };
    let engine = crate::api::engine()?;
    let user = engine
        .create_user(&caller.actor, username.trim(), &password, role.into())
        .await?;
    Ok((user.username, generated.then_some(password)))
}
