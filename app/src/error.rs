//! `AppError`: the one error type that crosses the wire.
//!
//! Variants are coarse on purpose: the browser learns what it can act on (sign in, not allowed,
//! not found, a conflict to explain, a field to fix) and nothing about the server's insides.
//! `Internal` carries only a reference; the cause is logged on the server under the same
//! reference so an operator can find it when a user quotes it.
//!
//! Each variant has one HTTP status ([`AppError::status`]), set by the server on every
//! server-function answer: a refusal is a 4xx a monitor need not page for, and only
//! `Internal` is a 500. The browser reads the typed body whatever the status.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in.")]
    Unauthorized,
    #[error("You are not allowed to do this.")]
    Forbidden,
    /// A sign-in refused: wrong username or password.
    #[error("{message}")]
    SignInRefused { message: String },
    /// Too many failed sign-ins (for the username or from the address): wait, or ask an admin.
    #[error("{message}")]
    TooManyAttempts { message: String },
    #[error("{what} not found.")]
    NotFound { what: String },
    #[error("{message}")]
    Conflict { message: String },
    /// Bad input; `field` names the form field to point at.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// A request body above the server's limit, refused before any server function ran.
    #[error("The request is too large: Steward accepts at most {limit}.")]
    TooLarge { limit: String },
    #[error("Something went wrong on the server (reference {reference}).")]
    Internal { reference: String },
    /// The request did not reach the server function or its answer could not be read. On the
    /// server: the request's arguments could not be read (missing, malformed).
    #[error("Could not talk to the server: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // On the server, failing to encode an answer is the server's own fault; everything else
        // (arguments missing or malformed) is the request's.
        #[cfg(feature = "ssr")]
        if matches!(
            value,
            ServerFnErrorErr::Serialization(_) | ServerFnErrorErr::Response(_)
        ) {
            return AppError::internal(value);
        }
        AppError::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    /// The HTTP status a server-function answer carrying this error gets. Only `Internal` is a
    /// server error.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            AppError::Unauthorized | AppError::SignInRefused { .. } => S::UNAUTHORIZED,
            AppError::Forbidden => S::FORBIDDEN,
            AppError::NotFound { .. } => S::NOT_FOUND,
            AppError::Conflict { .. } => S::CONFLICT,
            AppError::Invalid { .. } => S::UNPROCESSABLE_ENTITY,
            AppError::TooManyAttempts { .. } => S::TOO_MANY_REQUESTS,
            AppError::TooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            AppError::Transport(_) => S::BAD_REQUEST,
            AppError::Internal { .. } => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// Logs `cause` under a fresh reference and returns the error that only shows the reference.
    pub fn internal(cause: impl std::fmt::Display) -> AppError {
        let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        tracing::error!(%reference, %cause, "internal error in a server function");
        AppError::Internal { reference }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> AppError {
        AppError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> AppError {
        AppError::NotFound { what: what.into() }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::accounts::AccountError> for AppError {
    fn from(error: engine::accounts::AccountError) -> Self {
        use engine::accounts::AccountError as E;
        match error {
            E::Rejected(reason) => AppError::invalid("input", reason.0),
            E::NotFound(name) => AppError::not_found(format!("User \"{name}\"")),
            E::Exists(_) | E::LastAdmin(_) => AppError::Conflict {
                message: capitalise(&error.to_string()),
            },
            E::WrongPassword => AppError::invalid("current_password", "The current password is wrong."),
            E::Database(_) | E::Password(_) => AppError::internal(error),
        }
    }
}

#[cfg(feature = "ssr")]
fn capitalise(message: &str) -> String {
    let mut chars = message.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str() + ".")
        .unwrap_or_default()
}

#[cfg(feature = "ssr")]
impl From<engine::jobs::JobError> for AppError {
    fn from(error: engine::jobs::JobError) -> Self {
        use engine::jobs::JobError as E;
        match error {
            // Starts with the environment's name as written: `acc is busy: …`.
            E::Busy(busy) => AppError::Conflict {
                message: busy.to_string(),
            },
            E::WrongState { .. } | E::AlreadyRetried { .. } => AppError::Conflict {
                message: capitalise(&error.to_string()),
            },
            E::NotFound(id) => AppError::not_found(format!("Job #{id}")),
            E::UnknownEnvironment(name) => AppError::not_found(format!("Environment \"{name}\"")),
            E::UnknownAction { .. } => AppError::invalid("action", capitalise(&error.to_string())),
            E::ReasonTooLong(_) | E::ReasonRequired(_) => AppError::invalid("reason", capitalise(&error.to_string())),
            E::Refused(_) => AppError::Conflict {
                message: capitalise(&error.to_string()),
            },
            E::NoResources(_) => AppError::Conflict {
                message: capitalise(&error.to_string()),
            },
            E::DescriptionTooLong(_) => AppError::invalid("description", capitalise(&error.to_string())),
            E::UnknownBackup(id) => AppError::not_found(format!("Backup \"{id}\"")),
            E::CannotRestore(_) => AppError::Conflict {
                message: capitalise(&error.to_string()),
            },
            E::Database(_) => AppError::internal(error),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::restores::RestoreError> for AppError {
    fn from(error: engine::restores::RestoreError) -> Self {
        use engine::restores::RestoreError as E;
        match error {
            E::NotFound(id) => AppError::not_found(format!("Backup \"{id}\"")),
            E::Job(e) => e.into(),
            E::ReasonRequired | E::ReasonTooLong(_) => AppError::invalid("reason", capitalise(&error.to_string())),
            E::NotConfirmed(_) => AppError::invalid("confirm_environment", capitalise(&error.to_string())),
            E::ProductionNotConfirmed(_) => AppError::invalid("confirm_production", capitalise(&error.to_string())),
            E::UnknownEnvironment { .. }
            | E::CannotRestore(_)
            | E::NotARestore(_)
            | E::NotUndoable { .. }
            | E::AlreadyUndone { .. }
            | E::NoSafetyBackup { .. } => AppError::Conflict {
                message: capitalise(&error.to_string()),
            },
            E::Database(_) => AppError::internal(error),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::maintenance::MaintenanceError> for AppError {
    fn from(error: engine::maintenance::MaintenanceError) -> Self {
        use engine::maintenance::MaintenanceError as E;
        match error {
            E::UnknownEnvironment(name) => AppError::not_found(format!("Environment \"{name}\"")),
            // The hook's words end in their own advice.
            E::Hook(_) => AppError::Conflict {
                message: capitalise_keep(&error.to_string()),
            },
            E::AlreadyOn { .. } | E::NotOn(_) => AppError::Conflict {
                message: capitalise(&error.to_string()),
            },
            E::Database(_) => AppError::internal(error),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::backups::BackupError> for AppError {
    fn from(error: engine::backups::BackupError) -> Self {
        use engine::backups::BackupError as E;
        match error {
            E::NotFound(id) => AppError::not_found(format!("Backup \"{id}\"")),
            E::Job(e) => e.into(),
            E::Storage(_) | E::Database(_) => AppError::internal(error),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::schedules::ScheduleError> for AppError {
    fn from(error: engine::schedules::ScheduleError) -> Self {
        use engine::schedules::ScheduleError as E;
        match error {
            E::Unknown { environment, name } => AppError::not_found(format!("Schedule \"{environment}/{name}\"")),
            E::AlreadyPaused { .. } | E::NotPaused { .. } => AppError::Conflict {
                message: capitalise(&error.to_string()),
            },
            E::ReasonRequired | E::ReasonTooLong(_) => AppError::invalid("reason", capitalise(&error.to_string())),
            E::Job(e) => e.into(),
            E::Database(_) => AppError::internal(error),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::notifications::NotifyError> for AppError {
    fn from(error: engine::notifications::NotifyError) -> Self {
        use engine::notifications::NotifyError as E;
        match error {
            E::UnknownTarget(name) => AppError::not_found(format!("Notification target \"{name}\"")),
            E::Db(_) => AppError::internal(error),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::health::HealthError> for AppError {
    fn from(error: engine::health::HealthError) -> Self {
        use engine::health::HealthError as E;
        match error {
            E::UnknownEnvironment(name) => AppError::not_found(format!("Environment \"{name}\"")),
            E::Other(_) | E::Database(_) => AppError::internal(error),
        }
    }
}

/// Upper-cases the first letter and adds no full stop (a hook's message ends in its own advice).
#[cfg(feature = "ssr")]
fn capitalise_keep(message: &str) -> String {
    let mut chars = message.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(all(test, feature = "ssr"))]
mod busy_tests {
    use super::*;

    #[test]
    fn the_busy_message_keeps_the_environments_name_as_written() {
        let busy = engine::jobs::Busy {
            environment: "acc".into(),
            job_id: 41,
            title: "restore".into(),
            requested_by: "alice".into(),
            state: engine::jobs::JobState::Running,
            since_ms: 0,
        };
        let expected = "acc is busy: restore started by alice at 00:00 UTC — try again when it ends";
        let from_job = AppError::from(engine::jobs::JobError::Busy(busy));
        assert_eq!(
            from_job,
            AppError::Conflict {
                message: expected.into()
            }
        );
    }
}
