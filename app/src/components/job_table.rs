use leptos::prelude::*;

use crate::{components::JobStatusBadge, format::utc, types::JobSummary};

/// Jobs as a table, newest first, each linking to its page.
#[component]
pub fn JobTable(jobs: Vec<JobSummary>) -> impl IntoView {
    view! {
        <table class="data jobs">
            <thead>
                <tr>
                    <th>"Job"</th>
                    <th>"Environment"</th>
                    <th>"State"</th>
                    <th>"Requested by"</th>
                    <th>"Reason"</th>
                    <th>"Requested"</th>
                </tr>
            </thead>
            <tbody>
                {jobs
                    .into_iter()
                    .map(|job| {
                        let href = format!("/jobs/{}", job.id);
                        view! {
                            <tr data-job=job.id>
                                <td><a href=href>{job.title}</a></td>
                                <td>{job.environment}</td>
                                <td><JobStatusBadge status=job.status /></td>
                                <td>{job.requested_by}</td>
                                <td class="reason">{job.reason}</td>
                                <td class="nowrap">{utc(job.created_at_ms)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
