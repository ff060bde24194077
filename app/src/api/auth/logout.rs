use leptos::prelude::*;

use crate::error::AppError;

/// Signs out: the session is deleted on the server, so its cookie is worthless afterwards.
#[server(prefix = "/api", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    let engine = crate::api::engine()?;
    if let Some(caller) = crate::api::guard::caller().await? {
        engine.record_logout(&caller.actor).await?;
    }
    crate::api::guard::session()
        .await?
        .flush()
        .await
        .map_err(AppError::internal)?;
    crate::api::guard::redirect_plain_form("/login").await;
    Ok(())
}
