use leptos::{form::ActionForm, prelude::*};

use crate::{
    api::retention::{PinBackup, UnpinBackup},
    types::Role,
};

/// The two server functions behind pinning: pinning keeps more (operators), unpinning lets
/// retention remove a backup again (admins).
#[derive(Clone, Copy)]
pub struct PinActions {
    pub pin: ServerAction<PinBackup>,
    pub unpin: ServerAction<UnpinBackup>,
}

impl PinActions {
    pub fn new() -> PinActions {
        PinActions {
            pin: ServerAction::new(),
            unpin: ServerAction::new(),
        }
    }
}

impl Default for PinActions {
    fn default() -> Self {
        PinActions::new()
    }
}

/// "Reason [Pin]" or "Reason [Unpin]" for backup `id`, when `role` may do it; nothing
/// otherwise. A plain form: without JavaScript the server sends the browser back to `back`.
#[component]
pub fn PinForm(id: String, pinned: bool, role: Role, back: String, actions: PinActions) -> impl IntoView {
    let fields = view! {
        <input type="hidden" name="id" value=id />
        <input type="hidden" name="back" value=back />
        <input type="text" name="reason" required maxlength="500" placeholder="Reason" aria-label="Reason" />
    };
    if pinned && role >= Role::Admin {
        view! {
            <ActionForm action=actions.unpin attr:class="inline-form" attr:data-testid="pin-form">
                {fields}
                <button type="submit">"Unpin"</button>
            </ActionForm>
        }
        .into_any()
    } else if !pinned && role >= Role::Operator {
        view! {
            <ActionForm action=actions.pin attr:class="inline-form" attr:data-testid="pin-form">
                {fields}
                <button type="submit">"Pin"</button>
            </ActionForm>
        }
        .into_any()
    } else {
        ().into_any()
    }
}
