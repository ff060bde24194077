use serde::{Deserialize, Serialize};

/// A role as the browser knows it (the engine's own type is not compiled to wasm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What a person with this role may do, in one line for the UI.
    pub fn description(self) -> &'static str {
        match self {
            Role::Admin => "everything, including users and settings",
            Role::Operator => "start backups, restores and clean-ups; cancel and retry jobs",
            Role::Viewer => "read backups, jobs and the audit log; changes nothing",
        }
    }
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub username: String,
    pub role: Role,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A user in the admins' list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at_ms: i64,
    pub last_login_at_ms: Option<i64>,
    /// Set while sign-in is locked after too many failures.
    pub locked_until_ms: Option<i64>,
}

/// A username whose sign-in is locked (it may not belong to any user: locks count what was
/// typed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedName {
    pub username: String,
    pub until_ms: i64,
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;

    impl From<engine::users::Role> for Role {
        fn from(role: engine::users::Role) -> Self {
            match role {
                engine::users::Role::Viewer => Role::Viewer,
                engine::users::Role::Operator => Role::Operator,
                engine::users::Role::Admin => Role::Admin,
            }
        }
    }

    impl From<Role> for engine::users::Role {
        fn from(role: Role) -> Self {
            match role {
                Role::Viewer => engine::users::Role::Viewer,
                Role::Operator => engine::users::Role::Operator,
                Role::Admin => engine::users::Role::Admin,
            }
        }
    }

    impl From<engine::accounts::User> for UserSummary {
        fn from(user: engine::accounts::User) -> Self {
            UserSummary {
                username: user.username,
                role: user.role.into(),
                disabled: user.disabled,
                created_at_ms: user.created_at_ms,
                last_login_at_ms: user.last_login_at_ms,
                locked_until_ms: user.locked_until_ms,
            }
        }
    }
}
