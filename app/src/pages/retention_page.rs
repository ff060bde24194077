use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::{
    api::{
        environments::get_environment,
        retention::{ApplyRetention, preview_retention},
    },
    components::{EnvBadge, ErrorMessage, PageError, PinActions, PinForm, current_path, require_role},
    format::{bytes, utc},
    types::{EnvironmentSummary, RetentionRow, RetentionView, Role},
    use_current_user,
};

/// An environment's retention, previewed before anything is removed (like Proxmox Backup
/// Server's prune simulator): every backup as keep or remove with the rule that decides it.
/// Operators pin backups (with a reason) so that nothing removes them; admins unpin and apply
/// the rules, which queues a `prune` job. Plain forms: all of it works without JavaScript.
#[component]
pub fn RetentionPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let environment = Resource::new(name, get_environment);
    let pins = PinActions::new();
    let apply = ServerAction::<ApplyRetention>::new();
    let preview = Resource::new(
        move || (name(), pins.pin.version().get(), pins.unpin.version().get()),
        |(name, _, _)| preview_retention(name),
    );
    let user = use_current_user();
    let here = current_path();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(job)) = apply.value().get() {
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
                    match (environment.await, preview.await) {
                        (Ok(env), Ok(view)) => {
                            let role = user.role;
                            view! { <RetentionView env view role pins apply here=here.clone() /> }.into_any()
                        }
                        (Err(error), _) | (_, Err(error)) => {
                            view! { <PageError heading="Retention" error back=("/environments", "All environments") /> }
                                .into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn RetentionView(
    env: EnvironmentSummary,
    view: RetentionView,
    role: Role,
    pins: PinActions,
    apply: ServerAction<ApplyRetention>,
    here: String,
) -> impl IntoView {
    let error = move || {
        [
            pins.pin.value().get().and_then(Result::err),
            pins.unpin.value().get().and_then(Result::err),
            apply.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
    };
    let env_href = format!("/environments/{}", env.name);
    let summary = format!(
        "{} kept, {} to remove ({} freed).",
        view.keep_count,
        view.remove_count,
        bytes(view.reclaimed_bytes)
    );
    let has_rules = !view.rules.is_empty();
    let apply_form = (role >= Role::Admin && has_rules).then(|| {
        let environment = env.name.clone();
        view! {
            <ActionForm action=apply attr:class="inline-form" attr:data-testid="apply-retention">
                <input type="hidden" name="environment" value=environment />
                <button type="submit" class="primary">"Apply retention now"</button>
            </ActionForm>
        }
    });
    view! {
        <Title text=format!("Retention of {}", env.label) />
        <div class="env-head" style:--env-colour=env.colour.clone()>
            <p class="crumbs"><a href=env_href><EnvBadge env=env.clone() /></a></p>
            <h1>"Retention"</h1>
        </div>
        {move || error().map(|error| view! { <ErrorMessage error /> })}
        <section class="panel">
            {if has_rules {
                view! {
                    <p>"Kept by these rules, in order (as borg prune counts them):"</p>
                    <ul>{view.rules.into_iter().map(|rule| view! { <li>{rule}</li> }).collect_view()}</ul>
                }
                    .into_any()
            } else {
                view! {
                    <p>
                        "No retention rules: every backup is kept. Add " <code>"[environments.retention]"</code>
                        " to the configuration to remove old ones."
                    </p>
                }
                    .into_any()
            }}
            <p data-testid="retention-summary"><strong>{summary}</strong></p>
            <p class="muted">
                "Never removed: pinned backups, the newest backup proven restorable, safety backups of failed restores nobody has dealt with, and backups a job is reading."
            </p>
            {apply_form}
        </section>
        <table class="data retention-table" data-testid="retention-table">
            <thead>
                <tr>
                    <th>"Backup"</th>
                    <th>"Taken"</th>
                    <th>"Trigger"</th>
                    <th class="num">"Size"</th>
                    <th>"Decision"</th>
                    <th>"Pin"</th>
                </tr>
            </thead>
            <tbody>
                {view
                    .backups
                    .into_iter()
                    .map(|row| view! { <RetentionLine row role pins here=here.clone() /> })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn RetentionLine(row: RetentionRow, role: Role, pins: PinActions, here: String) -> impl IntoView {
    let href = format!("/backups/{}", row.id);
    let verdict_class = if row.keep { "" } else { "verdict-remove" };
    view! {
        <tr data-backup=row.id.clone() data-keep=row.keep.to_string()>
            <td><a href=href><code>{row.id.clone()}</code></a></td>
            <td class="nowrap">{utc(row.created_at_ms)}</td>
            <td>{row.trigger}</td>
            <td class="num nowrap">{bytes(row.total_size)}</td>
            <td class=verdict_class data-testid="verdict">{row.verdict}</td>
            <td><PinForm id=row.id.clone() pinned=row.pinned role back=here actions=pins /></td>
        </tr>
    }
}
