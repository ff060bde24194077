use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use crate::{
    api::{
        backups::{StartBackup, get_backup_status, get_storage_usage, list_backups},
        environments::get_environment,
        maintenance::get_maintenance,
    },
    components::{
        BackupNowForm, BackupStatusLine, BackupTable, EnvBadge, ErrorMessage, MaintenanceBanner, PageError, SizeChart,
        current_path, require_role,
    },
    error::AppError,
    format::bytes,
    types::{
        BackupList, BackupSort, EnvironmentBackupStatus, EnvironmentStorage, EnvironmentSummary, MaintenanceState, Role,
    },
    use_current_user,
};

/// The address of a page of an environment's backups; the defaults (newest first, page 1) are
/// left out.
fn backups_href(environment: &str, sort: BackupSort, page: u32) -> String {
    let mut query = Vec::new();
    if sort != BackupSort::default() {
        query.push(format!("sort={}", sort.as_str()));
    }
    if page > 1 {
        query.push(format!("page={page}"));
    }
    let base = format!("/environments/{environment}/backups");
    if query.is_empty() {
        base
    } else {
        format!("{base}?{}", query.join("&"))
    }
}

/// An environment's backups: how they are doing, "Back up now", their sizes over time, and the
/// list, ordered by time or size (`?sort=`), 25 a page (`?page=`); the space they take in the
/// repository, and for admins the form that imports an exported backup (a refused upload comes
/// back here with `?import_error=`).
#[component]
pub fn BackupsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let sort = move || query.read().get("sort").unwrap_or_default();
    let page = move || query.read().get("page").and_then(|p| p.parse::<u32>().ok());
    let environment = Resource::new(name, get_environment);
    let status = Resource::new(name, get_backup_status);
    let storage = Resource::new(name, get_storage_usage);
    let import_error = move || query.read().get("import_error");
    let maintenance = Resource::new(name, get_maintenance);
    let list = Resource::new(
        move || (name(), sort(), page()),
        |(name, sort, page)| list_backups(name, Some(sort), page),
    );
    let start = ServerAction::<StartBackup>::new();
    let user = use_current_user();
    let here = current_path();

    // A started backup: go and watch its job.
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
                    let user = match require_role(user.await, Role::Viewer, &here) {
                        Ok(user) => user,
                        Err(refusal) => return refusal,
                    };
                    let operator = user.role >= Role::Operator;
                    let admin = user.role >= Role::Admin;
                    let env = match environment.await {
                        Ok(env) => env,
                        Err(error) => {
                            return view! { <PageError heading="Backups" error back=("/environments", "All environments") /> }.into_any();
                        }
                    };
                    let (status, list) = (status.await, list.await);
                    // A failure to read the mode is not worth hiding the backups for.
                    let maintenance = maintenance.await.ok().flatten();
                    let import_error = import_error();
                    view! { <BackupsView env status list maintenance operator start /> <StoragePanel storage admin import_error /> }
                        .into_any()
                })
            }}
        </Suspense>
    }
}

#[component]
fn BackupsView(
    env: EnvironmentSummary,
    status: Result<EnvironmentBackupStatus, AppError>,
    list: Result<BackupList, AppError>,
    maintenance: Option<MaintenanceState>,
    operator: bool,
    start: ServerAction<StartBackup>,
) -> impl IntoView {
    let env_href = format!("/environments/{}", env.name);
    let status = match status {
        Ok(status) => {
            let form = (operator && status.has_resources())
                .then(|| view! { <BackupNowForm environment=env.name.clone() action=start /> });
            view! {
                <section class="panel backups-panel">
                    <BackupStatusLine status />
                    {form}
                </section>
            }
            .into_any()
        }
        Err(error) => view! { <ErrorMessage error /> }.into_any(),
    };
    let list = match list {
        Ok(list) => view! { <BackupListView environment=env.name.clone() list /> }.into_any(),
        Err(error) => view! { <ErrorMessage error /> }.into_any(),
    };
    // The environment's colour for everything on the page: the heading's rule, the chart.
    view! {
        <Title text=format!("Backups · {}", env.label) />
        <div style:--env-colour=env.colour.clone()>
            <div class="env-head">
                <p class="crumbs"><a href=env_href><EnvBadge env=env.clone() /></a></p>
                <h1>"Backups"</h1>
            </div>
            {maintenance.map(|maintenance| view! { <MaintenanceBanner maintenance label=env.label.clone() /> })}
            {status}
            {list}
        </div>
    }
}

