use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::{
    api::{
        backups::{StartBackup, get_backup_status},
        environments::get_environment,
        jobs::{AcknowledgeJob, RetryJob, StartCommand, get_environment_activity},
        maintenance::{SwitchMaintenance, get_maintenance},
        restores::{UndoRestore, list_failed_restores},
        retention::preview_retention,
        schedules::{PauseSchedule, RunSchedule, list_schedules},
    },
    components::{
        BackupNowForm, BackupStatusLine, EnvBadge, ErrorMessage, JobTable, MaintenanceBanner, PageError, RecentAlerts,
        current_path, require_role,
    },
    format::{bytes, elapsed, utc},
    types::{
        ActionSummary, EnvironmentActivity, EnvironmentBackupStatus, EnvironmentSummary, FailedRestore, JobStatus,
        JobSummary, MaintenanceState, RetentionView, Role, ScheduleSummary,
    },
    use_current_user,
};

#[derive(Clone, Copy)]
struct Actions {
    start: ServerAction<StartCommand>,
    backup: ServerAction<StartBackup>,
    retry: ServerAction<RetryJob>,
    acknowledge: ServerAction<AcknowledgeJob>,
    undo: ServerAction<UndoRestore>,
    /// Dismisses a failed restore's banner (its errors show there, not with the jobs').
    dismiss: ServerAction<AcknowledgeJob>,
    switch: ServerAction<SwitchMaintenance>,
    pause: ServerAction<PauseSchedule>,
    run: ServerAction<RunSchedule>,
}

