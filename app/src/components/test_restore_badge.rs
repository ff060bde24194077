use leptos::prelude::*;

use crate::{format::utc, types::BackupTestRestore};

/// The newest test restore of a backup, compact for a list: "Proven restorable · 2 hours ago ·
/// db, files", or "Test restore failed: <the tool's words>" (cut short; the whole in the
/// tooltip), or "not test-restored".
#[component]
pub fn TestRestoreBadge(test_restore: BackupTestRestore) -> impl IntoView {
    let (class, text, title) = match test_restore {
        BackupTestRestore::Never => (
            "verify-never",
            "not test-restored".to_string(),
            "No verification has restored it into scratch yet.".to_string(),
        ),
        BackupTestRestore::Passed {
            at_ms,
            age,
            checked,
            resources,
            ..
        } => (
            "verify-ok",
            format!("Proven restorable · {age} · {}", resources.join(", ")),
            format!("Test-restored at {}: {checked}", utc(at_ms)),
        ),
        BackupTestRestore::Failed { at_ms, error, .. } => {
            let short: String = error.chars().take(80).collect();
            let more = if short.len() < error.len() { "…" } else { "" };
            (
                "verify-failed",
                format!("Test restore failed: {short}{more}"),
                format!("Test restore at {} failed: {error}", utc(at_ms)),
            )
        }
    };
    view! { <span class=format!("test-restore {class}") title=title data-testid="test-restore-badge">{text}</span> }
}

/// The same in full for the backup's page: when, by which job, what was checked or why it
/// failed.
#[component]
pub fn TestRestoreDetail(test_restore: BackupTestRestore) -> impl IntoView {
    let job = |job_id: Option<i64>| {
        job_id.map(|id| view! { " by " <a href=format!("/jobs/{id}")>{format!("verify #{id}")}</a> })
    };
    match test_restore {
        BackupTestRestore::Never => view! {
            <span class="muted">"Never. A verification (" <code>"steward verify"</code> ") restores it into scratch and checks it."</span>
        }
        .into_any(),
        BackupTestRestore::Passed {
            at_ms,
            age,
            checked,
            job_id,
            ..
        } => view! {
            <span class="test-restore verify-ok">"Proven restorable"</span>
            {format!(" {age} ({})", utc(at_ms))}
            {job(job_id)}
            <br />
            <span class="muted">{checked}</span>
        }
        .into_any(),
        BackupTestRestore::Failed {
            at_ms,
            age,
            checked,
            error,
            job_id,
        } => view! {
            <span class="test-restore verify-failed">"Test restore failed"</span>
            {format!(" {age} ({})", utc(at_ms))}
            {job(job_id)}
            <br />
            <span class="overdue">{error}</span>
            <br />
            <span class="muted">{format!("Checked: {checked}")}</span>
        }
        .into_any(),
    }
}
