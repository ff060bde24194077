//! Account operations: sign-in with throttling, and user management — each recorded in the
//! audit log in the same transaction as the change.
//!
//! Sign-in rules:
//! - unknown username and wrong password give the same answer ([`LoginError::Invalid`]) after
//!   the same work (a full Argon2 verification either way);
//! - `login.max_failures` failures for one username within `login.window_minutes` lock that
//!   username for `login.lock_minutes`, whether or not it exists (so a lock reveals nothing);
//! - `login.max_failures_per_ip` failures from one address within the window make that address
//!   wait, whatever usernames it tries;
//! - a disabled user cannot sign in, and is told the same as for a wrong password.
//!
//! Management keeps one promise beyond the role checks done by callers: the last enabled admin
//! can be neither disabled nor demoted, so an installation never locks itself out.

use serde_json::json;

use crate::{
    Engine,
    audit::{self, Outcome},
    db::{now_ms, users as rows},
    users::{self, Rejected, Role},
};

/// The client's address as the IP allowlist decided it (the peer, or the right-most untrusted
/// hop behind trusted proxies). Put into each request by the server's outermost layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

pub use crate::audit::Actor;

/// A user as the rest of Steward sees it: no password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at_ms: i64,
    pub last_login_at_ms: Option<i64>,
    /// Until when sign-in is locked after too many failures, if it is.
    pub locked_until_ms: Option<i64>,
}

