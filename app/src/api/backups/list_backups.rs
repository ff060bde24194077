use leptos::prelude::*;

use crate::{error::AppError, types::BackupList};

/// One page of an environment's backups, ordered by `sort` (newest, oldest, largest,
/// smallest; empty: newest), 25 a page, with the sizes of the latest ones for the chart.
#[server(prefix = "/api", endpoint = "backups/list")]
pub async fn list_backups(
    environment: String,
    sort: Option<String>,
    page: Option<u32>,
) -> Result<BackupList, AppError> {
    use crate::types::{BackupSort, BackupSummary, SizePoint};
    use engine::backups::Order;

    use super::{BACKUPS_IN_CHART, BACKUPS_PER_PAGE};

    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    if engine.config().environment(&environment).is_none() {
        return Err(AppError::not_found(format!("Environment \"{environment}\"")));
    }
    let sort = match sort.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => BackupSort::parse(s).ok_or_else(|| {
            AppError::invalid(
                "sort",
                format!("\"{s}\" is not an order: newest, oldest, largest or smallest"),
            )
        })?,
        None => BackupSort::default(),
    };
    let page = page.unwrap_or(1).max(1);
    let offset = i64::from(page - 1) * i64::from(BACKUPS_PER_PAGE);
    let (rows, total) = engine
        .backups(&environment, sort.into(), offset, i64::from(BACKUPS_PER_PAGE))
        .await?;
    let (mut latest, _) = engine
        .backups(&environment, Order::NewestFirst, 0, BACKUPS_IN_CHART)
        .await?;
    latest.reverse();
    let since = latest.first().map_or(0, |b| b.created_at_ms);
    let kept = engine.usage_after_backups(&environment, since).await?;
    let sizes = latest
        .iter()
        .map(|backup| SizePoint {
            kept_after: kept.iter().find(|(id, _)| *id == backup.id).map(|(_, bytes)| *bytes),
            ..SizePoint::from(backup)
        })
        .collect();
    Ok(BackupList {
        rows: rows.iter().map(BackupSummary::from).collect(),
        total,
        page,
        per_page: BACKUPS_PER_PAGE,
        sort,
        sizes,
    })
}
