//! Users, roles and passwords.
//!
//! Three roles, each a superset of the one below: a **viewer** reads backups, jobs and the audit
//! log; an **operator** also starts backups, restores and clean-ups and cancels or retries jobs;
//! an **admin** also manages users and settings. Every server function asks [`Role::allows`]
//! before doing anything.
//!
//! Passwords are hashed with Argon2id at OWASP's recommended parameters (19 MiB, 2 passes,
//! 1 lane). Hashing costs tens of milliseconds of CPU, so it runs on the blocking pool, never on
//! the async runtime. Unknown usernames are verified against a fixed dummy hash so that "no such
//! user" and "wrong password" take the same time.

use std::{fmt, str::FromStr, sync::LazyLock};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{
        SaltString,
        rand_core::{OsRng, RngCore},
    },
};
use serde::{Deserialize, Serialize};

pub const MIN_PASSWORD_LEN: usize = 12;
pub const MAX_PASSWORD_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    /// Whether a user with this role may do what `required` allows.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("\"{other}\" is not a role: use admin, operator or viewer")),
        }
    }
}

/// Why a username or password is not acceptable; the text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

/// Usernames: 1 to 64 characters, letters, digits and `._-@`, so they are safe in logs and URLs.
pub fn check_username(name: &str) -> Result<(), Rejected> {
    let ok = (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Rejected("a username has 1 to 64 letters, digits or . _ - @".into()))
    }
}

pub fn check_password(password: &str) -> Result<(), Rejected> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Err(Rejected(format!(
            "a password needs at least {MIN_PASSWORD_LEN} characters"
        )))
    } else if len > MAX_PASSWORD_LEN {
        Err(Rejected(format!(
            "a password has at most {MAX_PASSWORD_LEN} characters"
        )))
    } else {
        Ok(())
    }
}

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for `password`. Runs on the blocking pool.
pub async fn hash_password(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| PasswordError)?
    .map_err(|_| PasswordError)
}

/// Checks `password` against a stored hash; with `None` (no such user) it checks against a
/// dummy hash, taking the same time, and answers false. Runs on the blocking pool.
pub async fn verify_password(stored: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let hash = stored.as_deref().unwrap_or(DUMMY_HASH.as_str());
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let matches = argon2().verify_password(password.as_bytes(), &parsed).is_ok();
        matches && stored.is_some()
    })
    .await
    .unwrap_or(false)
}

static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(b"no user has this password", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

/// A random password for a new admin or a reset: 20 characters from an alphabet without look-
/// alikes (about 115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..20)
        .map(|_| {
            // Rejection sampling keeps every character equally likely.
            loop {
                let byte = (OsRng.next_u32() & 0xff) as usize;
                if byte < 256 - (256 % ALPHABET.len()) {
                    return ALPHABET[byte % ALPHABET.len()] as char;
                }
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct PasswordError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_what_they_allow() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Operator.allows(Role::Admin));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().is_err());
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password(Some(hash.clone()), "correct horse battery".into()).await);
        assert!(!verify_password(Some(hash), "wrong horse battery".into()).await);
        assert!(!verify_password(None, "no user has this password".into()).await);
    }

    #[test]
    fn generated_passwords_are_long_and_different() {
        let a = generate_password();
        assert_eq!(a.len(), 20);
        assert!(check_password(&a).is_ok());
        assert_ne!(a, generate_password());
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        assert!(check_username("alice.ops@example").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(300)).is_err());
    }
}
