use leptos::prelude::*;

use crate::{error::AppError, types::RestorePreview};

/// What restoring backup `id` would do: the environment, what is replaced and what is left,
/// the smoke checks, and whatever stands in the way now. Operators and admins, who may restore.
#[server(prefix = "/api", endpoint = "restores/preview")]
pub async fn get_restore_preview(id: String) -> Result<RestorePreview, AppError> {
    crate::api::guard::require(engine::users::Role::Operator).await?;
    let preview = crate::api::engine()?.restore_preview(&id).await?;
    Ok(preview.into())
}
