//! What the driver tests share: a context whose log and progress reports are collected,
//! scratch and output directories, and the skip-or-fail rule for tools and servers that are
//! missing.

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    drivers::Context,
    output::{JobLog, Level},
};

type Report = Box<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// Every (done, total) a driver reported.
type Reports = Arc<Mutex<Vec<(u64, Option<u64>)>>>;

/// What a [`Context`] borrows, owned by the test.
pub struct Harness {
    pub log: JobLog,
    /// Every line logged so far (the log is drained as it comes, so a chatty driver never
    /// waits on a full channel).
    pub logged: Arc<Mutex<Vec<(Level, String)>>>,
    drain: JoinHandle<()>,
    pub stop: CancellationToken,
    pub scratch: tempfile::TempDir,
    pub out: tempfile::TempDir,
    /// Every progress report: bytes done, and the total when known.
    pub progress: Reports,
    report: Report,
}

impl Harness {
    pub fn new() -> Harness {
        let (log, mut receiver) = JobLog::channel();
        let logged = Arc::new(Mutex::new(Vec::new()));
        let sink = logged.clone();
        let drain = tokio::spawn(async move {
            while let Some(line) = receiver.recv().await {
                sink.lock().unwrap().push(line);
            }
        });
        let progress = Arc::new(Mutex::new(Vec::new()));
        let seen = progress.clone();
        Harness {
            log,
            logged,
            drain,
            stop: CancellationToken::new(),
            scratch: tempfile::tempdir().unwrap(),
            out: tempfile::tempdir().unwrap(),
            progress,
            report: Box::new(move |done, total| seen.lock().unwrap().push((done, total))),
        }
    }

    pub fn ctx(&self) -> Context<'_> {
        Context {
            environment: "staging",
            resource: "main",
            backup_id: "staging-20261122-0436-7f3a",
            description: "before the upgrade",
            log: &self.log,
            stop: &self.stop,
            progress: &*self.report,
            scratch: self.scratch.path(),
            tool_env: &[],
            grace: std::time::Duration::from_secs(10),
        }
    }

    /// The most bytes any progress report said were done.
    pub fn progress_max(&self) -> u64 {
        self.progress
            .lock()
            .unwrap()
            .iter()
            .map(|(done, _)| *done)
            .max()
            .unwrap_or(0)
    }

    /// Every line logged, once the driver is done.
    pub async fn lines(self) -> Vec<(Level, String)> {
        drop(self.log);
        self.drain.await.unwrap();
        Arc::try_unwrap(self.logged)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_default()
    }
}

/// Whether a test of something this machine lacks must fail (CI) or may skip, loudly.
pub fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// A PostgreSQL server for tests: `STEWARD_TEST_POSTGRES_URL`, by default the local one.
pub mod postgres {
    use super::skip_or_fail;
    use crate::{drivers::command::tool_version, testing::DEFAULT_TEST_POSTGRES_URL};

    const PG_DUMP: &str = "pg_dump";

