use leptos::{form::ActionForm, prelude::*};

use crate::{api::backups::StartBackup, components::ErrorMessage};

/// "Back up now": a description and a button. A plain form, so it works without JavaScript
/// (the server sends the browser on to the new job); with JavaScript a refusal, such as the
/// environment being busy, shows here. The page that owns `action` goes to the job.
#[component]
pub fn BackupNowForm(environment: String, action: ServerAction<StartBackup>) -> impl IntoView {
    let error = move || action.value().get().and_then(Result::err);
    view! {
        <ActionForm action attr:class="backup-now" attr:data-testid="backup-now">
            <input type="hidden" name="environment" value=environment />
            <label>
                "Description"
                <input
                    type="text"
                    name="description"
                    maxlength="500"
                    placeholder="What this backup is for, e.g. before the upgrade (optional)"
                />
            </label>
            <button type="submit" class="primary" disabled=move || action.pending().get()>
                "Back up now"
            </button>
        </ActionForm>
        {move || error().map(|error| view! { <ErrorMessage error /> })}
    }
}
