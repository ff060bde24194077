use leptos::prelude::*;

use crate::{
    error::AppError,
    types::{AuditQuery, AuditView},
};

/// How many events a page shows.
#[cfg(feature = "ssr")]
const PAGE: i64 = 100;

/// The newest events matching `query`, 100 a page, older than `query.before` when paging; and
/// the last verification of the chain. Every signed-in role may read it.
#[server(prefix = "/api", endpoint = "audit/list")]
pub async fn list_audit_events(#[server(default)] query: AuditQuery) -> Result<AuditView, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    let filter = query.to_filter()?;
    // One more than a page says whether there is an older one.
    let page = engine::audit::filter::page(engine.db(), &filter, query.before, PAGE + 1)
        .await
        .map_err(AppError::internal)?;
    let mut events = page.events;
    let older = if events.len() as i64 > PAGE {
        events.truncate(PAGE as usize);
        events.last().map(|e| e.id)
    } else {
        page.searched_to
    };
    let chain = engine.last_audit_verification().await.map_err(AppError::internal)?;
    Ok(AuditView {
        events: events.into_iter().map(Into::into).collect(),
        older,
        searched_to: page.searched_to,
        chain: chain.map(Into::into),
        environments: engine.config().environments.iter().map(|e| e.name.clone()).collect(),
    })
}