impl From<rows::UserRow> for User {
    fn from(row: rows::UserRow) -> Self {
        User {
            id: row.id,
            role: row.role(),
            username: row.username,
            disabled: row.disabled != 0,
            created_at_ms: row.created_at,
            last_login_at_ms: row.last_login_at,
            locked_until_ms: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("Wrong username or password.")]
    Invalid,
    #[error(
        "Too many failed sign-ins for this username. Try again in {minutes} minutes, or ask an admin to lift the lock."
    )]
    Locked { until_ms: i64, minutes: i64 },
    #[error("Too many failed sign-ins from your address. Try again in {minutes} minutes.")]
    Throttled { minutes: i64 },
    #[error(transparent)]
    Internal(#[from] AccountError),
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Rejected(#[from] Rejected),
    #[error("user \"{0}\" not found")]
    NotFound(String),
    #[error("user \"{0}\" already exists")]
    Exists(String),
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("{0} is the last enabled admin: make another admin first")]
    LastAdmin(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Password(#[from] users::PasswordError),
}

const MINUTE_MS: i64 = 60_000;

impl Engine {
    /// Checks a username and password; on success records the sign-in and returns the user.
    pub async fn login(&self, username: &str, password: &str, client_ip: &str) -> Result<User, LoginError> {
        let limits = &self.config().login;
        let pool = self.db().pool();
        let now = now_ms();
        let window_start = now - i64::from(limits.window_minutes) * MINUTE_MS;
        let actor = Actor {
            username: Some(username.to_string()),
            client_ip: Some(client_ip.to_string()),
        };
        let db_err = |e: sqlx::Error| LoginError::Internal(e.into());

        let from_ip = rows::failures_for_ip(pool, client_ip, window_start)
            .await
            .map_err(db_err)?;
        if from_ip >= i64::from(limits.max_failures_per_ip) {
            audit::record(
                pool,
                &actor
                    .event("login", Some(username), Outcome::Refused)
                    .with_reason("address throttled"),
            )
            .await
            .map_err(db_err)?;
            return Err(LoginError::Throttled {
                minutes: i64::from(limits.window_minutes),
            });
        }
        if let Some(until_ms) = self.locked_until(username).await? {
            audit::record(
                pool,
                &actor
                    .event("login", Some(username), Outcome::Refused)
                    .with_reason("locked"),
            )
            .await
            .map_err(db_err)?;
            return Err(LoginError::Locked {
                until_ms,
                minutes: minutes_until(until_ms, now),
            });
        }

        let row = rows::by_username(pool, username).await.map_err(db_err)?;
        let hash = row.as_ref().map(|r| r.password_hash.clone());
        let password_ok = users::verify_password(hash, password.to_string()).await;
        match row {
            Some(row) if password_ok && row.disabled == 0 => {
                let mut tx = self.db().begin_write().await.map_err(db_err)?;
                rows::touch_last_login(&mut *tx, row.id).await.map_err(db_err)?;
                rows::clear_failures(&mut *tx, username).await.map_err(db_err)?;
                audit::record(&mut *tx, &actor.event("login", Some(username), Outcome::Ok))
                    .await
                    .map_err(db_err)?;
                user_unlocked(&mut tx, self, username, "they signed in")
                    .await
                    .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                Ok(User::from(row))
            }
            row => {
                let reason = match row {
                    None => "unknown user",
                    Some(r) if r.disabled != 0 => "user disabled",
                    Some(_) => "wrong password",
                };
                let mut tx = self.db().begin_write().await.map_err(db_err)?;
                // Failures older than the window count for nothing: each new one clears them
                // out, so the table holds at most one window's failures.
                rows::prune_failures(&mut *tx, window_start).await.map_err(db_err)?;
                rows::record_failure(&mut *tx, username, client_ip)
                    .await
                    .map_err(db_err)?;
                audit::record(
                    &mut *tx,
                    &actor
                        .event("login", Some(username), Outcome::Failed)
                        .with_reason(reason),
                )
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                // The failure that reaches the limit locks at once, and says so.
                if let Some(until_ms) = self.locked_until(username).await? {
                    let mut tx = self.db().begin_write().await.map_err(db_err)?;
                    audit::record(&mut *tx, &actor.event("login.lock", Some(username), Outcome::Ok))
                        .await
                        .map_err(db_err)?;
                    user_locked(&mut tx, self, username, client_ip, until_ms)
                        .await
                        .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    return Err(LoginError::Locked {
                        until_ms,
                        minutes: minutes_until(until_ms, now),
                    });
                }
                Err(LoginError::Invalid)
            }
        }
    }

    /// When the lock on `username` ends, if it is locked now.
    pub async fn locked_until(&self, username: &str) -> Result<Option<i64>, AccountError> {
        let limits = &self.config().login;
        let now = now_ms();
        let since = now - i64::from(limits.window_minutes) * MINUTE_MS;
        let (count, latest) = rows::failures_for_username(self.db().pool(), username, since).await?;
        let until = latest.map(|at| at + i64::from(limits.lock_minutes) * MINUTE_MS);
        Ok(until.filter(|&until| count >= i64::from(limits.max_failures) && until > now))
    }

    /// Usernames locked now, with the end of each lock (known and unknown usernames alike).
    pub async fn locked_usernames(&self) -> Result<Vec<(String, i64)>, AccountError> {
        let limits = &self.config().login;
        let now = now_ms();
        let since = now - i64::from(limits.window_minutes) * MINUTE_MS;
        let over = rows::usernames_over(self.db().pool(), i64::from(limits.max_failures), since).await?;
        Ok(over
            .into_iter()
            .map(|(name, latest)| (name, latest + i64::from(limits.lock_minutes) * MINUTE_MS))
            .filter(|(_, until)| *until > now)
            .collect())
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, AccountError> {
        Ok(rows::by_id(self.db().pool(), id).await?.map(User::from))
    }

    pub async fn users(&self) -> Result<Vec<User>, AccountError> {
        let locks = self.locked_usernames().await?;
        let list = rows::list(self.db().pool()).await?;
        Ok(list
            .into_iter()
            .map(|row| {
                let mut user = User::from(row);
                user.locked_until_ms = locks
                    .iter()
                    .find(|(name, _)| *name == user.username)
                    .map(|(_, until)| *until);
                user
            })
            .collect())
    }

    pub async fn create_user(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<User, AccountError> {
        users::check_username(username)?;
        users::check_password(password)?;
        let hash = users::hash_password(password.to_string()).await?;
        let mut tx = self.db().begin_write().await?;
        if rows::by_username(&mut *tx, username).await?.is_some() {
            return Err(AccountError::Exists(username.to_string()));
        }
        let id = rows::insert(&mut *tx, username, &hash, role).await?;
        let event = actor
            .event("user.create", Some(username), Outcome::Ok)
            .with_detail(json!({"role": role}));
        audit::record(&mut *tx, &event).await?;
        let row = rows::by_id(&mut *tx, id)
            .await?
            .ok_or_else(|| AccountError::NotFound(username.into()))?;
        tx.commit().await?;
        Ok(User::from(row))
    }

    /// Creates the first admin with a generated password when there are no users at all, and
    /// returns that password (to be shown once). `None` when users exist.
    pub async fn ensure_first_admin(&self) -> Result<Option<(String, String)>, AccountError> {
        if rows::count(self.db().pool()).await? > 0 {
            return Ok(None);
        }
        let password = users::generate_password();
        let system = Actor {
            username: None,
            client_ip: None,
        };
        match self.create_user(&system, "admin", &password, Role::Admin).await {
            Ok(_) => Ok(Some(("admin".to_string(), password))),
            // Another instance created it in the meantime: fine.
            Err(AccountError::Exists(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn set_role(&self, actor: &Actor, username: &str, role: Role) -> Result<User, AccountError> {
        let mut tx = self.db().begin_write().await?;
        let row = rows::by_username(&mut *tx, username)
            .await?
            .ok_or_else(|| AccountError::NotFound(username.into()))?;
        if row.role() == Role::Admin && role != Role::Admin && row.disabled == 0 {
            ensure_not_last_admin(&mut tx, username).await?;
        }
        rows::set_role(&mut *tx, row.id, role).await?;
        let event = actor
            .event("user.role", Some(username), Outcome::Ok)
            .with_detail(json!({"from": row.role(), "to": role}));
        audit::record(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(User {
            role,
            ..User::from(row)
        })
    }

    pub async fn set_disabled(&self, actor: &Actor, username: &str, disabled: bool) -> Result<User, AccountError> {
        let mut tx = self.db().begin_write().await?;
        let row = rows::by_username(&mut *tx, username)
            .await?
            .ok_or_else(|| AccountError::NotFound(username.into()))?;
        if disabled && row.role() == Role::Admin && row.disabled == 0 {
            ensure_not_last_admin(&mut tx, username).await?;
        }
        rows::set_disabled(&mut *tx, row.id, disabled).await?;
        let action = if disabled { "user.disable" } else { "user.enable" };
        audit::record(&mut *tx, &actor.event(action, Some(username), Outcome::Ok)).await?;
        tx.commit().await?;
        Ok(User {
            disabled,
            ..User::from(row)
        })
    }

    /// Sets a new password for `username` (an admin's reset, or `steward user passwd`).
    pub async fn set_password(&self, actor: &Actor, username: &str, password: &str) -> Result<(), AccountError> {
        users::check_password(password)?;
        let hash = users::hash_password(password.to_string()).await?;
        let mut tx = self.db().begin_write().await?;
        let row = rows::by_username(&mut *tx, username)
            .await?
            .ok_or_else(|| AccountError::NotFound(username.into()))?;
        rows::set_password(&mut *tx, row.id, &hash).await?;
        audit::record(
            &mut *tx,
            &actor.event("user.password.reset", Some(username), Outcome::Ok),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user changes their own password; the current one is required.
    pub async fn change_own_password(
        &self,
        actor: &Actor,
        user_id: i64,
        current: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        let row = rows::by_id(self.db().pool(), user_id)
            .await?
            .ok_or_else(|| AccountError::NotFound(user_id.to_string()))?;
        if !users::verify_password(Some(row.password_hash.clone()), current.to_string()).await {
            let event = actor.event("user.password.change", Some(&row.username), Outcome::Refused);
            audit::record(self.db().pool(), &event.with_reason("wrong current password")).await?;
            return Err(AccountError::WrongPassword);
        }
        users::check_password(new)?;
        let hash = users::hash_password(new.to_string()).await?;
        let mut tx = self.db().begin_write().await?;
        rows::set_password(&mut *tx, row.id, &hash).await?;
        audit::record(
            &mut *tx,
            &actor.event("user.password.change", Some(&row.username), Outcome::Ok),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lifts the sign-in lock of `username`. Returns whether there was anything to lift.
    pub async fn unlock(&self, actor: &Actor, username: &str) -> Result<bool, AccountError> {
        let mut tx = self.db().begin_write().await?;
        let cleared = rows::clear_failures(&mut *tx, username).await?;
        audit::record(&mut *tx, &actor.event("user.unlock", Some(username), Outcome::Ok)).await?;
        let who = actor.username.as_deref().unwrap_or("an admin");
        user_unlocked(&mut tx, self, username, &format!("{who} unlocked them")).await?;
        tx.commit().await?;
        Ok(cleared > 0)
    }

    /// Records a sign-out.
    pub async fn record_logout(&self, actor: &Actor) -> Result<(), AccountError> {
        audit::record(
            self.db().pool(),
            &actor.event("logout", actor.username.as_deref(), Outcome::Ok),
        )
        .await?;
        Ok(())
    }
}

async fn ensure_not_last_admin(tx: &mut sqlx::Transaction<'_, sqlx::Any>, username: &str) -> Result<(), AccountError> {
    if rows::count_enabled_admins(&mut **tx).await? <= 1 {
        return Err(AccountError::LastAdmin(username.to_string()));
    }
    Ok(())
}

fn minutes_until(until_ms: i64, now_ms: i64) -> i64 {
    ((until_ms - now_ms) + MINUTE_MS - 1).max(0) / MINUTE_MS
}

/// `username` was locked out after too many failed sign-ins.
async fn user_locked(
    conn: &mut sqlx::AnyConnection,
    engine: &Engine,
    username: &str,
    client_ip: &str,
    until_ms: i64,
) -> sqlx::Result<()> {
    let alert = crate::notifications::Alert {
        kind: crate::notifications::Kind::UserLocked,
        environment: None,
        severity: crate::notifications::Severity::Warning,
        summary: format!(
            "{username} was locked out after {} failed sign-ins (the last from {client_ip}) until {} UTC",
            engine.config().login.max_failures,
            crate::text::hh_mm_utc(until_ms)
        ),
        detail: None,
        link: "/users".into(),
        job_id: None,
    };
    let key = format!("user:{username}");
    crate::notifications::raise(
        conn,
        &engine.config().notifications,
        &key,
        alert,
        crate::notifications::Repeat::Each,
        now_ms(),
    )
    .await?;
    Ok(())
}

/// `username` signed in, or was unlocked by an admin: a lock-out is over.
async fn user_unlocked(conn: &mut sqlx::AnyConnection, engine: &Engine, username: &str, how: &str) -> sqlx::Result<()> {
    let key = format!("user:{username}");
    crate::notifications::resolve(
        conn,
        &engine.config().notifications,
        &key,
        |_| crate::notifications::Alert {
            kind: crate::notifications::Kind::Recovered,
            environment: None,
            severity: crate::notifications::Severity::Warning,
            summary: format!("{username} is no longer locked out: {how}"),
            detail: None,
            link: "/users".into(),
            job_id: None,
        },
        now_ms(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Db};

    fn engine(db: &Db) -> Engine {
        Engine::new(Config::default(), db.clone())
    }

    const PASSWORD: &str = "a long enough password";

    crate::db_tests! {
        async fn the_right_password_signs_in_and_is_audited(db) {
            let engine = engine(db);
            engine.create_user(&Actor::cli(), "alice", PASSWORD, Role::Operator).await.unwrap();
            let user = engine.login("alice", PASSWORD, "10.0.0.1").await.unwrap();
            assert_eq!(user.role, Role::Operator);
            assert!(engine.user(user.id).await.unwrap().unwrap().last_login_at_ms.is_some());
            let events = audit::recent(db.pool(), None, 5).await.unwrap();
            assert_eq!((events[0].action.as_str(), events[0].outcome), ("login", Outcome::Ok));
            assert_eq!(events[0].client_ip.as_deref(), Some("10.0.0.1"));
            assert_eq!(events[1].action, "user.create");
        }

        async fn unknown_user_and_wrong_password_look_the_same(db) {
            let engine = engine(db);
            engine.create_user(&Actor::cli(), "alice", PASSWORD, Role::Viewer).await.unwrap();
            let wrong = engine.login("alice", "not the password", "10.0.0.1").await.unwrap_err();
            let unknown = engine.login("mallory", "not the password", "10.0.0.1").await.unwrap_err();
            assert!(matches!(wrong, LoginError::Invalid));
            assert_eq!(wrong.to_string(), unknown.to_string());
        }

        async fn five_failures_lock_the_username_until_an_admin_lifts_it(db) {
            let engine = engine(db);
            engine.create_user(&Actor::cli(), "alice", PASSWORD, Role::Viewer).await.unwrap();
            for _ in 0..4 {
                assert!(matches!(engine.login("alice", "wrong password!", "10.0.0.1").await, Err(LoginError::Invalid)));
            }
            assert!(matches!(engine.login("alice", "wrong password!", "10.0.0.1").await, Err(LoginError::Locked { .. })));
            // Locked: even the right password is refused now.
            assert!(matches!(engine.login("alice", PASSWORD, "10.0.0.2").await, Err(LoginError::Locked { .. })));
            let users = engine.users().await.unwrap();
            assert!(users[0].locked_until_ms.is_some(), "admins see the lock");

            assert!(engine.unlock(&Actor::cli(), "alice").await.unwrap());
            assert!(engine.login("alice", PASSWORD, "10.0.0.1").await.is_ok());
        }

        async fn one_address_guessing_across_usernames_is_throttled(db) {
            let engine = engine(db);
            for i in 0..20 {
                let _ = engine.login(&format!("user{i}"), "guess guess guess", "10.9.9.9").await;
            }
            assert!(matches!(engine.login("someone", "guess guess guess", "10.9.9.9").await, Err(LoginError::Throttled { .. })));
            // Another address is not affected.
            assert!(matches!(engine.login("someone", "guess guess guess", "10.1.1.1").await, Err(LoginError::Invalid)));
        }

        async fn a_disabled_user_cannot_sign_in(db) {
            let engine = engine(db);
            engine.create_user(&Actor::cli(), "root", PASSWORD, Role::Admin).await.unwrap();
            engine.create_user(&Actor::cli(), "bob", PASSWORD, Role::Operator).await.unwrap();
            engine.set_disabled(&Actor::cli(), "bob", true).await.unwrap();
            assert!(matches!(engine.login("bob", PASSWORD, "10.0.0.1").await, Err(LoginError::Invalid)));
            engine.set_disabled(&Actor::cli(), "bob", false).await.unwrap();
            assert!(engine.login("bob", PASSWORD, "10.0.0.1").await.is_ok());
        }

        async fn the_last_admin_can_be_neither_disabled_nor_demoted(db) {
            let engine = engine(db);
            engine.create_user(&Actor::cli(), "root", PASSWORD, Role::Admin).await.unwrap();
            assert!(matches!(engine.set_disabled(&Actor::cli(), "root", true).await, Err(AccountError::LastAdmin(_))));
            assert!(matches!(engine.set_role(&Actor::cli(), "root", Role::Viewer).await, Err(AccountError::LastAdmin(_))));
            engine.create_user(&Actor::cli(), "second", PASSWORD, Role::Admin).await.unwrap();
            assert_eq!(engine.set_role(&Actor::cli(), "root", Role::Viewer).await.unwrap().role, Role::Viewer);
        }

        async fn duplicate_names_and_weak_passwords_change_nothing(db) {
            let engine = engine(db);
            engine.create_user(&Actor::cli(), "alice", PASSWORD, Role::Viewer).await.unwrap();
            assert!(matches!(engine.create_user(&Actor::cli(), "alice", PASSWORD, Role::Admin).await, Err(AccountError::Exists(_))));
            assert!(matches!(engine.create_user(&Actor::cli(), "bob", "short", Role::Admin).await, Err(AccountError::Rejected(_))));
            assert_eq!(engine.users().await.unwrap().len(), 1);
        }

        async fn changing_ones_own_password_needs_the_current_one(db) {
            let engine = engine(db);
            let user = engine.create_user(&Actor::cli(), "alice", PASSWORD, Role::Viewer).await.unwrap();
            let me = Actor { username: Some("alice".into()), client_ip: None };
            assert!(matches!(
                engine.change_own_password(&me, user.id, "not it at all", "a brand new password").await,
                Err(AccountError::WrongPassword)
            ));
            engine.change_own_password(&me, user.id, PASSWORD, "a brand new password").await.unwrap();
            assert!(engine.login("alice", "a brand new password", "10.0.0.1").await.is_ok());
        }

        async fn a_failed_sign_in_forgets_failures_older_than_the_window(db) {
            let engine = engine(db);
            let window_ms = i64::from(engine.config().login.window_minutes) * MINUTE_MS;
            for (name, age_ms) in [("old", window_ms + 60_000), ("older", 30 * 24 * 60 * MINUTE_MS), ("recent", 60_000)] {
                sqlx::query("INSERT INTO login_failure (username, client_ip, at) VALUES ($1, $2, $3)")
                    .bind(name)
                    .bind("10.0.0.9")
                    .bind(now_ms() - age_ms)
                    .execute(db.pool())
                    .await
                    .unwrap();
            }
            assert!(matches!(engine.login("mallory", "not the password", "10.0.0.1").await, Err(LoginError::Invalid)));
            let left: Vec<(String,)> = sqlx::query_as("SELECT username FROM login_failure ORDER BY username")
                .fetch_all(db.pool())
                .await
                .unwrap();
            assert_eq!(left, vec![("mallory".to_string(),), ("recent".to_string(),)]);
        }

        async fn the_first_admin_is_created_once(db) {
            let engine = engine(db);
            let (name, password) = engine.ensure_first_admin().await.unwrap().expect("created");
            assert_eq!(name, "admin");
            assert!(engine.login("admin", &password, "127.0.0.1").await.is_ok());
            assert!(engine.ensure_first_admin().await.unwrap().is_none());
        }
    }
}
