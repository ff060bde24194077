use leptos::prelude::*;

use crate::{
    format::{ago, bytes, utc},
    types::EnvironmentBackupStatus,
};

/// The latest backup's age in words, in red when it is older than the environment's
/// expectation (or there is none and one is expected), and what a backup captures.
#[component]
pub fn BackupStatusLine(status: EnvironmentBackupStatus) -> impl IntoView {
    if !status.has_resources() {
        return view! {
            <p class="backup-none" data-testid="backup-status">
                "Nothing to back up: this environment has no resources. Add one under "
                <code>"[environments.resources.NAME]"</code>
                " in Steward's configuration."
            </p>
        }
        .into_any();
    }
    let class = if status.overdue {
        "backup-age overdue"
    } else {
        "backup-age"
    };
    let age = match &status.latest {
        Some(backup) => {
            let href = format!("/backups/{}", backup.id);
            view! {
                <strong>{format!("Last backup {}", ago(backup.created_at_ms, status.as_of_ms))}</strong>
                <span class="muted">{format!(" · {} · {} · ", utc(backup.created_at_ms), bytes(backup.total_size))}</span>
                <a href=href>{backup.id.clone()}</a>
            }
            .into_any()
        }
        None => view! { <strong>"No backup yet"</strong> }.into_any(),
    };
    let expectation = status.expected_within_hours.map(|hours| {
        let hours = if hours == 1 {
            "hour".to_string()
        } else {
            format!("{hours} hours")
        };
        if status.overdue {
            format!("Overdue: a backup is expected at least every {hours}.")
        } else {
            format!("A backup is expected at least every {hours}.")
        }
    });
    let captures = status
        .resources
        .iter()
        .map(|r| format!("{} ({})", r.name, r.driver))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <div class="backup-status" data-testid="backup-status" data-overdue=status.overdue.to_string()>
            <p class=class>{age}</p>
            {expectation.map(|text| view! { <p class=if status.overdue { "overdue" } else { "muted" }>{text}</p> })}
            <p class="muted">"A backup captures " {captures} "."</p>
        </div>
    }
    .into_any()
}
