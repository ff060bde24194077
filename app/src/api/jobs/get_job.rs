use leptos::prelude::*;

use crate::{error::AppError, types::JobDetail};

/// One job with the end of its log, and the backups it is about.
#[server(prefix = "/api", endpoint = "jobs/get")]
pub async fn get_job(id: i64) -> Result<JobDetail, AppError> {
    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let engine = crate::api::engine()?;
    let job = engine
        .job(id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Job #{id}")))?;
    let (log, total_lines) = engine.job_log_tail(id, super::LOG_LINES_SHOWN).await?;
    let production = engine
        .config()
        .environment(&job.environment)
        .is_some_and(|env| env.production);
    let retried_as = engine.retry_of(id).await?.map(|retry| retry.id);
    let backup_id = job.spec.as_ref().and_then(|spec| spec.backup_id()).map(str::to_string);
    let restore = job
        .spec
        .as_ref()
        .and_then(|spec| spec.get::<engine::kinds::restore::Restore>());
    let safety_backup_id = restore.map(|restore| restore.safety_backup_id.clone());
    let undo_of = restore.and_then(|restore| restore.undo_of);
    Ok(JobDetail {
        job: job.into(),
        log: log.into_iter().map(Into::into).collect(),
        total_lines,
        production,
        retried_as,
        backup_id,
        safety_backup_id,
        undo_of,
    })
}
