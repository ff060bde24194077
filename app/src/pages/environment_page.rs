use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::{
    api::{
        backups::{StartBackup, get_backup_status},
        environments::get_environment,
        jobs::{AcknowledgeJob, RetryJob, StartCommand, get_environment_activity},
    },
    components::{BackupNowForm, BackupStatusLine, EnvBadge, ErrorMessage, JobTable, current_path, require_role},
    error::AppError,
    format::utc,
    types::{ActionSummary, EnvironmentActivity, EnvironmentBackupStatus, EnvironmentSummary, JobSummary, Role},
    use_current_user,
};

#[derive(Clone, Copy)]
struct Actions {
    start: ServerAction<StartCommand>,
    backup: ServerAction<StartBackup>,
    retry: ServerAction<RetryJob>,
    acknowledge: ServerAction<AcknowledgeJob>,
}

/// One environment: what Steward knows about it.
#[component]
pub fn EnvironmentPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let environment = Resource::new(name, get_environment);
    let actions = Actions {
        start: ServerAction::new(),
        backup: ServerAction::new(),
        retry: ServerAction::new(),
        acknowledge: ServerAction::new(),
    };
    let backups = Resource::new(name, get_backup_status);
    let activity = Resource::new(
        move || (name(), actions.acknowledge.version().get()),
        |(name, _)| get_environment_activity(name),
    );
    let user = use_current_user();
    let here = current_path();

    // A started backup or action, or a retried job: go and watch it.
    let navigate = use_navigate();
    Effect::new(move |_| {
        let started = actions.start.value().get().and_then(Result::ok);
        let backup = actions.backup.value().get().and_then(Result::ok);
        let retried = actions.retry.value().get().and_then(Result::ok);
        if let Some(job) = started.or(backup).or(retried) {
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
                let operator = user.role >= Role::Operator;
                match environment.await {
                    Ok(env) => {
                        let backups = match backups.await {
                            Ok(status) => {
                                view! { <BackupsPanel env=env.clone() status operator action=actions.backup /> }.into_any()
                            }
                            Err(error) => view! { <ErrorMessage error /> }.into_any(),
                        };
                        let activity = match activity.await {
                            Ok(activity) => view! { <Activity env=env.clone() activity operator actions /> }.into_any(),
                            Err(error) => view! { <ErrorMessage error /> }.into_any(),
                        };
                        view! {
                            <Title text=env.label.clone() />
                            <div class="env-head" style:--env-colour=env.colour.clone()>
                                <h1><EnvBadge env=env.clone() /></h1>
                            </div>
                            {backups}
                            <dl class="facts">
                                <dt>"Name"</dt>
                                <dd><code>{env.name.clone()}</code></dd>
                                <dt>"Label"</dt>
                                <dd>{env.label.clone()}</dd>
                                <dt>"Production"</dt>
                                <dd>
                                    {if env.production {
                                        "Yes: destructive actions ask for extra confirmation."
                                    } else {
                                        "No"
                                    }}
                                </dd>
                                <dt>"Colour"</dt>
                                <dd><code>{env.colour.clone()}</code></dd>
                            </dl>
                            {activity}
                        }
                            .into_any()
                    }
                    Err(error) => {
                        if matches!(error, AppError::NotFound { .. }) {
                            super::set_status(404);
                        }
                        view! {
                            <Title text="Not found" />
                            <h1>"Environment"</h1>
                            <ErrorMessage error />
                            <p><a href="/environments">"All environments"</a></p>
                        }
                            .into_any()
                    }
                }
            })
            }}
        </Suspense>
    }
}

/// How the environment's backups are doing, "Back up now" for operators, and the way to the
/// list.
#[component]
fn BackupsPanel(
    env: EnvironmentSummary,
    status: EnvironmentBackupStatus,
    operator: bool,
    action: ServerAction<StartBackup>,
) -> impl IntoView {
    let href = format!("/environments/{}/backups", env.name);
    let can_back_up = status.has_resources();
    view! {
        <section class="panel backups-panel" aria-labelledby="backups-heading" style:--env-colour=env.colour.clone()>
            <div class="panel-head">
                <h2 id="backups-heading">"Backups"</h2>
                <a href=href>"All backups"</a>
            </div>
            <BackupStatusLine status />
            {(can_back_up && operator).then(|| view! { <BackupNowForm environment=env.name.clone() action /> })}
            {(can_back_up && !operator).then(|| view! { <p class="muted">"Operators and admins can start a backup."</p> })}
        </section>
    }
}

