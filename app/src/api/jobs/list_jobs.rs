use leptos::prelude::*;

use crate::{error::AppError, types::JobPage};

/// Jobs, newest first, filtered by environment, kind and state (empty: all), 50 a page.
#[server(prefix = "/api", endpoint = "jobs/list")]
pub async fn list_jobs(
    environment: Option<String>,
    kind: Option<String>,
    state: Option<String>,
    before: Option<i64>,
) -> Result<JobPage, AppError> {
    /// Jobs per page of the list.
    const PAGE: i64 = 50;

    crate::api::guard::require(engine::users::Role::Viewer).await?;
    let state = match state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            engine::jobs::JobState::parse(s)
                .ok_or_else(|| AppError::invalid("state", format!("\"{s}\" is not a job state")))?,
        ),
        None => None,
    };
    let filter = engine::jobs::JobFilter {
        environment: environment.filter(|s| !s.is_empty()),
        kind: kind.filter(|s| !s.is_empty()),
        state,
    };
    let mut jobs = crate::api::engine()?.jobs(&filter, before, PAGE + 1).await?;
    let older = (jobs.len() > PAGE as usize).then(|| {
        jobs.truncate(PAGE as usize);
        jobs.last().map(|job| job.id)
    });
    Ok(JobPage {
        jobs: jobs.into_iter().map(Into::into).collect(),
        older: older.flatten(),
    })
}