    pub fn server_url() -> String {
        std::env::var("STEWARD_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_string())
    }

    /// Runs SQL with psql; `Err` carries psql's message.
    pub async fn psql(url: &str, sql: &str) -> Result<String, String> {
        let output = tokio::process::Command::new("psql")
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
            .output()
            .await
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// A database of its own for one test, dropped afterwards (even when the test fails).
    pub struct TempDatabase {
        pub name: String,
        pub url: String,
    }

    impl TempDatabase {
        pub async fn create() -> TempDatabase {
            let name = format!("steward_drv_{}", uuid::Uuid::new_v4().simple());
            psql(&server_url(), &format!("CREATE DATABASE {name}")).await.unwrap();
            let mut url = url::Url::parse(&server_url()).unwrap();
            url.set_path(&name);
            TempDatabase {
                name,
                url: url.to_string(),
            }
        }
    }

    impl Drop for TempDatabase {
        fn drop(&mut self) {
            let _ = std::process::Command::new("psql")
                .args(["-X", "-q", "-d", &server_url(), "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .output();
        }
    }

    /// The database's full schema as `pg_dump --schema-only` writes it (owners and privileges
    /// included); see [`dump`].
    pub async fn schema_dump(url: &str) -> String {
        dump(url, "--schema-only").await
    }

    /// Every row of every table and every sequence's value, as `pg_dump --data-only` writes
    /// them; see [`dump`].
    pub async fn data_dump(url: &str) -> String {
        dump(url, "--data-only").await
    }

    /// pg_dump's plain output with `option`, without what differs between two dumps of the same
    /// database: the random key of pg_dump's `\restrict` lines.
    async fn dump(url: &str, option: &str) -> String {
        let output = tokio::process::Command::new(PG_DUMP)
            .args([option, "--no-password", "--dbname", url])
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A role of its own for one test (`LOGIN`, no password: the test server trusts local
    /// connections), dropped afterwards with what it owns. Declare it before the
    /// [`TempDatabase`]s it owns objects in, so that they are dropped first.
    pub struct TempRole {
        pub name: String,
    }

    impl TempRole {
        pub async fn create(attributes: &str) -> TempRole {
            let name = format!("steward_role_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
            psql(&server_url(), &format!("CREATE ROLE {name} LOGIN {attributes}"))
                .await
                .unwrap();
            TempRole { name }
        }

        /// `database`'s URL with this role as the user.
        pub fn url(&self, database: &TempDatabase) -> String {
            let mut url = url::Url::parse(&database.url).unwrap();
            url.set_username(&self.name).unwrap();
            url.to_string()
        }
    }

    impl Drop for TempRole {
        fn drop(&mut self) {
            let _ = std::process::Command::new("psql")
                .args(["-X", "-q", "-d", &server_url(), "-c"])
                .arg(format!("DROP ROLE IF EXISTS {}", self.name))
                .output();
        }
    }

    /// Whether pg_dump and the server are here; skips loudly (or fails in CI) when not.
    pub async fn available() -> bool {
        if let Err(e) = tool_version(PG_DUMP).await {
            skip_or_fail(&format!("{PG_DUMP} cannot be run: {e}"));
            return false;
        }
        if let Err(e) = psql(&server_url(), "SELECT 1").await {
            skip_or_fail(&format!("PostgreSQL at {} is unreachable: {e}", server_url()));
            return false;
        }
        true
    }
}

/// A MariaDB/MySQL server for tests: `STEWARD_TEST_MYSQL_URL`, by default the local one.
pub mod mysql {
    use super::skip_or_fail;
    use crate::drivers::command::tool_version;

    pub const DEFAULT_TEST_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306";

    pub fn server_url() -> String {
        std::env::var("STEWARD_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_TEST_MYSQL_URL.to_string())
    }

    /// The test server's address as client options.
    pub fn client_args() -> Vec<String> {
        let url = url::Url::parse(&server_url()).unwrap();
        let mut args = vec![
            format!("--host={}", url.host_str().unwrap_or("127.0.0.1")),
            format!("--port={}", url.port().unwrap_or(3306)),
            format!("--user={}", url.username()),
        ];
        if let Some(password) = url.password() {
            args.push(format!("--password={password}"));
        }
        args
    }

    pub fn url_of(database: &str, user: &str) -> String {
        let mut url = url::Url::parse(&server_url()).unwrap();
        url.set_path(database);
        url.set_username(user).unwrap();
        url.set_password(None).unwrap();
        url.to_string()
    }

    /// Runs SQL with the client (`mariadb`, else `mysql`); stdin is fed from `input` if given.
    pub async fn sql(database: Option<&str>, statements: &str, input: Option<Vec<u8>>) -> Result<String, String> {
        sql_with(client_args(), database, statements, input).await
    }

    /// Runs SQL as `user` (identified by `password`), e.g. a [`TempDatabase`]'s own account.
    pub async fn sql_as(user: &str, password: &str, database: &str, statements: &str) -> Result<String, String> {
        let mut args: Vec<String> = client_args()
            .into_iter()
            .filter(|arg| !arg.starts_with("--user=") && !arg.starts_with("--password="))
            .collect();
        args.extend([format!("--user={user}"), format!("--password={password}")]);
        sql_with(args, Some(database), statements, None).await
    }

    /// The database's schema — tables, views, routines, triggers, events — as mysqldump writes
    /// it, without its date.
    pub async fn schema_dump(database: &str) -> String {
        dump(database, &["--no-data", "--routines", "--events", "--triggers"]).await
    }

    /// Every row of every table (sequences' state included), as mysqldump writes them, one row
    /// a line, in primary-key order.
    pub async fn data_dump(database: &str) -> String {
        dump(
            database,
            &[
                "--no-create-info",
                "--skip-triggers",
                "--skip-extended-insert",
                "--order-by-primary",
            ],
        )
        .await
    }

    async fn dump(database: &str, options: &[&str]) -> String {
        let tool = if tool_version("mariadb-dump").await.is_ok() {
            "mariadb-dump"
        } else {
            "mysqldump"
        };
        let output = tokio::process::Command::new(tool)
            .args(client_args())
            .args(options)
            .args(["--skip-dump-date", "--", database])
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn sql_with(
        args: Vec<String>,
        database: Option<&str>,
        statements: &str,
        input: Option<Vec<u8>>,
    ) -> Result<String, String> {
        use tokio::io::AsyncWriteExt;
        let client = if tool_version("mariadb").await.is_ok() {
            "mariadb"
        } else {
            "mysql"
        };
        let mut command = tokio::process::Command::new(client);
        command
            .args(args)
            .args(["--batch", "--skip-column-names"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if !statements.is_empty() {
            command.arg("-e").arg(statements);
        }
        if let Some(database) = database {
            command.arg(database);
        }
        let mut child = command.spawn().map_err(|e| e.to_string())?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin
            .write_all(&input.unwrap_or_default())
            .await
            .map_err(|e| e.to_string())?;
        drop(stdin);
        let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// A database (and an account for it) of its own for one test, dropped afterwards.
    pub struct TempDatabase {
        pub name: String,
    }

    /// An awkward password: quotes, a backslash, a space and a hash.
    pub const PASSWORD: &str = r#"p"a\ss w#rd'x"#;

    impl TempDatabase {
        pub async fn create() -> TempDatabase {
            let name = format!("steward_drv_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
            let quoted = PASSWORD.replace('\\', "\\\\").replace('\'', "''");
            sql(
                None,
                &format!(
                    "CREATE DATABASE {name}; CREATE USER '{name}'@'%' IDENTIFIED BY '{quoted}';
                     GRANT ALL ON {name}.* TO '{name}'@'%'; GRANT SELECT ON mysql.proc TO '{name}'@'%';"
                ),
                None,
            )
            .await
            .unwrap();
            TempDatabase { name }
        }
    }

    impl Drop for TempDatabase {
        fn drop(&mut self) {
            let name = &self.name;
            let client = if std::process::Command::new("mariadb").arg("--version").output().is_ok() {
                "mariadb"
            } else {
                "mysql"
            };
            let _ = std::process::Command::new(client)
                .args(client_args())
                .arg("-e")
                .arg(format!(
                    "DROP DATABASE IF EXISTS {name}; DROP USER IF EXISTS '{name}'@'%';"
                ))
                .output();
        }
    }

    pub async fn available() -> bool {
        if tool_version("mysqldump").await.is_err() && tool_version("mariadb-dump").await.is_err() {
            skip_or_fail("neither mysqldump nor mariadb-dump can be run");
            return false;
        }
        if let Err(e) = sql(None, "SELECT 1", None).await {
            skip_or_fail(&format!("MariaDB/MySQL at {} is unreachable: {e}", server_url()));
            return false;
        }
        true
    }
}

/// Everything a restore must give back, per relative path: kind, mode, mtime, and the content
/// or link target. The root itself is left out.
pub fn tree_state(
    root: &std::path::Path,
) -> std::collections::BTreeMap<std::path::PathBuf, (String, u32, i64, Vec<u8>)> {
    use std::{
        collections::BTreeMap,
        fs,
        os::unix::{ffi::OsStringExt, fs::MetadataExt},
        path::{Path, PathBuf},
    };
    fn visit(root: &Path, dir: &Path, found: &mut BTreeMap<PathBuf, (String, u32, i64, Vec<u8>)>) {
        for child in fs::read_dir(dir).unwrap() {
            let path = child.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let mode = meta.mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap().into_os_string().into_vec();
                found.insert(rel, ("link".into(), 0, meta.mtime(), target));
            } else if meta.is_dir() {
                visit(root, &path, found);
                found.insert(rel, ("dir".into(), mode, meta.mtime(), Vec::new()));
            } else {
                found.insert(rel, ("file".into(), mode, meta.mtime(), fs::read(&path).unwrap()));
            }
        }
    }
    let mut found = BTreeMap::new();
    visit(root, root, &mut found);
    found
}
