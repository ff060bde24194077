use leptos::prelude::*;

use crate::{
    components::{TestRestoreBadge, VerificationBadge},
    format::{bytes, utc},
    types::{BackupSort, BackupSummary},
};

/// Backups as a table, each linking to its page. The Time and Size headers are links that
/// order the list by them (again: the other way round); `sort_href` makes such a link.
#[component]
pub fn BackupTable(
    rows: Vec<BackupSummary>,
    sort: BackupSort,
    sort_href: impl Fn(BackupSort) -> String + 'static,
) -> impl IntoView {
    let (time_next, time_mark, time_aria) = match sort {
        BackupSort::Newest => (BackupSort::Oldest, " ↓", Some("descending")),
        BackupSort::Oldest => (BackupSort::Newest, " ↑", Some("ascending")),
        _ => (BackupSort::Newest, "", None),
    };
    let (size_next, size_mark, size_aria) = match sort {
        BackupSort::Largest => (BackupSort::Smallest, " ↓", Some("descending")),
        BackupSort::Smallest => (BackupSort::Largest, " ↑", Some("ascending")),
        _ => (BackupSort::Largest, "", None),
    };
    view! {
        <div class="table-scroll">
            <table class="data backups">
                <thead>
                    <tr>
                        <th>"Backup"</th>
                        <th aria-sort=time_aria>
                            <a href=sort_href(time_next) class="sort" data-testid="sort-time">"Time" {time_mark}</a>
                        </th>
                        <th>"Trigger"</th>
                        <th>"Who"</th>
                        <th>"Description"</th>
                        <th aria-sort=size_aria class="num">
                            <a href=sort_href(size_next) class="sort" data-testid="sort-size">"Size" {size_mark}</a>
                        </th>
                        <th>"Resources"</th>
                        <th>"Verified"</th>
                        <th>"Test restore"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|backup| {
                            let href = format!("/backups/{}", backup.id);
                            let (id, description) = (backup.id.clone(), backup.description.clone());
                            view! {
                                <tr data-backup=id>
                                    <td class="nowrap"><a href=href><code>{backup.id}</code></a></td>
                                    <td class="nowrap">{utc(backup.created_at_ms)}</td>
                                    <td>{backup.trigger}</td>
                                    <td>{backup.requested_by}</td>
                                    <td class="reason" title=description>{backup.description}</td>
                                    <td class="num nowrap">{bytes(backup.total_size)}</td>
                                    <td>{backup.resources.join(", ")}</td>
                                    <td><VerificationBadge verification=backup.verification /></td>
                                    <td><TestRestoreBadge test_restore=backup.test_restore /></td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