/// One environment: what Steward knows about it — whether it is in maintenance, restores that
/// failed (with their Undo), its backups, actions and latest jobs.
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
        undo: ServerAction::new(),
        dismiss: ServerAction::new(),
        switch: ServerAction::new(),
        pause: ServerAction::new(),
        run: ServerAction::new(),
    };
    let backups = Resource::new(name, get_backup_status);
    let activity = Resource::new(
        move || (name(), actions.acknowledge.version().get()),
        |(name, _)| get_environment_activity(name),
    );
    let maintenance = Resource::new(
        move || (name(), actions.switch.version().get()),
        |(name, _)| get_maintenance(name),
    );
    let failed_restores = Resource::new(
        move || (name(), actions.dismiss.version().get()),
        |(name, _)| list_failed_restores(name),
    );
    let schedules = Resource::new(
        move || (name(), actions.pause.version().get()),
        |(name, _)| list_schedules(name),
    );
    let retention = Resource::new(name, preview_retention);
    let user = use_current_user();
    let here = current_path();

    // A started backup or action, a retried job, an Undo or a maintenance switch: go and watch it.
    let navigate = use_navigate();
    Effect::new(move |_| {
        let started = actions.start.value().get().and_then(Result::ok);
        let backup = actions.backup.value().get().and_then(Result::ok);
        let retried = actions.retry.value().get().and_then(Result::ok);
        let undone = actions.undo.value().get().and_then(Result::ok);
        let switched = actions.switch.value().get().and_then(Result::ok);
        let ran = actions.run.value().get().and_then(Result::ok);
        if let Some(job) = started.or(backup).or(retried).or(undone).or(switched).or(ran) {
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
                let admin = user.role >= Role::Admin;
                match environment.await {
                    Ok(env) => {
                        let (maintenance, failed) = match (maintenance.await, failed_restores.await) {
                            (Ok(maintenance), Ok(failed)) => (maintenance, failed),
                            (Err(error), _) | (_, Err(error)) => {
                                return view! { <ErrorMessage error /> }.into_any();
                            }
                        };
                        let banner = maintenance
                            .clone()
                            .map(|maintenance| view! { <MaintenanceBanner maintenance label=env.label.clone() /> });
                        let failed = view! { <FailedRestores env=env.clone() failed operator actions /> };
                        let switch = admin.then(|| {
                            view! { <MaintenancePanel env=env.clone() maintenance=maintenance.clone() action=actions.switch /> }
                        });
                        let backups = match backups.await {
                            Ok(status) => {
                                view! { <BackupsPanel env=env.clone() status operator action=actions.backup /> }.into_any()
                            }
                            Err(error) => view! { <ErrorMessage error /> }.into_any(),
                        };
                        let unattended = match (schedules.await, retention.await) {
                            (Ok(schedules), Ok(retention)) => view! {
                                <SchedulesPanel schedules admin actions />
                                <RetentionPanel retention />
                            }
                            .into_any(),
                            (Err(error), _) | (_, Err(error)) => view! { <ErrorMessage error /> }.into_any(),
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
                            {banner}
                            {failed}
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
                                <dt>"Audit"</dt>
                                <dd>
                                    <a href=format!("/audit?environment={}", crate::types::encode(&env.name))>
                                        "Events in this environment"
                                    </a>
                                </dd>
                            </dl>
                            {unattended}
                            <RecentAlerts environment=env.name.clone() admin />
                            {switch}
                            {activity}
                        }
                            .into_any()
                    }
                    Err(error) => {
                        view! { <PageError heading="Environment" error back=("/environments", "All environments") /> }.into_any()
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

/// The environment's schedules: what runs when, the next runs and what the latest ones did; for
/// admins pause/resume (with a reason) and Run now. Plain forms: they work without JavaScript.
#[component]
fn SchedulesPanel(schedules: Vec<ScheduleSummary>, admin: bool, actions: Actions) -> impl IntoView {
    let error = move || {
        [
            actions.pause.value().get().and_then(Result::err),
            actions.run.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
    };
    view! {
        <section class="panel" aria-labelledby="schedules-heading" data-testid="schedules">
            <h2 id="schedules-heading">"Schedules"</h2>
            {move || error().map(|error| view! { <ErrorMessage error /> })}
            {if schedules.is_empty() {
                view! {
                    <p class="empty">
                        "Nothing runs on its own: add " <code>"[environments.schedules.NAME]"</code>
                        " to the configuration (e.g. a nightly backup)."
                    </p>
                }
                    .into_any()
            } else {
                schedules
                    .into_iter()
                    .map(|schedule| view! { <ScheduleItem schedule admin actions /> })
                    .collect_view()
                    .into_any()
            }}
        </section>
    }
}

#[component]
fn ScheduleItem(schedule: ScheduleSummary, admin: bool, actions: Actions) -> impl IntoView {
    let ScheduleSummary {
        environment,
        name,
        what,
        cron,
        timezone,
        paused,
        next,
        next_ms,
        recent,
        as_of_ms,
    } = schedule;
    let when = match (&paused, next_ms) {
        (Some((by, at, reason)), _) => format!("Paused by {by} at {at}: {reason}"),
        (None, Some(at)) => format!("Next in {}: {}", elapsed(as_of_ms, at), next.join(", ")),
        (None, None) => "No next run".to_string(),
    };
    let is_paused = paused.is_some();
    let controls = admin.then(|| {
        let (env1, env2, name1, name2) = (environment.clone(), environment.clone(), name.clone(), name.clone());
        view! {
            <div class="job-buttons">
                <ActionForm action=actions.pause attr:class="inline-form">
                    <input type="hidden" name="environment" value=env1 />
                    <input type="hidden" name="name" value=name1 />
                    <input type="hidden" name="pause" value=(!is_paused).to_string() />
                    <input type="text" name="reason" required maxlength="500" placeholder="Reason" aria-label="Reason" />
                    <button type="submit">{if is_paused { "Resume" } else { "Pause" }}</button>
                </ActionForm>
                <ActionForm action=actions.run attr:class="inline-form">
                    <input type="hidden" name="environment" value=env2 />
                    <input type="hidden" name="name" value=name2 />
                    <button type="submit" class="primary">"Run now"</button>
                </ActionForm>
            </div>
        }
    });
    view! {
        <div class="schedule" data-schedule=name.clone()>
            <h3>
                {name.clone()} " "
                <span class="muted">{format!("{what} · \"{cron}\" · {timezone}")}</span>
            </h3>
            <p data-testid="schedule-next">{when}</p>
            {recent.is_empty().then(|| view! { <p class="muted">"It has not run yet."</p> })}
            {(!recent.is_empty())
                .then(|| {
                    view! {
                        <ul class="health-figures">
                            {recent
                                .into_iter()
                                .take(5)
                                .map(|(at, summary, job)| {
                                    let link = job.map(|id| view! { " " <a href=format!("/jobs/{id}")>"log"</a> });
                                    view! { <li><span class="muted">{at}</span> " " {summary} {link}</li> }
                                })
                                .collect_view()}
                        </ul>
                    }
                })}
            {controls}
        </div>
    }
}

/// The retention rules in words, what they would remove now, and the way to the preview.
#[component]
fn RetentionPanel(retention: RetentionView) -> impl IntoView {
    let href = format!("/environments/{}/retention", retention.environment);
    view! {
        <section class="panel" aria-labelledby="retention-heading" data-testid="retention">
            <div class="panel-head">
                <h2 id="retention-heading">"Retention"</h2>
                <a href=href>"Preview and apply"</a>
            </div>
            {if retention.rules.is_empty() {
                view! {
                    <p class="muted">
                        "Every backup is kept: this environment has no " <code>"[environments.retention]"</code> " rules."
                    </p>
                }
                    .into_any()
            } else {
                view! {
                    <ul>{retention.rules.into_iter().map(|rule| view! { <li>{rule}</li> }).collect_view()}</ul>
                    <p class="muted">
                        {format!(
                            "Now: {} kept, {} would be removed ({}).",
                            retention.keep_count,
                            retention.remove_count,
                            bytes(retention.reclaimed_bytes)
                        )}
                    </p>
                }
                    .into_any()
            }}
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

/// A banner for each restore that failed and that nobody has dealt with: what happened, the
/// safety backup, and for operators Undo (restores the safety backup) and Acknowledge.
#[component]
fn FailedRestores(
    env: EnvironmentSummary,
    failed: Vec<FailedRestore>,
    operator: bool,
    actions: Actions,
) -> impl IntoView {
    let error = move || {
        [
            actions.undo.value().get().and_then(Result::err),
            actions.dismiss.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
    };
    let any = !failed.is_empty();
    view! {
        {any.then(|| view! { {move || error().map(|error| view! { <ErrorMessage error /> })} })}
        {failed
            .into_iter()
            .map(|failed| view! { <FailedRestoreBanner env=env.clone() failed operator actions /> })
            .collect_view()}
    }
}

#[component]
fn FailedRestoreBanner(
    env: EnvironmentSummary,
    failed: FailedRestore,
    operator: bool,
    actions: Actions,
) -> impl IntoView {
    let FailedRestore {
        job,
        backup_id,
        safety_backup_id,
        safety_backup,
    } = failed;
    let label = env.label.clone();
    let what = match job.status {
        JobStatus::Cancelled => " was cancelled",
        JobStatus::Interrupted => " was interrupted",
        _ => " failed",
    };
    let when = job
        .finished_at_ms
        .map(|at| format!(" ({})", utc(at)))
        .unwrap_or_default();
    let error = job
        .error
        .clone()
        .map(|error| format!(": {error}"))
        .unwrap_or_else(|| ".".into());
    let job_href = format!("/jobs/{}", job.id);
    let backup_href = format!("/backups/{backup_id}");
    let (id1, id2) = (job.id.to_string(), job.id.to_string());
    let undoable = safety_backup.is_some();
    let safety = match safety_backup {
        Some(safety) => view! {
            <p data-testid="safety-backup">
                "Before restoring, Steward took the safety backup "
                <a href=format!("/backups/{}", safety.id)>{safety.id.clone()}</a>
                {format!(
                    " ({}, {}): it holds {label} as it was just before the restore. Undo restores it.",
                    utc(safety.created_at_ms),
                    bytes(safety.total_size)
                )}
            </p>
        }
        .into_any(),
        None => view! {
            <p data-testid="safety-backup">
                {format!(
                    "Its safety backup {safety_backup_id} was not completed, so nothing was restored: {label} was not changed by it, and there is nothing to undo. Check {label}, then dismiss this."
                )}
            </p>
        }
        .into_any(),
    };
    let buttons = operator.then(|| {
        view! {
            <div class="job-buttons">
                {undoable.then(|| view! {
                    <ActionForm action=actions.undo attr:class="inline" attr:data-testid="undo-restore">
                        <input type="hidden" name="id" value=id1 />
                        <input type="text" name="reason" maxlength="500" placeholder="Why undo (optional)" aria-label="Why undo (optional)" />
                        <button type="submit" class="primary">"Undo: restore the safety backup"</button>
                    </ActionForm>
                })}
                <ActionForm action=actions.dismiss attr:class="inline">
                    <input type="hidden" name="id" value=id2 />
                    <button type="submit" data-testid="dismiss-restore">"Dismiss (dealt with)"</button>
                </ActionForm>
            </div>
        }
    });
    view! {
        <div class="banner banner-danger" role="alert" data-testid="failed-restore-banner">
            <p>
                <strong><a href=job_href>{job.title.clone()}</a> {what}</strong>
                {format!("{when}{error}")}
            </p>
            <p>"It was restoring backup " <a href=backup_href>{backup_id.clone()}</a> "."</p>
            {safety}
            {buttons}
        </div>
    }
}

/// Maintenance mode by hand, for admins: its state and a switch with a reason (audited). The
/// switch is a job — the environment's hook runs there, with a live log — so the page goes to
/// it. Restores switch maintenance themselves.
#[component]
fn MaintenancePanel(
    env: EnvironmentSummary,
    maintenance: Option<MaintenanceState>,
    action: ServerAction<SwitchMaintenance>,
) -> impl IntoView {
    let label = env.label.clone();
    let on = maintenance.is_some();
    let (state, button, placeholder) = if on {
        (
            format!("{label} is in maintenance mode. Taking it out runs its leave hook, if it has one."),
            "Take out of maintenance",
            "Why, e.g. the upgrade is done",
        )
    } else {
        (
            format!(
                "{label} is not in maintenance. Putting it in runs its enter hook, if it has one, and every page of {label} here says so."
            ),
            "Put into maintenance",
            "Why, e.g. upgrading the database",
        )
    };
    let error = move || action.value().get().and_then(Result::err);
    view! {
        <section class="panel maintenance-panel" aria-labelledby="maintenance-heading" data-testid="maintenance-panel">
            <h2 id="maintenance-heading">"Maintenance mode"</h2>
            <p class="muted">{state}</p>
            <ActionForm action attr:class="maintenance-switch">
                <input type="hidden" name="environment" value=env.name.clone() />
                <input type="hidden" name="on" value=(!on).to_string() />
                <label>
                    "Reason (required, for the audit log)"
                    // Emptied once a switch has been answered: the next switch needs a reason of
                    // its own, not the last one's.
                    <input
                        type="text"
                        name="reason"
                        required
                        maxlength="500"
                        placeholder=placeholder
                        prop:value=move || {
                            action.version().track();
                            String::new()
                        }
                    />
                </label>
                <button type="submit" class=if on { "primary" } else { "danger" } disabled=move || action.pending().get()>
                    {button}
                </button>
            </ActionForm>
            {move || error().map(|error| view! { <ErrorMessage error /> })}
        </section>
    }
}
