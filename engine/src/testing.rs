//! Databases for tests: a fresh SQLite file in a temporary directory, or a fresh schema in the
//! PostgreSQL named by `STEWARD_TEST_POSTGRES_URL` (default: the local server's `test`
//! database). Every db test runs on both through [`db_tests!`].
//!
//! When PostgreSQL cannot be reached the PostgreSQL half of a test is skipped with a loud
//! message on a developer's machine, and fails when `CI=true`: CI must never pass by not
//! testing.
//!
//! Also real servers that tests talk to: a webhook [`Receiver`], and an S3 store
//! ([`s3_server::S3Server`], moto) for the restic-format repository.

use std::path::PathBuf;

use crate::db::Db;

pub mod s3_server;

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Schemas older than this are leftovers of aborted test runs and are dropped.
const STALE_SCHEMA_SECS: i64 = 3600;

/// A migrated database that lives as long as this value (the SQLite directory) or until a later
/// test run sweeps it (the PostgreSQL schema).
pub struct TestDb {
    pub db: Db,
    pub url: String,
    dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("steward.db").display());
        let db = Db::connect(&url, 4).await.expect("open SQLite");
        db.migrate().await.expect("migrate SQLite");
        TestDb {
            db,
            url,
            dir: Some(dir),
            schema: None,
        }
    }

    /// `None` when PostgreSQL is unreachable outside CI (the caller skips); panics in CI.
    pub async fn postgres() -> Option<TestDb> {
        let base = postgres_base_url();
        let admin = match Db::connect(&base, 1).await {
            Ok(db) => db,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("CI=true and PostgreSQL at {base} is unreachable: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED (PostgreSQL half): {base} is unreachable: {e}");
                return None;
            }
        };
        let now = crate::db::now_ms() / 1000;
        sweep_stale_schemas(&admin, now).await;
        let schema = format!("steward_t_{now}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(admin.pool())
            .await
            .expect("create test schema");
        admin.close().await;

        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let db = Db::connect(&url, 4).await.expect("open PostgreSQL test schema");
        db.migrate().await.expect("migrate PostgreSQL");
        Some(TestDb {
            db,
            url,
            dir: None,
            schema: Some(schema),
        })
    }

    /// Drops the PostgreSQL schema (the SQLite directory goes with the value).
    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some(schema) = self.schema
            && let Ok(admin) = Db::connect(&postgres_base_url(), 1).await
        {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(admin.pool())
                .await;
            admin.close().await;
        }
    }

    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("steward.db"))
    }
}

pub fn postgres_base_url() -> String {
    std::env::var("STEWARD_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_string())
}

async fn sweep_stale_schemas(admin: &Db, now_secs: i64) {
    let Ok(rows) =
        sqlx::query_as::<_, (String,)>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'steward\\_t\\_%'")
            .fetch_all(admin.pool())
            .await
    else {
        return;
    };
    for (schema,) in rows {
        let created = schema
            .split('_')
            .nth(2)
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(now_secs);
        if now_secs - created > STALE_SCHEMA_SECS {
            // Best effort: another run may be sweeping the same schema.
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(admin.pool())
                .await;
        }
    }
}

/// Writes each test twice, as `NAME::sqlite` and `NAME::postgres`:
///
/// ```ignore
/// db_tests! {
///     async fn records_an_event(db) { /* db: &Db */ }
/// }
/// ```
#[macro_export]
macro_rules! db_tests {
    ($(async fn $name:ident($db:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($db: &$crate::db::Db) $body

            #[tokio::test]
            async fn sqlite() {
                let test = $crate::testing::TestDb::sqlite().await;
                run(&test.db).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(test) = $crate::testing::TestDb::postgres().await {
                    run(&test.db).await;
                    test.cleanup().await;
                }
            }
        }
    )*};
}

/// Waits up to 30 s for job `id` to end, and returns it.
pub async fn wait_until_finished(engine: &crate::Engine, id: i64) -> crate::jobs::Job {
    for _ in 0..600 {
        let job = engine.job(id).await.unwrap().unwrap();
        if job.state.is_finished() {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job #{id} never finished");
}

/// Every line of job `id`'s log, joined.
pub async fn log_text(engine: &crate::Engine, id: i64) -> String {
    let lines = engine.job_log(id, 0, 100_000).await.unwrap();
    lines.into_iter().map(|l| l.line).collect::<Vec<_>>().join("\n")
}

/// How many live processes are in process group `group` (every program Steward starts leads
/// a group of its own): zero once a program left nothing behind.
pub fn processes_in_group(group: i32) -> usize {
    crate::process::live_members(nix::unistd::Pid::from_raw(group))
}

/// The process id a test's program wrote into `path`, once it is there (up to 30 s).
pub async fn pid_in(path: &std::path::Path) -> i32 {
    for _ in 0..600 {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return pid;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{} never got a process id", path.display());
}

/// A webhook receiver for notification tests: a real HTTP server on port 0 that records every
/// request's JSON body and headers, and answers 503 to the first requests when told to.
pub struct Receiver {
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    fail_next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// One request a [`Receiver`] got, and whether it accepted it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: axum::http::HeaderMap,
    pub body: serde_json::Value,
    pub accepted: bool,
}

impl Receiver {
    pub async fn start() -> Receiver {
        use std::sync::{Arc, Mutex, atomic::AtomicUsize};
        let requests: Arc<Mutex<Vec<Received>>> = Arc::default();
        let fail_next = Arc::new(AtomicUsize::new(0));
        let (recorded, failing) = (requests.clone(), fail_next.clone());
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (recorded, failing) = (recorded.clone(), failing.clone());
            async move {
                use std::sync::atomic::Ordering;
                let accepted = failing
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_err();
                let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                recorded.lock().unwrap().push(Received {
                    headers,
                    body,
                    accepted,
                });
                if accepted {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let url = format!("http://{}/hook", listener.local_addr().expect("local address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url,
            requests,
            fail_next,
            task,
        }
    }

    /// Answers the next `n` requests with 503 Service Unavailable.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// The bodies it accepted.
    pub fn accepted(&self) -> Vec<serde_json::Value> {
        self.received()
            .into_iter()
            .filter(|r| r.accepted)
            .map(|r| r.body)
            .collect()
    }

    /// Waits up to `seconds` until it accepted `count` requests; returns what it accepted.
    pub async fn wait_for(&self, count: usize, seconds: u64) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while self.accepted().len() < count && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.accepted()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
