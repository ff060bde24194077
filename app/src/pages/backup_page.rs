use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::{
    api::backups::get_backup,
    components::{
        EnvBadge, ErrorMessage, MaintenanceBanner, PageError, PinActions, PinForm, TestRestoreDetail, current_path,
        require_role, verification_sentence,
    },
    format::{bytes, duration, utc},
    types::{BackupArtifact, BackupDetail, Role},
    use_current_user,
};

/// One backup: its manifest in human form — where and when, why, how big, whether it was
/// verified, the job that took it, its artifacts with their checksums, and the facts; for
/// operators the way to restore it and to pin it (admins unpin).
#[component]
pub fn BackupPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let pins = PinActions::new();
    let detail = Resource::new(
        move || (id(), pins.pin.version().get(), pins.unpin.version().get()),
        |(id, _, _)| get_backup(id),
    );
    let user = use_current_user();
    let here = current_path();

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
                    let role = user.role;
                    match detail.await {
                        Ok(detail) => view! { <BackupView detail operator role pins /> }.into_any(),
                        Err(error) => {
                            view! { <PageError heading="Backup" error back=("/environments", "All environments") /> }.into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn BackupView(detail: BackupDetail, operator: bool, role: Role, pins: PinActions) -> impl IntoView {
    let BackupDetail {
        backup,
        artifacts,
        facts,
        steward_version,
        environment,
        maintenance,
        test_restores,
        pin: pinned,
    } = detail;
    let pin_row = view! { <PinRow id=backup.id.clone() pinned role pins /> };
    let label = environment
        .as_ref()
        .map_or_else(|| backup.environment.clone(), |env| env.label.clone());
    let banner = maintenance.map(|maintenance| view! { <MaintenanceBanner maintenance label=label.clone() /> });
    // Only a backup of a configured environment can be restored: the preview says whether
    // this one can, as the environment is configured now.
    let restore = (operator && environment.is_some()).then(|| {
        let href = format!("/backups/{}/restore", backup.id);
        view! {
            <div class="restore-offer" data-testid="restore-offer">
                <a class="button-link restore-link" href=href>"Restore this backup"</a>
                <span class="muted">
                    {format!(
                        " Puts {label} back to this backup, after a safety backup. You see what it will do before anything happens."
                    )}
                </span>
            </div>
        }
    });
    // The portable file, for operators (the same file `steward backup export` writes).
    let download = operator.then(|| {
        let href = format!("/api/backups/{}/export.tar", backup.id);
        view! {
            <div class="restore-offer" data-testid="download-offer">
                <a class="button-link download-link" href=href download="">"Download"</a>
                <span class="muted">
                    " One .tar file: the manifest with checksums and each artifact in a standard format (tar.zst, pg_restore's dump, SQL), readable without Steward. Another Steward imports it: Upload on its Backups page, or "
                    <code>"steward backup import"</code>
                    "."
                </span>
            </div>
        }
    });
    // A backup of an environment no longer configured is shown in neutral grey.
    let colour = environment
        .as_ref()
        .map_or_else(|| "#8a94a3".to_string(), |env| env.colour.clone());
    let env_href = format!("/environments/{}", backup.environment);
    let backups_href = format!("/environments/{}/backups", backup.environment);
    let env_view = match environment {
        Some(env) => view! { <a href=env_href><EnvBadge env /></a> }.into_any(),
        None => view! {
            <code>{backup.environment.clone()}</code>
            <span class="muted">" (no longer configured)"</span>
        }
        .into_any(),
    };
    let artifact_count = match artifacts.len() {
        1 => "1 artifact".to_string(),
        n => format!("{n} artifacts"),
    };
    let job = match backup.job_id {
        Some(job) => view! { <a href=format!("/jobs/{job}")>{format!("backup #{job}")}</a> }.into_any(),
        None => view! { <span class="muted">"— (found in the storage by a reindex)"</span> }.into_any(),
    };
    let verification_class = match backup.verification {
        crate::types::BackupVerification::Failed { .. } => "overdue",
        _ => "",
    };
    view! {
        <Title text=format!("Backup {}", backup.id) />
        <div class="env-head" style:--env-colour=colour>
            <p class="crumbs">{env_view} " · " <a href=backups_href>"All backups"</a></p>
            <h1>"Backup " <code>{backup.id.clone()}</code></h1>
        </div>
        {banner}
        {restore}
        {download}
        <dl class="facts" data-testid="backup-facts">
            <dt>"Taken"</dt>
            <dd>
                {utc(backup.created_at_ms)}
                <span class="muted">{format!(", took {}", duration(backup.created_at_ms, backup.finished_at_ms))}</span>
            </dd>
            <dt>"Trigger"</dt>
            <dd>{backup.trigger.clone()}</dd>
            <dt>"Requested by"</dt>
            <dd>{backup.requested_by.clone()}</dd>
            <dt>"Audit"</dt>
            <dd><a href=format!("/audit?target={}", crate::types::encode(&backup.id))>"Events about this backup"</a></dd>
            <dt>"Description"</dt>
            <dd data-testid="backup-description">
                {if backup.description.is_empty() { "—".to_string() } else { backup.description.clone() }}
            </dd>
            <dt>"Size"</dt>
            <dd>{format!("{} in {artifact_count}", bytes(backup.total_size))}</dd>
            <dt>"Verified"</dt>
            <dd class=verification_class>{verification_sentence(&backup.verification)}</dd>
            <dt>"Test restore"</dt>
            <dd data-testid="test-restore">
                <TestRestoreDetail test_restore=backup.test_restore.clone() />
            </dd>
            {pin_row}
            <dt>"Job"</dt>
            <dd>{job}</dd>
            <dt>"Written by"</dt>
            <dd>{format!("Steward {steward_version}")}</dd>
        </dl>
        <section class="panel">
            <h2>"Artifacts"</h2>
            <ArtifactTable artifacts />
        </section>
        {(test_restores.len() > 1)
            .then(|| {
                view! {
                    <section class="panel">
                        <h2>"Earlier test restores"</h2>
                        <ul class="test-restores" data-testid="test-restore-history">
                            {test_restores
                                .into_iter()
                                .skip(1)
                                .map(|test_restore| view! { <li><TestRestoreDetail test_restore /></li> })
                                .collect_view()}
                        </ul>
                    </section>
                }
            })}
        <section class="panel">
            <h2>"Environment facts"</h2>
            {if facts.is_empty() {
                view! {
                    <p class="muted">
                        "None were recorded. Configure them under " <code>"[environments.facts]"</code> "."
                    </p>
                }
                    .into_any()
            } else {
                view! {
                    <dl class="facts fact-values" data-testid="backup-env-facts">
                        {facts
                            .into_iter()
                            .map(|(name, value)| view! { <dt>{name}</dt> <dd><code>{value}</code></dd> })
                            .collect_view()}
                    </dl>
                }
                    .into_any()
            }}
        </section>
    }
}

/// Each resource's file: its size, its checksum (shortened; the full one in the tooltip and
/// selectable) and the tool that wrote it; below an `http` resource's, what the remote system
/// reported.
#[component]
fn ArtifactTable(artifacts: Vec<BackupArtifact>) -> impl IntoView {
    view! {
        <table class="data artifacts">
            <thead>
                <tr>
                    <th>"Resource"</th>
                    <th>"Driver"</th>
                    <th>"File"</th>
                    <th class="num">"Size"</th>
                    <th>"SHA-256"</th>
                    <th>"Tool"</th>
                </tr>
            </thead>
            <tbody>
                {artifacts
                    .into_iter()
                    .map(|artifact| {
                        let short = artifact.sha256.chars().take(12).collect::<String>();
                        let resource = artifact.resource.clone();
                        // Which of the remote system's own backups this one is.
                        let remote = artifact
                            .remote_report
                            .map(|report| {
                                view! {
                                    <tr class="remote-report" data-testid="remote-report">
                                        <td></td>
                                        <td colspan="5" class="muted">
                                            {format!("The remote system reported: {report}")}
                                        </td>
                                    </tr>
                                }
                            });
                        view! {
                            <tr data-resource=resource>
                                <td>{artifact.resource}</td>
                                <td>{artifact.driver}</td>
                                <td><code>{artifact.file}</code></td>
                                <td class="num nowrap">{bytes(artifact.size)}</td>
                                <td>
                                    {if artifact.sha256.is_empty() {
                                        view! { <span class="muted">"a tree: each block checked"</span> }.into_any()
                                    } else {
                                        view! { <code class="sha" title=artifact.sha256>{short} "…"</code> }.into_any()
                                    }}
                                </td>
                                <td>{artifact.tool.unwrap_or_else(|| "—".to_string())}</td>
                            </tr>
                            {remote}
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// Whether the backup is pinned (by whom, when, why), and the form that pins it (operators) or
/// unpins it (admins), with a reason.
#[component]
fn PinRow(id: String, pinned: Option<(String, i64, String)>, role: Role, pins: PinActions) -> impl IntoView {
    let error = move || {
        [
            pins.pin.value().get().and_then(Result::err),
            pins.unpin.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
    };
    let state = match &pinned {
        Some((by, at, reason)) => format!("Pinned by {by} at {}: {reason}. Retention keeps it.", utc(*at)),
        None => "No: retention may remove it (see the environment's Retention page).".to_string(),
    };
    let back = format!("/backups/{id}");
    view! {
        <dt>"Pinned"</dt>
        <dd data-testid="backup-pin">
            <div>{state}</div>
            <PinForm id pinned=pinned.is_some() role back actions=pins />
            {move || error().map(|error| view! { <ErrorMessage error /> })}
        </dd>
    }
}
