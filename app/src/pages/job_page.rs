use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::{
    api::jobs::{AcknowledgeJob, CancelJob, RetryJob, get_job},
    components::{ErrorMessage, JobLog, JobStatusBadge, PageError, current_path, require_role},
    format::{bytes, duration, utc},
    types::{JobDetail, JobStatus, JobSummary, Role},
    use_current_user,
};

#[derive(Clone, Copy)]
struct Actions {
    cancel: ServerAction<CancelJob>,
    retry: ServerAction<RetryJob>,
    acknowledge: ServerAction<AcknowledgeJob>,
}

/// One job: state, who/why/when, progress, steps, the live log, and Cancel / Retry.
#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let actions = Actions {
        cancel: ServerAction::new(),
        retry: ServerAction::new(),
        acknowledge: ServerAction::new(),
    };
    let detail = Resource::new(
        move || (id(), actions.acknowledge.version().get()),
        |(id, _)| get_job(id),
    );
    let user = use_current_user();
    let here = current_path();

    // A retry is a new job: go to it.
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(job)) = actions.retry.value().get() {
            navigate(&format!("/jobs/{}", job.id), Default::default());
        }
    });

    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let here = here.clone();
                Suspend::new(async move {
                    let user = match require_role(user.await, Role::Viewer, &here) {
                        Ok(user) => user,
                        Err(refusal) => return refusal,
                    };
                    match detail.await {
                        Ok(detail) => {
                            let operator = user.role >= Role::Operator;
                            view! { <JobView detail operator actions /> }.into_any()
                        }
                        Err(error) => {
                            view! { <PageError heading="Job" error back=("/jobs", "All jobs") /> }.into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn JobView(detail: JobDetail, operator: bool, actions: Actions) -> impl IntoView {
    let job = RwSignal::new(detail.job);
    let first = job.get_untracked();
    let error = move || {
        [
            actions.cancel.value().get().and_then(Result::err),
            actions.retry.value().get().and_then(Result::err),
            actions.acknowledge.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
    };
    let env_href = format!("/environments/{}", first.environment);
    let (production, retried_as, backup_id) = (detail.production, detail.retried_as, detail.backup_id);
    let is_restore = first.kind == "restore";
    let backup_fact = backup_id.clone().map(|id| {
        if is_restore {
            view! { <dt>"Restores backup"</dt> <dd><a href=format!("/backups/{id}")>{id.clone()}</a></dd> }.into_any()
        } else {
            view! { <dt>"Backup"</dt> <dd><code>{id}</code></dd> }.into_any()
        }
    });
    let safety_fact = detail.safety_backup_id.map(|id| {
        view! {
            <dt>"Safety backup"</dt>
            <dd data-testid="job-safety-backup">
                <a href=format!("/backups/{id}")>{id.clone()}</a>
                <span class="muted">" — the environment as it was just before, taken before anything is restored"</span>
            </dd>
        }
    });
    let undo_fact = detail.undo_of.map(|old| {
        view! {
            <dt>"Undoes"</dt>
            <dd><a href=format!("/jobs/{old}")>{format!("restore #{old}")}</a> " (restores its safety backup)"</dd>
        }
    });
    view! {
        <Title text=first.title.clone() />
        <div class="page-head">
            <h1>{first.title.clone()}</h1>
            <span data-testid="job-status">{move || view! { <JobStatusBadge status=job.get().status /> }}</span>
        </div>
        {move || error().map(|error| view! { <ErrorMessage error /> })}
        {move || job.with(|j| j.error.clone()).map(|message| view! { <p class="error" role="alert" data-testid="job-error">{message}</p> })}
        {move || operator.then(|| view! { <JobButtons job=job.get() production retried_as actions /> })}
        {retried_as.map(|retry| view! { <p class="notice">"Retried as " <a href=format!("/jobs/{retry}")>{format!("#{retry}")}</a> "."</p> })}
        {backup_id.clone().map(|id| {
            if is_restore {
                view! { <RestoreNotice job id /> }.into_any()
            } else if first.kind == "backup" {
                view! { <BackupNotice job id /> }.into_any()
            } else {
                ().into_any()
            }
        })}
        <dl class="facts">
            <dt>"Environment"</dt>
            <dd><a href=env_href>{first.environment.clone()}</a></dd>
            <dt>"What"</dt>
            <dd>{format!("{} ({})", first.title, first.kind)} {first.exclusive.then_some(" — has the environment to itself while it runs")}</dd>
            {backup_fact}
            {safety_fact}
            {undo_fact}
            <dt>"Requested by"</dt>
            <dd>{first.requested_by.clone()} " at " {utc(first.created_at_ms)}</dd>
            <dt>"Reason"</dt>
            <dd>{if first.reason.is_empty() { "—".to_string() } else { first.reason.clone() }}</dd>
            <dt>"Audit"</dt>
            <dd><a href=format!("/audit?target={}", first.id)>"Events about this job"</a></dd>
            <dt>"Attempt"</dt>
            <dd>
                {first.attempt}
                {first.retry_of.map(|old| view! { ", retry of " <a href=format!("/jobs/{old}")>{format!("#{old}")}</a> })}
            </dd>
            <dt>"Timing"</dt>
            <dd>{move || timing(&job.get())}</dd>
            {move || job.with(|j| j.cancel_requested_by.clone()).map(|by| view! { <dt>"Cancel"</dt> <dd>{format!("requested by {by}")}</dd> })}
            {move || job.with(|j| j.acknowledged_by.clone()).map(|by| view! { <dt>"Acknowledged"</dt> <dd>{format!("by {by}")}</dd> })}
        </dl>
        <Progress job />
        <JobLog job lines=detail.log total_lines=detail.total_lines />
    }
}

/// A backup job's backup: a link once the job has succeeded (only then does it exist).
#[component]
fn BackupNotice(job: RwSignal<JobSummary>, id: String) -> impl IntoView {
    move || {
        (job.with(|j| j.status) == JobStatus::Succeeded).then(|| {
            let href = format!("/backups/{id}");
            view! {
                <p class="notice" data-testid="job-backup">
                    "Backup " <a href=href>{id.clone()}</a> " is complete."
                </p>
            }
        })
    }
}

/// A restore's outcome in words: restored, or where to go now that it is not.
#[component]
fn RestoreNotice(job: RwSignal<JobSummary>, id: String) -> impl IntoView {
    move || {
        let (status, environment) = job.with(|j| (j.status, j.environment.clone()));
        let env_href = format!("/environments/{environment}");
        match status {
            JobStatus::Succeeded => Some(
                view! {
                    <p class="notice" data-testid="job-restored">
                        {format!("{environment} is restored to backup ")}
                        <a href=format!("/backups/{id}")>{id.clone()}</a>
                        "."
                    </p>
                }
                .into_any(),
            ),
            status if status.is_retryable() => Some(
                view! {
                    <p class="banner banner-warning" data-testid="job-restore-failed">
                        "The restore stopped. "
                        <a href=env_href>{format!("{environment}'s page")}</a>
                        " says whether it is still in maintenance mode, and offers an Undo that brings back the safety backup."
                    </p>
                }
                .into_any(),
            ),
            _ => None,
        }
    }
}

fn timing(job: &JobSummary) -> String {
    match (job.started_at_ms, job.finished_at_ms) {
        (None, Some(finished)) => format!("ended {} without starting", utc(finished)),
        (None, None) => "waiting for a worker".to_string(),
        (Some(started), None) => format!("started {}", utc(started)),
        (Some(started), Some(finished)) => format!(
            "started {}, ended {} ({})",
            utc(started),
            utc(finished),
            duration(started, finished)
        ),
    }
}

/// The progress bar and the step list.
#[component]
fn Progress(job: RwSignal<JobSummary>) -> impl IntoView {
    let percent = move || job.with(JobSummary::percent);
    view! {
        <section class="progress-panel" aria-label="Progress">
            <div
                class="progress"
                role="progressbar"
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=move || percent().map(|p| p.to_string())
                data-state=move || job.get().status.as_str()
            >
                <div class="progress-bar" style:width=move || format!("{}%", percent().unwrap_or(0))></div>
            </div>
            <span class="muted" data-testid="job-progress">
                {move || job.with(progress_text)}
            </span>
            <ol class="steps">
                {move || {
                    let job = job.get();
                    job.steps
                        .iter()
                        .enumerate()
                        .map(|(i, step)| {
                            let i = i64::try_from(i).unwrap_or(i64::MAX);
                            let state = if i < job.steps_done {
                                "done"
                            } else if i == job.steps_done && job.status == JobStatus::Running {
                                "current"
                            } else if i == job.steps_done && job.status.is_finished() {
                                "stopped"
                            } else {
                                "pending"
                            };
                            view! { <li class=format!("step step-{state}")>{step.clone()} <span class="muted">{format!(" ({state})")}</span></li> }
                        })
                        .collect_view()
                }}
            </ol>
        </section>
    }
}

/// The words beside the progress bar: "40%", "3 of 10", "queued"; for a running backup, which
/// counts bytes without knowing the end, "40% · 12.3 MiB written".
fn progress_text(job: &JobSummary) -> String {
    // The bytes are sampled twice a second, so once the backup has ended the count may lag
    // behind: the backup's own page has its real size.
    let written = job
        .progress
        .filter(|&(_, total)| total == 0 && job.kind == "backup" && !job.status.is_finished())
        .map(|(done, _)| format!("{} written", bytes(u64::try_from(done).unwrap_or(0))));
    match (job.status, job.progress, job.percent(), written) {
        (JobStatus::Succeeded, ..) => "100%".into(),
        (_, _, Some(p), Some(written)) => format!("{p}% · {written}"),
        (_, _, None, Some(written)) => written,
        (_, Some((done, total)), ..) if total > 0 => format!("{done} of {total}"),
        (_, _, Some(p), _) => format!("{p}%"),
        (JobStatus::Queued, ..) => "queued".into(),
        _ => String::new(),
    }
}

/// Cancel while queued or running; Retry when it failed, was cancelled or interrupted (once;
/// on production with the environment's name typed); Acknowledge an interrupted job. Plain
/// forms, so they work without JavaScript too.
#[component]
fn JobButtons(job: JobSummary, production: bool, retried_as: Option<i64>, actions: Actions) -> impl IntoView {
    let id = job.id.to_string();
    let cancellable = !job.status.is_finished() && job.cancel_requested_by.is_none();
    let retryable = job.retryable && retried_as.is_none();
    let confirm_label = format!("Production: type {} to confirm", job.environment);
    let acknowledgeable = job.status == JobStatus::Interrupted && job.acknowledged_by.is_none();
    let (id1, id2, id3) = (id.clone(), id.clone(), id);
    view! {
        <div class="job-buttons">
            {cancellable.then(|| view! {
                <ActionForm action=actions.cancel attr:class="inline">
                    <input type="hidden" name="id" value=id1 />
                    <button type="submit" class="danger" data-testid="cancel-job">"Cancel job"</button>
                </ActionForm>
            })}
            {retryable.then(|| view! {
                <ActionForm action=actions.retry attr:class="inline">
                    <input type="hidden" name="id" value=id2 />
                    <input type="text" name="reason" placeholder="Why retry (optional)" maxlength="500" />
                    {production.then(|| view! {
                        <label class="confirm">{confirm_label.clone()} <input type="text" name="confirm" required autocomplete="off" /></label>
                    })}
                    <button type="submit" class="primary" data-testid="retry-job">"Retry as a new job"</button>
                </ActionForm>
            })}
            {acknowledgeable.then(|| view! {
                <ActionForm action=actions.acknowledge attr:class="inline">
                    <input type="hidden" name="id" value=id3 />
                    <button type="submit" data-testid="acknowledge-job">"Acknowledge (checked, no retry)"</button>
                </ActionForm>
            })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(kind: &str, status: JobStatus, progress: Option<(i64, i64)>, steps_done: i64) -> JobSummary {
        JobSummary {
            id: 1,
            title: format!("{kind} #1"),
            kind: kind.into(),
            environment: "demo".into(),
            status,
            exclusive: true,
            requested_by: "alice".into(),
            reason: String::new(),
            created_at_ms: 0,
            started_at_ms: None,
            finished_at_ms: None,
            attempt: 1,
            retry_of: None,
            steps: vec!["Back up site".into(), "Verify checksums".into()],
            steps_done,
            progress,
            error: None,
            cancel_requested_by: None,
            acknowledged_by: None,
            retryable: status.is_retryable(),
        }
    }

    #[test]
    fn a_running_backup_shows_bytes_written_not_n_of_0() {
        let running = job("backup", JobStatus::Running, Some((12_897_485, 0)), 1);
        assert_eq!(progress_text(&running), "50% · 12.3 MiB written");
        let done = job("backup", JobStatus::Succeeded, Some((0, 0)), 2);
        assert_eq!(
            progress_text(&done),
            "100%",
            "a stale sample is not shown once it ended"
        );
        let failed = job("backup", JobStatus::Failed, Some((4096, 0)), 1);
        assert_eq!(progress_text(&failed), "50%");
    }

    #[test]
    fn a_program_that_counts_shows_its_count() {
        let command = job("command", JobStatus::Running, Some((3, 10)), 0);
        assert_eq!(progress_text(&command), "3 of 10");
        assert_eq!(progress_text(&job("command", JobStatus::Queued, None, 0)), "0%");
    }
}
