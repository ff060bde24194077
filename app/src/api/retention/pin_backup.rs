use leptos::prelude::*;

use crate::error::AppError;

/// Pins a backup so that retention never removes it, with a reason; audited. Operators:
/// pinning only ever keeps more. Without JavaScript the browser is sent to `back` (a page of
/// this console) or to the backup's page.
#[server(prefix = "/api", endpoint = "backups/pin")]
pub async fn pin_backup(
    id: String,
    #[server(default)] reason: String,
    #[server(default)] back: String,
) -> Result<(), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Operator).await?;
    set_pinned(&caller.actor, &id, true, &reason, &back).await
}

/// Unpins a backup, with a reason: retention may remove it again. Admins; audited.
#[server(prefix = "/api", endpoint = "backups/unpin")]
pub async fn unpin_backup(
    id: String,
    #[server(default)] reason: String,
    #[server(default)] back: String,
) -> Result<(), AppError> {
    let caller = crate::api::guard::require(engine::users::Role::Admin).await?;
    set_pinned(&caller.actor, &id, false, &reason, &back).await
}

#[cfg(feature = "ssr")]
async fn set_pinned(
    actor: &engine::accounts::Actor,
    id: &str,
    pin: bool,
    reason: &str,
    back: &str,
) -> Result<(), AppError> {
    crate::api::engine()?.set_backup_pinned(actor, id, pin, reason).await?;
    // Only a path of this console: never an address elsewhere.
    let back = if back.starts_with('/') && !back.starts_with("//") {
        back.to_string()
    } else {
        format!("/backups/{id}")
    };
    crate::api::guard::redirect_plain_form(&back).await;
    Ok(())
}
