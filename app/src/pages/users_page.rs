use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;

use crate::{
    api::users::{CreateUser, ResetUserPassword, SetUserDisabled, SetUserRole, UnlockUser, list_users},
    components::{ErrorMessage, current_path, require_role},
    error::AppError,
    format::utc,
    types::{LockedName, Role, UserSummary},
    use_current_user,
};

/// The actions of the page, shared by every row; the list reloads after each.
#[derive(Clone, Copy)]
struct Actions {
    create: ServerAction<CreateUser>,
    set_role: ServerAction<SetUserRole>,
    set_disabled: ServerAction<SetUserDisabled>,
    reset: ServerAction<ResetUserPassword>,
    unlock: ServerAction<UnlockUser>,
}

/// User management, for admins: add users, change roles, disable, reset passwords, lift
/// sign-in locks.
#[component]
pub fn UsersPage() -> impl IntoView {
    let actions = Actions {
        create: ServerAction::new(),
        set_role: ServerAction::new(),
        set_disabled: ServerAction::new(),
        reset: ServerAction::new(),
        unlock: ServerAction::new(),
    };
    let users = Resource::new(
        move || {
            (
                actions.create.version().get(),
                actions.set_role.version().get(),
                actions.set_disabled.version().get(),
                actions.reset.version().get(),
                actions.unlock.version().get(),
            )
        },
        |_| list_users(),
    );

    let user = use_current_user();
    let here = current_path();

    view! {
        <Title text="Users" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let here = here.clone();
                Suspend::new(async move {
                    if let Err(refusal) = require_role(user.await, Role::Admin, &here) {
                        return refusal;
                    }
                    let table = match users.await {
                        Ok((list, locked)) => view! { <UserTable list locked actions /> }.into_any(),
                        Err(error) => view! { <ErrorMessage error /> }.into_any(),
                    };
                    view! {
                        <h1>"Users"</h1>
                        <Outcomes actions />
                        {table}
                        // Rebuilt after each addition, so the form starts empty again.
                        {move || {
                            actions.create.version().track();
                            view! { <AddUser action=actions.create /> }
                        }}
                    }
                        .into_any()
                })
            }}
        </Suspense>
    }
}

/// What the last action did, or why it did not.
#[component]
fn Outcomes(actions: Actions) -> impl IntoView {
    let error = move || {
        let errors: [Option<AppError>; 5] = [
            actions.create.value().get().and_then(Result::err),
            actions.set_role.value().get().and_then(Result::err),
            actions.set_disabled.value().get().and_then(Result::err),
            actions.reset.value().get().and_then(Result::err),
            actions.unlock.value().get().and_then(Result::err),
        ];
        errors.into_iter().flatten().next()
    };
    let created = move || actions.create.value().get().and_then(Result::ok);
    let reset = move || actions.reset.value().get().and_then(Result::ok);
    view! {
        {move || error().map(|error| view! { <ErrorMessage error /> })}
        {move || {
            created()
                .map(|(username, password)| match password {
                    Some(password) => {
                        view! {
                            <div class="notice" role="status">
                                "User " <strong>{username}</strong> " created. Their password is "
                                <code class="secret" data-testid="new-password">{password}</code>
                                " — it is shown only now; pass it on safely."
                            </div>
                        }
                            .into_any()
                    }
                    None => {
                        view! { <div class="notice" role="status">"User " <strong>{username}</strong> " created."</div> }
                            .into_any()
                    }
                })
        }}
        {move || {
            reset()
                .map(|(username, password)| {
                    view! {
                        <div class="notice" role="status">
                            "New password for " <strong>{username}</strong> ": "
                            <code class="secret" data-testid="new-password">{password}</code>
                            " — shown only now."
                        </div>
                    }
                })
        }}
    }
}

