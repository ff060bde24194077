use leptos::prelude::*;

use crate::{
    error::AppError,
    types::{LockedName, UserSummary},
};

/// All users, and every username whose sign-in is locked now. Admins only.
#[server(prefix = "/api", endpoint = "users/list")]
pub async fn list_users() -> Result<(Vec<UserSummary>, Vec<LockedName>), AppError> {
    crate::api::guard::require(engine::users::Role::Admin).await?;
    let engine = crate::api::engine()?;
    let users = engine.users().await?.into_iter().map(UserSummary::from).collect();
    let locked = engine
        .locked_usernames()
        .await?
        .into_iter()
        .map(|(username, until_ms)| LockedName { username, until_ms })
        .collect();
    Ok((users, locked))
}
