//! Steward's domain, with no web in it.
//!
//! `app` (server functions) and `server` (the binary) reach the configuration and the database
//! through an [`Engine`]; jobs run here; later issues add drivers and storage. Nothing in this
//! crate knows about HTTP, sessions or Leptos, so it is tested with plain `#[tokio::test]`s
//! against real SQLite and PostgreSQL.

pub mod accounts;
pub mod audit_trail;
pub mod backups;
pub mod checks;
pub mod config;
pub mod db;
pub mod drivers;
pub mod health;
pub mod http_client;
pub mod jobs;
pub mod kinds;
pub mod maintenance;
pub mod manifest;
pub mod metrics;
pub mod notifications;
pub mod output;
pub mod process;
pub mod repository;
pub mod restores;
pub mod retention;
pub mod schedules;
pub mod storage;
pub mod text;
pub mod users;
pub use db::audit;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

pub use config::Config;
pub use db::{Db, DbError};

/// The handle every request and every worker shares: configuration and database.
#[derive(Clone, Debug)]
pub struct Engine {
    config: Arc<Config>,
    db: Db,
    signals: Arc<jobs::JobSignals>,
}

impl Engine {
    /// Opens the database named by the configuration and brings its schema up to date.
    pub async fn open(config: Config) -> Result<Engine, DbError> {
        let db = Db::connect(&config.database_url(), config.database.max_connections).await?;
        db.migrate().await?;
        Ok(Engine::new(config, db))
    }

    /// An engine over a database the caller opened and migrated (tests, tools). The job kinds
    /// it knows are [`kinds::ALL`].
    pub fn new(config: Config, db: Db) -> Engine {
        jobs::kind::install(kinds::ALL);
        Engine {
            config: Arc::new(config),
            db,
            signals: Arc::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn signals(&self) -> &jobs::JobSignals {
        &self.signals
    }
}
