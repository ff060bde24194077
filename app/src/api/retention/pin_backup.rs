use leptos::prelude::*;

use crate::error::AppError;

/// Pins a backup (retention never removes it) or unpins it, with a reason; audited. Pinning
/// keeps more and is for operators; unpinning lets retention remove the backup and is for
/// admins. Without JavaScript the browser is sent to `back` (a page of this console) or to the
/// backup's page.
#[server(prefix = "/api", endpoint = "backups/pin")]
pub async fn pin_backup(
    id: String,
    pin: bool,
    #[server(default)] reason: String,
    #[server(default)] back: String,
) -> Result<(), AppError> {
    let role = if pin {
        engine::users::Role::Operator
    } else {
        engine::users::Role::Admin
    };
    let caller = crate::api::guard::require(role).await?;
    crate::api::engine()?
        .set_backup_pinned(&caller.actor, &id, pin, &reason)
        .await?;
    // Only a path of this console: never an address elsewhere.
    let back = if back.starts_with('/') && !back.starts_with("//") {
        back
    } else {
        format!("/backups/{id}")
    };
    crate::api::guard::redirect_plain_form(&back).await;
    Ok(())
}
