use leptos::prelude::*;

use crate::{error::AppError, types::AuditEntry};

/// Newest first, 100 a page, older than `before` when paging. Every signed-in role may read it.
#[server(prefix = "/api", endpoint = "audit/list")]
pub async fn list_audit_events(before: Option<i64>) -> Result<Vec<AuditEntry>, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    let events = engine::audit::recent(engine.db().pool(), before, 100)
        .await
        .map_err(AppError::internal)?;
    Ok(events.into_iter().map(AuditEntry::from).collect())
}