/// Interrupted-job banners, the actions an operator can run, and the latest jobs.
#[component]
fn Activity(env: EnvironmentSummary, activity: EnvironmentActivity, operator: bool, actions: Actions) -> impl IntoView {
    let error = move || {
        [
            actions.start.value().get().and_then(Result::err),
            actions.retry.value().get().and_then(Result::err),
            actions.acknowledge.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
    };
    let jobs_href = format!("/jobs?env={}", env.name);
    view! {
        {move || error().map(|error| view! { <ErrorMessage error /> })}
        {activity
            .interrupted
            .into_iter()
            .map(|job| view! { <InterruptedBanner job production=env.production operator actions /> })
            .collect_view()}
        {(!activity.actions.is_empty())
            .then(|| {
                view! {
                    <section class="panel">
                        <h2>"Actions"</h2>
                        {if operator {
                            view! {
                                <p class="muted">"Each runs as a job you can follow live and cancel."</p>
                                <div class="action-list">
                                    {activity
                                        .actions
                                        .into_iter()
                                        .map(|action| view! { <RunAction env=env.clone() action start=actions.start /> })
                                        .collect_view()}
                                </div>
                            }
                                .into_any()
                        } else {
                            view! {
                                <p class="muted">"Operators can run these:"</p>
                                <ul>
                                    {activity.actions.into_iter().map(|a| view! { <li>{a.label}</li> }).collect_view()}
                                </ul>
                            }
                                .into_any()
                        }}
                    </section>
                }
            })}
        <section class="panel">
            <h2>"Latest jobs"</h2>
            {if activity.recent.is_empty() {
                view! { <p class="empty">"No jobs yet."</p> }.into_any()
            } else {
                view! { <JobTable jobs=activity.recent /> }.into_any()
            }}
            <p><a href=jobs_href>"All jobs of this environment"</a></p>
        </section>
    }
}

/// "delete-drafts #12 was interrupted": stays until someone retries or acknowledges it.
#[component]
fn InterruptedBanner(job: JobSummary, production: bool, operator: bool, actions: Actions) -> impl IntoView {
    let href = format!("/jobs/{}", job.id);
    let confirm_label = format!("Production: type {} to confirm", job.environment);
    let when = job.finished_at_ms.map(utc).unwrap_or_default();
    let (id1, id2) = (job.id.to_string(), job.id.to_string());
    view! {
        <div class="banner banner-warning" role="alert" data-testid="interrupted-banner">
            <p>
                <strong><a href=href>{job.title.clone()}</a> " was interrupted"</strong>
                {format!(" ({when}): Steward stopped while it was running, so it may have been left half done. ")}
                "Check the environment, then retry it or acknowledge that it has been dealt with."
            </p>
            {operator
                .then(|| {
                    view! {
                        <div class="job-buttons">
                            <ActionForm action=actions.retry attr:class="inline">
                                <input type="hidden" name="id" value=id1 />
                                {production.then(|| view! {
                                    <label class="confirm">{confirm_label.clone()} <input type="text" name="confirm" required autocomplete="off" /></label>
                                })}
                                <button type="submit" class="primary">"Retry"</button>
                            </ActionForm>
                            <ActionForm action=actions.acknowledge attr:class="inline">
                                <input type="hidden" name="id" value=id2 />
                                <button type="submit">"Acknowledge"</button>
                            </ActionForm>
                        </div>
                    }
                })}
        </div>
    }
}

/// One action with its reason field (and, on production, the confirmation) and a Run button.
#[component]
fn RunAction(env: EnvironmentSummary, action: ActionSummary, start: ServerAction<StartCommand>) -> impl IntoView {
    let confirm_label = format!("Production: type {} to confirm", env.name);
    let (name1, name2) = (action.name.clone(), action.name.clone());
    view! {
        <ActionForm action=start attr:class="run-action" attr:data-action=name1>
            <input type="hidden" name="environment" value=env.name.clone() />
            <input type="hidden" name="action" value=name2 />
            <div class="run-action-head">
                <strong>{action.label.clone()}</strong>
                <code class="muted">{action.name.clone()}</code>
                {(!action.exclusive).then(|| view! { <span class="muted">"read-only"</span> })}
            </div>
            <label>
                "Reason"
                <input type="text" name="reason" maxlength="500" placeholder="Why, for the audit log (optional)" />
            </label>
            {env
                .production
                .then(|| {
                    view! {
                        <label>
                            {confirm_label.clone()}
                            <input type="text" name="confirm" required autocomplete="off" />
                        </label>
                    }
                })}
            <button type="submit" class="primary">"Run"</button>
        </ActionForm>
    }
}