#[component]
fn UserTable(list: Vec<UserSummary>, locked: Vec<LockedName>, actions: Actions) -> impl IntoView {
    let strangers: Vec<LockedName> = locked
        .into_iter()
        .filter(|l| !list.iter().any(|u| u.username == l.username))
        .collect();
    view! {
        <table class="data users">
            <thead>
                <tr>
                    <th>"Username"</th>
                    <th>"Role"</th>
                    <th>"Status"</th>
                    <th>"Last sign-in"</th>
                    <th>"Actions"</th>
                </tr>
            </thead>
            <tbody>
                {list.into_iter().map(|user| view! { <UserRow user actions /> }).collect_view()}
            </tbody>
        </table>
        {(!strangers.is_empty())
            .then(|| {
                view! {
                    <section class="panel">
                        <h2>"Locked usernames without an account"</h2>
                        <p class="muted">"Someone tried these names too often. The locks end by themselves."</p>
                        <ul>
                            {strangers
                                .into_iter()
                                .map(|l| {
                                    view! {
                                        <li>
                                            <code>{l.username.clone()}</code> " until " {utc(l.until_ms)} " "
                                            <UnlockButton action=actions.unlock username=l.username />
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    </section>
                }
            })}
    }
}

#[component]
fn UserRow(user: UserSummary, actions: Actions) -> impl IntoView {
    let status = match (user.disabled, user.locked_until_ms) {
        (true, _) => "disabled".to_string(),
        (false, Some(until)) => format!("locked until {}", utc(until)),
        (false, None) => "active".to_string(),
    };
    let name = user.username;
    let unlock = user
        .locked_until_ms
        .map(|_| view! { <UnlockButton action=actions.unlock username=name.clone() /> });
    let (n1, n2, n3, n4) = (name.clone(), name.clone(), name.clone(), name.clone());
    let encoded = crate::types::encode(&name);
    let (about, did) = (format!("/audit?target={encoded}"), format!("/audit?actor={encoded}"));
    view! {
            <tr data-user=n1.clone() id=format!("user-{n1}")>
                <td>
                    <strong>{name}</strong>
                    <br />
                    <small><a href=did>"what they did"</a> " · " <a href=about>"about them"</a></small>
                </td>
                <td>
    <span class="role-name">{user.role.as_str()}</span>
                    {Role::ALL
                        .into_iter()
                        .filter(|role| *role != user.role)
                        .map(|role| {
                            let username = n2.clone();
                            view! {
                                <ActionForm action=actions.set_role attr:class="inline">
                                    <input type="hidden" name="username" value=username />
                                    <input type="hidden" name="role" value=role.as_str() />
                                    <button type="submit" class="small">{format!("Make {}", role.as_str())}</button>
                                </ActionForm>
                            }
                        })
                        .collect_view()}
                </td>
                <td>{status}</td>
                <td>{user.last_login_at_ms.map(utc).unwrap_or_else(|| "never".into())}</td>
                <td class="actions">
                    <ActionForm action=actions.set_disabled attr:class="inline">
                        <input type="hidden" name="username" value=n3 />
                        <input type="hidden" name="disabled" value=(!user.disabled).to_string() />
                        <button type="submit">{if user.disabled { "Enable" } else { "Disable" }}</button>
                    </ActionForm>
                    <ActionForm action=actions.reset attr:class="inline">
                        <input type="hidden" name="username" value=n4 />
                        <button type="submit">"Reset password"</button>
                    </ActionForm>
                    {unlock}
                </td>
            </tr>
        }
}

#[component]
fn UnlockButton(action: ServerAction<UnlockUser>, username: String) -> impl IntoView {
    view! {
        <ActionForm action attr:class="inline">
            <input type="hidden" name="username" value=username />
            <button type="submit">"Lift lock"</button>
        </ActionForm>
    }
}

#[component]
fn AddUser(action: ServerAction<CreateUser>) -> impl IntoView {
    view! {
        <section class="panel">
            <h2>"Add a user"</h2>
            <ActionForm action attr:class="stack narrow">
                <label for="new-username">"Username"</label>
                <input id="new-username" name="username" required autocomplete="off" />
                <label for="new-role">"Role"</label>
                <select id="new-role" name="role">
                    // Options written out: a list inside <select> needs a comment marker, which
                    // Chromium's parser does not keep there, and hydration would fail.
                    <option value="admin">{format!("admin — {}", Role::Admin.description())}</option>
                    <option value="operator" selected=true>
                        {format!("operator — {}", Role::Operator.description())}
                    </option>
                    <option value="viewer">{format!("viewer — {}", Role::Viewer.description())}</option>
                </select>
                <label for="new-password">"Password (leave empty to generate one)"</label>
                <input id="new-password" name="password" type="password" autocomplete="new-password" />
                <button type="submit" class="primary">"Add user"</button>
            </ActionForm>
        </section>
    }
}
