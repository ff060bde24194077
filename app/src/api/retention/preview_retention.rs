use leptos::prelude::*;

use crate::{error::AppError, types::RetentionView};

/// Every backup of an environment as keep or remove, with the rule that decides it. Removes
/// nothing.
#[server(prefix = "/api", endpoint = "retention/preview")]
pub async fn preview_retention(environment: String) -> Result<RetentionView, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    if engine.config().environment(&environment).is_none() {
        return Err(AppError::not_found(format!("Environment \"{environment}\"")));
    }
    Ok(engine.retention_preview(&environment).await?.into())
}
