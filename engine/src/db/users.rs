//! The `users` and `login_failure` tables.
//!
//! Rows carry the password hash; they never leave the engine (`users::User` is what callers
//! get). Functions take any executor so that a change and its audit event share a transaction.

use sqlx::{Any, Executor, FromRow};

use crate::{db::now_ms, users::Role};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: i64,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

impl UserRow {
    pub fn role(&self) -> Role {
        // The CHECK constraint admits only the three names; a viewer is the safe reading.
        self.role.parse().unwrap_or(Role::Viewer)
    }
}

const COLUMNS: &str = "id, username, password_hash, role, disabled, created_at, last_login_at";

pub async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    username: &str,
    password_hash: &str,
    role: Role,
) -> sqlx::Result<i64> {
    let now = now_ms();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO users (username, password_hash, role, disabled, created_at, password_changed_at)
         VALUES ($1, $2, $3, 0, $4, $4) RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now)
    .fetch_one(executor)
    .await?;
    Ok(id)
}

pub async fn by_username<'e>(
    executor: impl Executor<'e, Database = Any>,
    username: &str,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE username = $1"))
        .bind(username)
        .fetch_optional(executor)
        .await
}

pub async fn by_id<'e>(executor: impl Executor<'e, Database = Any>, id: i64) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

pub async fn list<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users ORDER BY username"))
        .fetch_all(executor)
        .await
}

pub async fn count<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users").fetch_one(executor).await?;
    Ok(n)
}

/// Enabled admins: the last one may be neither disabled nor demoted.
pub async fn count_enabled_admins<'e>(executor: impl Executor<'e, Database = Any>) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0")
        .fetch_one(executor)
        .await?;
    Ok(n)
}

pub async fn set_role<'e>(executor: impl Executor<'e, Database = Any>, id: i64, role: Role) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
        .bind(role.as_str())
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn set_disabled<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: i64,
    disabled: bool,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
        .bind(i64::from(disabled))
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn set_password<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: i64,
    password_hash: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now_ms())
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn touch_last_login<'e>(executor: impl Executor<'e, Database = Any>, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn record_failure<'e>(
    executor: impl Executor<'e, Database = Any>,
    username: &str,
    client_ip: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO login_failure (username, client_ip, at) VALUES ($1, $2, $3)")
        .bind(username)
        .bind(client_ip)
        .bind(now_ms())
        .execute(executor)
        .await?;
    Ok(())
}

/// Failures for `username` since `since_ms`: how many, and the time of the latest.
pub async fn failures_for_username<'e>(
    executor: impl Executor<'e, Database = Any>,
    username: &str,
    since_ms: i64,
) -> sqlx::Result<(i64, Option<i64>)> {
    sqlx::query_as("SELECT count(*), max(at) FROM login_failure WHERE username = $1 AND at >= $2")
        .bind(username)
        .bind(since_ms)
        .fetch_one(executor)
        .await
}

/// Failures from `client_ip` since `since_ms`, whatever the username.
pub async fn failures_for_ip<'e>(
    executor: impl Executor<'e, Database = Any>,
    client_ip: &str,
    since_ms: i64,
) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM login_failure WHERE client_ip = $1 AND at >= $2")
        .bind(client_ip)
        .bind(since_ms)
        .fetch_one(executor)
        .await?;
    Ok(n)
}

/// Usernames with at least `threshold` failures since `since_ms`, with the latest failure.
pub async fn usernames_over<'e>(
    executor: impl Executor<'e, Database = Any>,
    threshold: i64,
    since_ms: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT username, max(at) FROM login_failure WHERE at >= $1
         GROUP BY username HAVING count(*) >= $2 ORDER BY username",
    )
    .bind(since_ms)
    .bind(threshold)
    .fetch_all(executor)
    .await
}

/// Forgets a username's failures: lifts its lock.
pub async fn clear_failures<'e>(executor: impl Executor<'e, Database = Any>, username: &str) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM login_failure WHERE username = $1")
        .bind(username)
        .execute(executor)
        .await?;
    Ok(done.rows_affected())
}

/// Drops failures older than any window looks at.
pub async fn prune_failures<'e>(executor: impl Executor<'e, Database = Any>, before_ms: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_failure WHERE at < $1")
        .bind(before_ms)
        .execute(executor)
        .await?;
    Ok(())
}
