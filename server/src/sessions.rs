//! Server-side sessions: tower-sessions with the sqlx store, in Steward's own database.
//!
//! The cookie holds only a random session id (`HttpOnly`, `SameSite=Strict`, `Secure` when
//! configured); the session's data stays in the database, so signing out deletes it for good.
//! The idle timeout is the session's expiry, renewed on every use; the absolute lifetime is
//! checked by `app::api::guard` against the sign-in time stored in the session.
//!
//! The sqlx store works with the native SQLite and PostgreSQL pools rather than the `Any` pool
//! the engine uses, so this module opens a small pool of its own on the same database. On
//! PostgreSQL the table lives in the schema the connection uses (normally `public`).

use std::{str::FromStr, time::Duration};

use axum::Router;
use engine::{Engine, db::Backend};
use sqlx::{
    PgPool, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
};
use tower_sessions::{
    Expiry, SessionManagerLayer, SessionStore,
    cookie::{SameSite, time},
    session_store::ExpiredDeletion,
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

pub const COOKIE_NAME: &str = "steward_session";
const TABLE: &str = "tower_sessions";
/// How often expired sessions are removed from the table.
const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// Adds the session layer to `router`, creating the session table when missing, and starts the
/// task that deletes expired sessions.
pub async fn layer(router: Router, engine: &Engine) -> anyhow::Result<Router> {
    let url = engine.config().database_url();
    match engine.db().backend() {
        Backend::Sqlite => {
            let options = SqliteConnectOptions::from_str(&url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5));
            let pool: SqlitePool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            let store = SqliteStore::new(pool)
                .with_table_name(TABLE)
                .map_err(anyhow::Error::msg)?;
            store.migrate().await?;
            Ok(apply(router, store, engine))
        }
        Backend::Postgres => {
            let pool = PgPool::connect(&url).await?;
            let (schema,): (String,) = sqlx::query_as("SELECT current_schema()").fetch_one(&pool).await?;
            let store = PostgresStore::new(pool)
                .with_schema_name(schema)
                .and_then(|s| s.with_table_name(TABLE))
                .map_err(anyhow::Error::msg)?;
            store.migrate().await?;
            Ok(apply(router, store, engine))
        }
    }
}

fn apply<S>(router: Router, store: S, engine: &Engine) -> Router
where
    S: SessionStore + ExpiredDeletion + Clone,
{
    tokio::spawn(store.clone().continuously_delete_expired(SWEEP_EVERY));
    let config = &engine.config().sessions;
    let idle = time::Duration::minutes(i64::from(config.idle_timeout_minutes));
    router.layer(
        SessionManagerLayer::new(store)
            .with_name(COOKIE_NAME)
            .with_http_only(true)
            .with_same_site(SameSite::Strict)
            .with_secure(config.secure_cookie)
            .with_expiry(Expiry::OnInactivity(idle)),
    )
}