/// Where the environment's backups are kept and the space they take; for admins the Upload form.
#[component]
fn StoragePanel(
    storage: Resource<Result<EnvironmentStorage, AppError>>,
    admin: bool,
    import_error: Option<String>,
) -> impl IntoView {
    view! {
        <section class="panel storage-panel" data-testid="storage">
            <h2>"Storage"</h2>
            {import_error
                .map(|why| {
                    view! {
                        <p class="error" role="alert" data-testid="import-error">
                            {format!("The upload was not imported: {why}")}
                        </p>
                    }
                })}
            <Suspense fallback=|| view! { <p class="muted">"Reading the repository…"</p> }>
                {move || Suspend::new(async move {
                    match storage.await {
                        Ok(storage) => {
                            let limit = storage.upload_limit_bytes;
                            let upload = admin.then(|| view! { <UploadForm limit /> });
                            view! { <StorageLine storage /> {upload} }.into_any()
                        }
                        Err(error) => view! { <ErrorMessage error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// "12 backups take 310 MB in the repository; as full copies they would take 5.1 GB."
#[component]
fn StorageLine(storage: EnvironmentStorage) -> impl IntoView {
    let EnvironmentStorage {
        location,
        backups,
        full_bytes,
        stored_bytes,
        repository_bytes,
        problem,
        ..
    } = storage;
    if let Some(problem) = problem {
        return view! {
            <p class="error" data-testid="storage-line">
                {format!("The repository ({location}) could not be read: {problem}")}
            </p>
        }
        .into_any();
    }
    let line = match backups {
        0 => "No backups of this environment in the repository yet.".to_string(),
        n => {
            let counted = if n == 1 {
                "1 backup takes".to_string()
            } else {
                format!("{n} backups take")
            };
            let ratio = if stored_bytes > 0 {
                full_bytes as f64 / stored_bytes as f64
            } else {
                0.0
            };
            let saving = match ratio {
                r if r >= 10.0 => format!(" ({r:.0}× less)"),
                r if r >= 1.1 => format!(" ({r:.1}× less)"),
                _ => String::new(),
            };
            format!(
                "{counted} {} in the repository; as full copies they would take {}{saving}.",
                bytes(stored_bytes),
                bytes(full_bytes)
            )
        }
    };
    view! {
        <p data-testid="storage-line">{line}</p>
        <p class="muted">
            {format!("The repository, every environment: {} at ", bytes(repository_bytes))}
            <code>{location}</code>
            "."
        </p>
    }
    .into_any()
}

/// Upload an export (admins): a plain form; the server sends the browser to the import job.
#[component]
fn UploadForm(limit: u64) -> impl IntoView {
    let params = use_params_map();
    let environment = move || params.read().get("name").unwrap_or_default();
    view! {
        <form
            method="post"
            action="/api/backups/import"
            enctype="multipart/form-data"
            class="upload-form"
            data-testid="upload-form"
        >
            <input type="hidden" name="environment" value=environment />
            <label>
                "Import a backup exported by another Steward"
                <input type="file" name="file" accept=".tar,application/x-tar" required />
            </label>
            <button type="submit">"Upload and import"</button>
            <p class="muted">
                {format!(
                    "Up to {}. Every file is checked against the export's manifest first: one that differs refuses the whole import. The import runs as a job.",
                    bytes(limit)
                )}
            </p>
        </form>
    }
}

/// The chart, the count, the table and the links to the other pages.
#[component]
fn BackupListView(environment: String, list: BackupList) -> impl IntoView {
    if list.total == 0 {
        return view! { <p class="empty">"No backups yet."</p> }.into_any();
    }
    let (pages, page, sort) = (list.pages(), list.page, list.sort);
    let (previous_label, next_label) = sort.page_labels();
    // Past the last page (an old link), "back" leads to the last page there is.
    let previous = (page > 1).then(|| backups_href(&environment, sort, (page - 1).min(pages)));
    let next = (page < pages).then(|| backups_href(&environment, sort, page + 1));
    let count = if list.total == 1 {
        "1 backup".to_string()
    } else {
        format!("{} backups", list.total)
    };
    let place = (pages > 1).then(|| format!(" · page {page} of {pages}"));
    let sort_href = {
        let environment = environment.clone();
        move |sort| backups_href(&environment, sort, 1)
    };
    let body = if list.rows.is_empty() {
        view! { <p class="empty">"No backups on this page."</p> }.into_any()
    } else {
        view! { <BackupTable rows=list.rows sort sort_href /> }.into_any()
    };
    view! {
        <SizeChart points=list.sizes />
        <p class="list-count" data-testid="backup-count">{count} {place}</p>
        {body}
        <nav class="pager" aria-label="Pages">
            {previous.map(|href| view! { <a href=href rel="prev">{format!("← {previous_label}")}</a> })}
            {next.map(|href| view! { <a href=href rel="next">{format!("{next_label} →")}</a> })}
        </nav>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_leave_out_the_defaults() {
        assert_eq!(
            backups_href("demo", BackupSort::Newest, 1),
            "/environments/demo/backups"
        );
        assert_eq!(
            backups_href("demo", BackupSort::Newest, 2),
            "/environments/demo/backups?page=2"
        );
        assert_eq!(
            backups_href("demo", BackupSort::Largest, 3),
            "/environments/demo/backups?sort=largest&page=3"
        );
    }
}
