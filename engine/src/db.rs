//! The database handle: one pool, SQLite or PostgreSQL, chosen by the URL.
//!
//! Steward runs embedded on SQLite by default and on PostgreSQL when several instances share
//! one database. Both are reached through sqlx's `Any` driver so that every query in `db/` is
//! written once, in the dialect the two share: `$1` placeholders, `BIGINT` columns, times as
//! Unix milliseconds, flags as `0`/`1` integers (the `Any` driver cannot decode SQLite
//! booleans), JSON as `TEXT`. Where the dialects really differ (locking, notifications) the code
//! asks [`Db::backend`].
//!
//! Migrations live in `migrations/sqlite` and `migrations/postgres`, one folder per dialect,
//! with the same file names; they are embedded into the binary and applied by [`Db::migrate`].

use std::{path::PathBuf, str::FromStr, time::Duration};

pub mod audit;
pub mod backups;
pub mod jobs;
pub mod maintenance;
pub mod notifications;
pub mod repository_use;
pub mod schedules;
pub mod users;

use sqlx::{AnyConnection, AnyPool, Connection, Executor, any::AnyPoolOptions, migrate::Migrator};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// How long a request waits for a pooled connection before it fails with a clear error
/// instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long SQLite waits on a locked database (another writer) before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A cheap-to-clone handle on the connection pool.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// For SQLite: the database file, which [`Db::ping`] re-opens to prove it is still there.
    sqlite_file: Option<PathBuf>,
    url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL (expected sqlite:… or postgres://…)")]
    UnsupportedUrl,
    #[error("cannot create the directory {path} for the database: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
}

// By hand: the URL may hold a password, and an `Engine` printed with `{:?}` must not show it.
impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("sqlite_file", &self.sqlite_file)
            .finish_non_exhaustive()
    }
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::UnsupportedUrl)
        }
    }
}

impl Db {
    /// Opens the pool. For SQLite the file (and its directory) is created when missing, and
    /// every connection runs in WAL mode with a busy timeout, so readers never block the writer
    /// and short write bursts queue instead of failing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let (url, sqlite_file) = match backend {
            Backend::Sqlite => {
                let file = sqlite_path(url);
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                (format!("sqlite://{}?mode=rwc", file.display()), Some(file))
            }
            Backend::Postgres => (url.to_string(), None),
        };
        let original_url = url.to_string();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(sqlite_pragmas().as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Db {
            pool,
            backend,
            sqlite_file,
            url: original_url,
        })
    }

    /// Applies the migrations this binary carries that the database has not seen yet.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        let chained = audit::chain::backfill(self).await?;
        if chained > 0 {
            tracing::info!(events = chained, "gave the audit log's earlier events their hash chain");
        }
        Ok(())
    }

    /// Proves the database can be used right now: a query through the pool, and for SQLite a
    /// fresh read-only connection to the file — pooled connections keep a deleted or replaced
    /// file open and would report a healthy database that no restart could open again.
    pub async fn ping(&self, timeout: Duration) -> Result<(), DbError> {
        let check = async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            if let Some(file) = &self.sqlite_file {
                let mut conn = AnyConnection::connect(&format!("sqlite://{}?mode=ro", file.display())).await?;
                sqlx::query("SELECT count(*) FROM _sqlx_migrations")
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
            }
            Ok::<_, DbError>(())
        };
        tokio::time::timeout(timeout, check)
            .await
            .map_err(|_| DbError::Timeout(timeout))?
    }

    /// A transaction that holds the write lock from its first statement. On SQLite a plain
    /// `BEGIN` that reads before it writes can fail at once with "database is locked" when
    /// another writer got there first; `BEGIN IMMEDIATE` waits (busy timeout) instead.
    pub async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The URL the pool was opened with (PostgreSQL notifications open their own connection).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for checked-out connections to return and closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_pragmas() -> String {
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};"
    )
}

/// `sqlite://data/steward.db?mode=rwc` → `data/steward.db`.
fn sqlite_path(url: &str) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split_once('?').map_or(rest, |(path, _query)| path);
    PathBuf::from_str(path).unwrap_or_default()
}

/// Now, as the Unix milliseconds every table stores.
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_the_file() {
        assert_eq!(
            sqlite_path("sqlite://data/steward.db?mode=rwc"),
            PathBuf::from("data/steward.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/steward.db"),
            PathBuf::from("/var/lib/steward.db")
        );
        assert_eq!(sqlite_path("sqlite:x.db"), PathBuf::from("x.db"));
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(matches!(Backend::from_url("mysql://x"), Err(DbError::UnsupportedUrl)));
        assert_eq!(Backend::from_url("postgresql://h/db").unwrap(), Backend::Postgres);
    }
}

#[cfg(test)]
mod db_tests {
    use crate::testing::TestDb;

    crate::db_tests! {
        async fn migrations_are_idempotent(db) {
            db.migrate().await.unwrap();
            db.migrate().await.unwrap();
            let (applied,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations")
                .fetch_one(db.pool()).await.unwrap();
            assert!(applied >= 1);
        }

        async fn ping_answers_on_a_live_database(db) {
            db.ping(std::time::Duration::from_secs(3)).await.unwrap();
        }
    }

    #[tokio::test]
    async fn ping_fails_when_the_sqlite_file_is_gone() {
        let test = TestDb::sqlite().await;
        test.db.ping(std::time::Duration::from_secs(3)).await.unwrap();
        let file = test.sqlite_file().unwrap();
        std::fs::remove_file(&file).unwrap();
        assert!(test.db.ping(std::time::Duration::from_secs(3)).await.is_err());
    }
}
