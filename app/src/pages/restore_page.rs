use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::{
    api::restores::{StartRestore, get_restore_preview},
    components::{EnvBadge, ErrorMessage, MaintenanceBanner, PageError, current_path, require_role},
    format::{bytes, elapsed, utc},
    types::{RestorePreview, Role},
    use_current_user,
};

/// Restoring a backup, for people who are not system administrators: what it will do in plain
/// words (what is lost, what is replaced and what is left, the safety backup, maintenance
/// mode, the smoke checks), then the confirmation — a reason and the environment's name typed,
/// and on production a second, explicit confirmation. Operators and admins.
#[component]
pub fn RestorePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let preview = Resource::new(id, get_restore_preview);
    let start = ServerAction::<StartRestore>::new();
    let user = use_current_user();
    let here = current_path();

    // The restore is a job: go and watch it.
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(job)) = start.value().get() {
            navigate(&format!("/jobs/{}", job.id), Default::default());
        }
    });

    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let here = here.clone();
                Suspend::new(async move {
                    if let Err(refusal) = require_role(user.await, Role::Operator, &here) {
                        return refusal;
                    }
                    match preview.await {
                        Ok(preview) => view! { <RestoreView preview start /> }.into_any(),
                        Err(error) => {
                            view! { <PageError heading="Restore" error back=("/environments", "All environments") /> }.into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn RestoreView(preview: RestorePreview, start: ServerAction<StartRestore>) -> impl IntoView {
    let RestorePreview {
        backup,
        environment: env,
        resources,
        problems,
        not_in_backup,
        maintenance,
        busy,
        smoke_checks,
        as_of_ms,
    } = preview;
    let label = env.label.clone();
    let taken = utc(backup.created_at_ms);
    let age = elapsed(backup.created_at_ms, as_of_ms);
    let env_href = format!("/environments/{}", env.name);
    let backup_href = format!("/backups/{}", backup.id);
    let resource_count = match resources.len() {
        1 => "1 resource".to_string(),
        n => format!("{n} resources"),
    };
    let names: Vec<String> = resources.iter().map(|r| r.name.clone()).collect();
    let replace_step = if names.len() == 1 {
        format!("{} is replaced with its state from the backup.", names[0])
    } else {
        format!("{} are replaced with their state from the backup.", and_list(&names))
    };
    // What happens to maintenance mode at the end depends on who put the environment in it.
    let leave_step = match &maintenance {
        Some(m) if m.job_id.is_none() => format!(
            "{label} stays in maintenance mode afterwards: a person put it there by hand, so take it out by hand when you are done."
        ),
        Some(m) => format!(
            "{label} is already in maintenance mode from restore #{}: this restore continues in it and takes it out at the end.",
            m.job_id.unwrap_or_default()
        ),
        None => format!("{label} leaves maintenance mode and is back in use."),
    };
    let smoke_step = (!smoke_checks.is_empty())
        .then(|| format!("Steward checks that {label} works again: {}.", smoke_checks.join(", ")));
    let smoke_fact = if smoke_checks.is_empty() {
        format!("None are configured: check {label} yourself afterwards.")
    } else {
        smoke_checks.join(", ")
    };
    let preview_class = if env.production {
        "restore-preview production"
    } else {
        "restore-preview"
    };
    let description = (!backup.description.is_empty()).then(|| format!("“{}”", backup.description));
    let can_restore = problems.is_empty();
    let form = can_restore.then(|| {
        view! {
            <RestoreForm
                backup_id=backup.id.clone()
                name=env.name.clone()
                label=label.clone()
                production=env.production
                taken=taken.clone()
                start
            />
        }
    });
    view! {
        <Title text=format!("Restore {}", backup.id) />
        <div class="env-head" style:--env-colour=env.colour.clone()>
            <p class="crumbs">
                <a href=env_href><EnvBadge env=env.clone() /></a>
                " · "
                <a href=backup_href.clone()>{format!("Backup {}", backup.id)}</a>
            </p>
            <h1>{format!("Restore {label} to {taken}")}</h1>
        </div>
        {maintenance.clone().map(|maintenance| view! { <MaintenanceBanner maintenance label=label.clone() /> })}
        <section
            class=preview_class
            style:--env-colour=env.colour.clone()
            aria-labelledby="impact"
            data-testid="restore-preview"
        >
            {env.production.then(|| view! {
                <p class="production-warning" data-testid="production-warning">
                    {format!("{label} is a production environment: real people use it and its data.")}
                </p>
            })}
            <p class="restore-impact" id="impact" data-testid="restore-impact">
                <strong>{format!("Everything changed in {label} since {taken} — {age} ago — will be lost.")}</strong>
                {format!(" {label} goes back to how it was when this backup was taken.")}
            </p>
            <dl class="facts restore-facts">
                <dt>"Environment"</dt>
                <dd><EnvBadge env=env.clone() /> " " <code class="muted">{env.name.clone()}</code></dd>
                <dt>"Backup"</dt>
                <dd>
                    <a href=backup_href>{backup.id.clone()}</a>
                    {format!(", taken {taken} ({age} ago) by {}", backup.requested_by)}
                    {description.map(|d| view! { <br /> <span class="muted">{d}</span> })}
                </dd>
                <dt>"Size"</dt>
                <dd data-testid="restore-size">{format!("{} in {resource_count}", bytes(backup.total_size))}</dd>
                <dt>"Replaced"</dt>
                <dd>
                    <ul class="plain-list" data-testid="restore-resources">
                        {resources
                            .iter()
                            .map(|r| {
                                view! {
                                    <li data-resource=r.name.clone()>
                                        <strong>{r.name.clone()}</strong>
                                        <span class="muted">{format!(" ({}) · {}", r.driver, bytes(r.size))}</span>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </dd>
                {(!not_in_backup.is_empty()).then(|| view! {
                    <dt>"Left as they are"</dt>
                    <dd data-testid="restore-not-in-backup">
                        {format!("{} (not in this backup)", not_in_backup.join(", "))}
                    </dd>
                })}
                <dt>"Smoke checks"</dt>
                <dd data-testid="restore-smoke-checks">{smoke_fact}</dd>
            </dl>
            <h2>"What happens, step by step"</h2>
            <ol class="restore-steps" data-testid="restore-steps">
                <li>"Steward checks that every file of the backup is complete and undamaged. If one is not, it stops before touching anything."</li>
                <li>{format!("{label} goes into maintenance mode, and its pages here say so.")}</li>
                <li>
                    <strong>{format!("A safety backup of {label} as it is now is taken first,")}</strong>
                    " so that the restore can be undone."
                </li>
                <li>{replace_step}</li>
                {smoke_step.map(|step| view! { <li>{step}</li> })}
                <li>{leave_step}</li>
            </ol>
            <p class="muted">
                {format!("If a step fails, Steward stops there and leaves {label} in maintenance mode; its page then offers an Undo that brings back the safety backup.")}
            </p>
        </section>
        {(!can_restore).then(|| view! {
            <div class="error" role="alert" data-testid="restore-problems">
                <p><strong>"This backup cannot be restored as the environment is configured now:"</strong></p>
                <ul>{problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}</ul>
            </div>
        })}
        {busy.map(|busy| view! {
            <p class="banner banner-warning" data-testid="restore-busy">
                {busy} <span class="muted">" (a restore started now would be refused)"</span>
            </p>
        })}
        {form}
    }
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The confirmation: why, the environment's name typed, on production a second confirmation;
/// then Restore. A plain form, so it works without JavaScript (the server sends the browser on
/// to the job); with JavaScript a refusal shows here and the page goes to the job.
#[component]
fn RestoreForm(
    backup_id: String,
    name: String,
    label: String,
    production: bool,
    taken: String,
    start: ServerAction<StartRestore>,
) -> impl IntoView {
    let error = move || start.value().get().and_then(Result::err);
    let second = production.then(|| {
        view! {
            <label class="checkbox">
                <input type="checkbox" name="confirm_production" value="true" required />
                <span>{format!(
                    "I understand that {label} ({name}), a production environment, will be replaced by this backup and that everything changed in it since {taken} will be lost."
                )}</span>
            </label>
        }
    });
    view! {
        <ActionForm action=start attr:class="panel restore-form" attr:data-testid="restore-form">
            <h2>"Confirm the restore"</h2>
            <input type="hidden" name="backup_id" value=backup_id />
            <label>
                "Why are you restoring? (required, for the audit log)"
                <input
                    type="text"
                    name="reason"
                    required
                    maxlength="500"
                    placeholder="e.g. the import at 10:00 deleted the orders"
                />
            </label>
            <label>
                <span>"Type " <code>{name.clone()}</code> " to confirm"</span>
                <input type="text" name="confirm_environment" required autocomplete="off" spellcheck="false" />
            </label>
            {second}
            <div>
                <button type="submit" class="danger" disabled=move || start.pending().get()>
                    "Restore"
                </button>
            </div>
            {move || error().map(|error| view! { <ErrorMessage error /> })}
        </ActionForm>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_a_sentence() {
        let list = |items: &[&str]| and_list(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["site"]), "site");
        assert_eq!(list(&["site", "shop-db"]), "site and shop-db");
        assert_eq!(list(&["a", "b", "c"]), "a, b and c");
    }
}
