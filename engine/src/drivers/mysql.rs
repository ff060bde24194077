//! The `mysql` driver: a MySQL or MariaDB database dumped with `mysqldump` (MariaDB's
//! `mariadb-dump` where there is no `mysqldump`) into `database.sql.zst`.
//!
//! `--single-transaction` gives a consistent snapshot of InnoDB tables without locking them,
//! `--routines`, `--events` and `--triggers` keep the database's code with its data,
//! `--hex-blob` keeps binary columns intact, and `--no-tablespaces` spares the account the
//! PROCESS privilege. The database is dumped without `CREATE DATABASE`/`USE`, so it can be
//! restored into a database of any name. The dump is written as plain SQL and hashed as it is
//! written: the repository compresses what it stores, and plain SQL deduplicates night to night
//! where a compressed stream differs from its first changed row on. (Backups taken before the
//! repository hold `database.sql.zst`; a restore reads either.)
//!
//! **A restore leaves the database exactly as the backup had it.** The dump drops and recreates
//! only its own tables, so a table, view, routine or event created after the backup would
//! survive. MySQL commits every DDL statement on its own, so no transaction can make the
//! restore all-or-nothing; the simplest complete method is taken: the database is dropped
//! (tables, views, routines, events and triggers with it), created again with the options it
//! had (`SHOW CREATE DATABASE`: character set, collation, comment) and the dump loaded into it.
//! Privileges granted on the database survive `DROP DATABASE`. (Loading beside the old database
//! and swapping by `RENAME TABLE` would keep the old one until the end, but views, routines and
//! events cannot be renamed across databases; the safety backup taken before every restore is
//! what brings back the old state.) [`check_restore_privileges`] refuses a restore when it is
//! requested if the account lacks a privilege the method or the dump needs.
//!
//! The password never appears in the tool's arguments: it is handed over in `MYSQL_PWD`, which
//! passes any bytes as they are (an option file would need quoting rules that differ between
//! MySQL and MariaDB) and is readable only by Steward's own user.

use std::{path::Path, time::Duration};

use super::{
    Artifact, Context, DriverError, HashingWriter, Purpose,
    command::{Watched, label, restore_result, run_tool, stream_stdout, tool_command, tool_version},
};
use crate::{config::SecretSource, process::Program};

/// The artifact's file name.
pub const ARTIFACT: &str = "database.sql";

/// The dump tools, in order of preference.
const TOOLS: [&str; 2] = ["mysqldump", "mariadb-dump"];
/// The clients that load a dump, in order of preference.
const CLIENTS: [&str; 2] = ["mysql", "mariadb"];

/// A restore is stopped after this long (SIGTERM, then SIGKILL after the grace period).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// Dumps the database at `url` (`mysql://USER@HOST:PORT/DB`, no password) into
/// `out_dir/database.sql.zst`.
pub async fn backup(
    url: &str,
    password: Option<&SecretSource>,
    out_dir: &Path,
    ctx: &Context<'_>,
) -> Result<Artifact, DriverError> {
    let label = label(ctx);
    let target = Target::parse(url).map_err(|why| DriverError::Failed(format!("{label}: {why}")))?;
    let password = password
        .map(|source| {
            source
                .read()
                .map_err(|why| DriverError::Failed(format!("{label}: the password: {why}")))
        })
        .transpose()?;
    let secrets: Vec<String> = password.iter().cloned().collect();

    let mut found = None;
    let mut why_not = Vec::new();
    for candidate in TOOLS {
        match tool_version(candidate).await {
            Ok(version) => {
                found = Some((candidate, version));
                break;
            }
            Err(e) => why_not.push(format!("{candidate}: {e}")),
        }
    }
    let Some((program, tool)) = found else {
        return Err(DriverError::Failed(format!(
            "{label}: neither mysqldump nor mariadb-dump can be run (is the MySQL or MariaDB client installed?): {}",
            why_not.join("; ")
        )));
    };

    let mut command = tool_command(program);
    command.envs(ctx.tool_env.iter().cloned());
    command.args([
        "--single-transaction",
        "--routines",
        "--events",
        "--triggers",
        "--hex-blob",
        "--no-tablespaces",
    ]);
    if let Some(host) = &target.host {
        command.arg(format!("--host={host}"));
    }
    if let Some(port) = target.port {
        command.arg(format!("--port={port}"));
    }
    if let Some(user) = &target.user {
        command.arg(format!("--user={user}"));
    }
    command.arg("--").arg(&target.database);
    if let Some(password) = &password {
        command.env("MYSQL_PWD", password);
    }

    let path = out_dir.join(ARTIFACT);
    let file = std::fs::File::create(&path).map_err(DriverError::io(format!("creating {}", path.display())))?;
    let (watched, counter) = Watched::new(file, ctx.stop.clone());
    let writer = HashingWriter::new(watched);
    let server = match (&target.host, target.port) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.clone(),
        (None, _) => "the local server".to_string(),
    };
    ctx.log
        .info(format!(
            "{label}: dumping database {} on {server} with {tool}",
            target.database
        ))
        .await;
    let (size, sha256) = stream_stdout(
        command,
        program,
        &secrets,
        writer,
        |writer| {
            let (watched, size, sha256) = writer.finish();
            watched.into_inner().sync_all()?;
            Ok((size, sha256))
        },
        &counter,
        ctx,
    )
    .await?;
    ctx.log
        .info(format!("{label}: dumped database {} ({size} bytes)", target.database))
        .await;
    Ok(Artifact {
        file: ARTIFACT.into(),
        size,
        sha256,
        tool: Some(tool),
        details: serde_json::json!({
            "database": target.database,
            "host": target.host,
            "port": target.port,
        }),
    })
}

/// Restores a `database.sql.zst` artifact into the database at `url`: the database is dropped
/// and created again with its options (see the module's documentation), then the dump is read
/// by the `mysql` client (`mariadb` where there is none), which stops at the first error. MySQL
/// commits DDL statement by statement, so a failed load leaves the database partly restored —
/// the error says so.
pub async fn restore(
    url: &str,
    password: Option<&SecretSource>,
    artifact: &Path,
    ctx: &Context<'_>,
) -> Result<(), DriverError> {
    restore_for(url, password, artifact, ctx, Purpose::Restore).await
}

async fn restore_for(
    url: &str,
    password: Option<&SecretSource>,
    artifact: &Path,
    ctx: &Context<'_>,
    purpose: Purpose,
) -> Result<(), DriverError> {
    let label = label(ctx);
    let target = Target::parse(url).map_err(|why| DriverError::Failed(format!("{label}: {why}")))?;
    let password = password
        .map(|source| {
            source
                .read()
                .map_err(|why| DriverError::Failed(format!("{label}: the password: {why}")))
        })
        .transpose()?;
    let Some((client, tool)) = find_client().await else {
        return Err(DriverError::Failed(format!(
            "{label}: neither mysql nor mariadb can be run (is the MySQL or MariaDB client installed?)"
        )));
    };

    // The database's own options, to create it again as it is.
    let show = format!("SHOW CREATE DATABASE {}", quoted(&target.database));
    let create = query(client, &target, password.as_deref(), &show)
        .await
        .map_err(|why| DriverError::Failed(format!("{label}: reading the database's options failed: {why}")))?;
    let create = create
        .strip_prefix(&format!("{}\t", target.database))
        .filter(|statement| statement.starts_with("CREATE DATABASE"))
        .ok_or_else(|| {
            DriverError::Failed(format!(
                "{label}: reading the database's options failed: unexpected answer to SHOW CREATE DATABASE"
            ))
        })?
        .to_string();

    // The client reads the statements that empty the database and then the dump from one file
    // (copied here, decompressed if it is an older `.sql.zst`: blocking work, off the async
    // threads).
    let dump = ctx.scratch.join("database.sql");
    let prelude = format!(
        "DROP DATABASE {name};\n{create};\nUSE {name};\n",
        name = quoted(&target.database)
    );
    let (from, to) = (artifact.to_path_buf(), dump.clone());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::fs::File::create(&to)?;
        out.write_all(prelude.as_bytes())?;
        let dump = std::fs::File::open(&from)?;
        if from.extension().is_some_and(|e| e == "zst") {
            std::io::copy(&mut zstd::Decoder::new(dump)?, &mut out)?;
        } else {
            std::io::copy(&mut std::io::BufReader::new(dump), &mut out)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| DriverError::Failed(format!("{label}: preparing the dump failed: {e}")))?
    .map_err(DriverError::io(format!("{label}: reading {}", artifact.display())))?;

    let mut command = vec![client.to_string(), "--batch".to_string()];
    command.extend(client_options(&target));
    command.extend(["--".to_string(), target.database.clone()]);
    let mut env = ctx.tool_env.to_vec();
    env.extend(password.iter().map(|p| ("MYSQL_PWD".to_string(), p.clone())));
    let program = Program {
        command,
        workdir: None,
        env,
        timeout: RESTORE_TIMEOUT,
        grace: ctx.grace,
        stdin: Some(dump.clone()),
    };
    ctx.log
        .info(format!(
            "{label}: dropping database {} and loading the dump into it, created again as it was, with {tool}",
            target.database
        ))
        .await;
    let secrets: Vec<String> = password.into_iter().collect();
    let (ended, last) = run_tool(&program, &secrets, ctx).await;
    let _ = tokio::fs::remove_file(&dump).await;
    restore_result(
        ended,
        last,
        &label,
        client,
        RESTORE_TIMEOUT,
        match purpose {
            Purpose::Restore => {
                " (the database was dropped and created again: what the dump held before the error is restored, the rest is missing)"
            }
            Purpose::TestRestore => " (in the scratch database, which is dropped)",
        },
    )?;
    ctx.log
        .info(format!("{label}: restored database {}", target.database))
        .await;
    Ok(())
}

/// Test-restores a `database.sql.zst` artifact into the scratch database `scratch` on the
/// server at `url`, never touching the database `url` names: `scratch` is created with that
/// database's options (which needs CREATE on it), the dump loaded into it by [`restore`] — the
/// same method a real restore uses —, each of `verify_sql` run in it (each must return a row),
/// and `scratch` dropped afterwards, whatever happened (DROP). Returns what was checked, in
/// words; a failure carries the client's own words.
pub async fn test_restore(
    url: &str,
    password: Option<&SecretSource>,
    verify_sql: &[String],
    artifact: &Path,
    scratch: &str,
    ctx: &Context<'_>,
) -> Result<String, DriverError> {
    let label = label(ctx);
    let failed = |why: String| DriverError::Failed(format!("{label}: {why}"));
    let target = Target::parse(url).map_err(failed)?;
    let password_value = password
        .map(|source| source.read().map_err(|why| failed(format!("the password: {why}"))))
        .transpose()?;
    let Some((client, _)) = find_client().await else {
        return Err(failed(
            "neither mysql nor mariadb can be run (is the MySQL or MariaDB client installed?)".into(),
        ));
    };
    let mut scratch_url = url::Url::parse(url).map_err(|e| failed(format!("the URL is not valid: {e}")))?;
    scratch_url.set_path(scratch);
    let scratch_url = scratch_url.to_string();
    let run = |statements: String, stoppable: bool| {
        let (target, password) = (&target, password_value.as_deref());
        async move {
            let work = tokio::time::timeout(STATEMENT_TIMEOUT, query(client, target, password, &statements));
            let answer = if stoppable {
                tokio::select! {
                    answer = work => answer,
                    () = ctx.stop.cancelled() => return Err("stopped".to_string()),
                }
            } else {
                work.await
            };
            answer.map_err(|_| {
                format!(
                    "{client} did not finish within {} minutes",
                    STATEMENT_TIMEOUT.as_secs() / 60
                )
            })?
        }
    };

    // The live database's options (read only), given to the scratch database.
    let show = format!("SHOW CREATE DATABASE {}", quoted(&target.database));
    let create = run(show, true)
        .await
        .ok()
        .and_then(|answer| {
            answer
                .strip_prefix(&format!("{}\t", target.database))
                .and_then(|statement| statement.strip_prefix(&format!("CREATE DATABASE {}", quoted(&target.database))))
                .map(|options| format!("CREATE DATABASE {}{options}", quoted(scratch)))
        })
        .unwrap_or_else(|| format!("CREATE DATABASE {}", quoted(scratch)));
    let drop = format!("DROP DATABASE IF EXISTS {}", quoted(scratch));
    if let Err(why) = run(format!("{drop}; {create}"), true).await {
        if ctx.stop.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        if why.contains("Access denied") {
            return Err(failed(format!(
                "the test restore needs CREATE and DROP on the scratch database {scratch} (grant them on `steward\\_verify\\_%`.*): {why}"
            )));
        }
        return Err(failed(format!("creating the scratch database {scratch} failed: {why}")));
    }
    let server = match (&target.host, target.port) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.clone(),
        (None, _) => "the local server".to_string(),
    };
    ctx.log
        .info(format!(
            "{label}: test restore into the scratch database {scratch} on {server} (the database {} is not touched)",
            target.database
        ))
        .await;
    let checked = async {
        restore_for(&scratch_url, password, artifact, ctx, Purpose::TestRestore).await?;
        let tables = run(
            format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}'",
                scratch.replace('\\', "\\\\").replace('\'', "''")
            ),
            true,
        )
        .await
        .map_err(|why| failed(format!("counting the restored tables failed: {why}")))?;
        let mut checked = format!("restored into a scratch database ({} tables)", tables.trim());
        for (n, sql) in verify_sql.iter().enumerate() {
            let answer = run(format!("USE {}; {sql}", quoted(scratch)), true)
                .await
                .map_err(|why| failed(format!("verify_sql query {} failed: {why}", n + 1)))?;
            let rows = answer.lines().filter(|line| !line.is_empty()).count();
            if rows == 0 {
                return Err(failed(format!("verify_sql query {} returned no rows: {sql}", n + 1)));
            }
            ctx.log
                .info(format!("{label}: verify_sql query {} returned {rows} row(s)", n + 1))
                .await;
        }
        if !verify_sql.is_empty() {
            checked.push_str(&format!(", {} verify queries returned rows", verify_sql.len()));
        }
        Ok(checked)
    }
    .await;
    let checked = match checked {
        Err(DriverError::Failed(_)) if ctx.stop.is_cancelled() => Err(DriverError::Cancelled),
        other => other,
    };
    // Dropped even when the job was told to stop.
    match run(drop, false).await {
        Ok(_) => {
            ctx.log
                .info(format!("{label}: dropped the scratch database {scratch}"))
                .await
        }
        Err(why) => {
            ctx.log
                .warn(format!(
                    "{label}: the scratch database {scratch} could not be dropped; drop it by hand: {why}"
                ))
                .await
        }
    }
    checked
}

/// How long one statement of a test restore's own (create, drop, a verify query) may take.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The privileges a restore needs on the database: DROP and CREATE for the database itself
/// and its tables, the rest for what the dump holds (`ALTER … DISABLE KEYS` and `LOCK TABLES`
/// are mysqldump's, then rows, views, routines, triggers and events).
const RESTORE_PRIVILEGES: [&str; 10] = [
    "DROP",
    "CREATE",
    "ALTER",
    "LOCK TABLES",
    "INSERT",
    "SELECT",
    "CREATE VIEW",
    "CREATE ROUTINE",
    "TRIGGER",
    "EVENT",
];

/// How long the privilege check waits for the server (it runs while a person waits).
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// The account and the privileges it holds on database `?`: global ones and those granted on
/// the database (a database-level grant's name is a `LIKE` pattern, as the server matches it),
/// to the account itself or to its current role.
const PRIVILEGES_QUERY: &str = r#"
SELECT CURRENT_USER(), IFNULL(GROUP_CONCAT(DISTINCT PRIVILEGE_TYPE SEPARATOR ','), '')
FROM (
    SELECT PRIVILEGE_TYPE, GRANTEE FROM information_schema.USER_PRIVILEGES
    UNION ALL
    SELECT PRIVILEGE_TYPE, GRANTEE FROM information_schema.SCHEMA_PRIVILEGES WHERE @database LIKE TABLE_SCHEMA
) AS granted
WHERE GRANTEE IN (
    CONCAT('''', LEFT(CURRENT_USER(), LENGTH(CURRENT_USER()) - LENGTH(SUBSTRING_INDEX(CURRENT_USER(), '@', -1)) - 1),
           '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), ''''),
    CONCAT('''', CURRENT_ROLE(), '''@''''')
)"#;

/// Whether the account at `url` holds every privilege in [`RESTORE_PRIVILEGES`] on its
/// database. `Err` names what is missing, or why it could not be found out; it never contains
/// the password.
pub async fn check_restore_privileges(url: &str, password: Option<&SecretSource>) -> Result<(), String> {
    let target = Target::parse(url)?;
    let password = password
        .map(|source| source.read().map_err(|why| format!("the password: {why}")))
        .transpose()?;
    let Some((client, _)) = find_client().await else {
        return Err("the restore's privileges could not be checked: neither mysql nor mariadb can be run".into());
    };
    let database = target.database.replace('\\', "\\\\").replace('\'', "''");
    let statement = format!("SET @database = '{database}'; {PRIVILEGES_QUERY}");
    let answer = tokio::time::timeout(CHECK_TIMEOUT, query(client, &target, password.as_deref(), &statement))
        .await
        .map_err(|_| {
            format!(
                "the restore's privileges could not be checked: the server did not answer within {} s",
                CHECK_TIMEOUT.as_secs()
            )
        })?
        .map_err(|why| format!("the restore's privileges could not be checked: {why}"))?;
    let Some((account, granted)) = answer.split_once('\t') else {
        return Err(format!(
            "the restore's privileges could not be checked: unexpected answer from {client}"
        ));
    };
    let granted: Vec<&str> = granted.split(',').collect();
    let missing: Vec<&str> = RESTORE_PRIVILEGES
        .into_iter()
        .filter(|privilege| !granted.contains(privilege))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the account {account} lacks what a restore needs: {} on database {} (the restore drops the database, \
             creates it again and loads the backup's tables, views, routines, triggers and events into it)",
            missing.join(", "),
            target.database
        ))
    }
}

/// The first client found: its name and version.
async fn find_client() -> Option<(&'static str, String)> {
    for candidate in CLIENTS {
        if let Ok(version) = tool_version(candidate).await {
            return Some((candidate, version));
        }
    }
    None
}

/// The server's address and the account, as client options.
fn client_options(target: &Target) -> Vec<String> {
    let mut options = Vec::new();
    options.extend(target.host.iter().map(|host| format!("--host={host}")));
    options.extend(target.port.iter().map(|port| format!("--port={port}")));
    options.extend(target.user.iter().map(|user| format!("--user={user}")));
    options
}

/// Runs statements with the client and returns the answer, unescaped (`--raw`), without
/// column names; `Err` is the client's message (without the password).
async fn query(client: &str, target: &Target, password: Option<&str>, statements: &str) -> Result<String, String> {
    let mut command = tool_command(client);
    command
        .args(["--batch", "--raw", "--skip-column-names", "--connect-timeout=15"])
        .args(client_options(target))
        .arg("--execute")
        .arg(statements);
    if let Some(password) = password {
        command.env("MYSQL_PWD", password);
    }
    let output = command
        .output()
        .await
        .map_err(|e| format!("{client} could not be started: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end_matches('\n')
            .to_string())
    } else {
        let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
        Err(match password {
            Some(password) if !password.is_empty() => said.replace(password, "********"),
            _ => said,
        })
    }
}

/// A name as a quoted identifier: `shop` → `` `shop` ``.
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// What the URL says, as the dump tool's options want it.
#[derive(Debug, PartialEq)]
struct Target {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    database: String,
}

impl Target {
    /// `Err` says what is wrong with the URL, without repeating it (it might hold a password).
    fn parse(url: &str) -> Result<Target, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("the URL is not a valid mysql:// URL: {e}"))?;
        if !matches!(parsed.scheme(), "mysql" | "mariadb") {
            return Err(format!(
                "the URL must start with mysql:// (it starts with {}://)",
                parsed.scheme()
            ));
        }
        if parsed.password().is_some() {
            return Err("the URL contains a password; give it as the resource's `password` (from an environment variable or a file) instead".into());
        }
        if parsed.query().is_some() {
            return Err("the URL has query parameters, which the mysql driver does not support".into());
        }
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let database = decode(parsed.path().trim_start_matches('/'));
        if database.is_empty() || database.contains('/') {
            return Err("the URL must name one database: mysql://USER@HOST:PORT/DATABASE".into());
        }
        let user = decode(parsed.username());
        Ok(Target {
            host: parsed
                .host_str()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()),
            port: parsed.port(),
            user: (!user.is_empty()).then_some(user),
            database,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::drivers::{
        sha256_of,
        testing::{
            Harness,
            mysql::{PASSWORD, TempDatabase, available, data_dump, schema_dump, server_url, sql, sql_as, url_of},
            skip_or_fail,
        },
    };

    fn password_file(harness: &Harness, password: &str) -> SecretSource {
        let path = harness.scratch.path().join("mysql-password");
        std::fs::write(&path, format!("{password}\n")).unwrap();
        SecretSource::File(path)
    }

    #[tokio::test]
    async fn a_test_restore_goes_into_a_scratch_database_that_is_dropped_whatever_happens() {
        if !available().await {
            return;
        }
        let source = TempDatabase::create().await;
        sql(
            Some(&source.name),
            "CREATE TABLE stock (id INT PRIMARY KEY, qty INT) DEFAULT CHARSET latin1; INSERT INTO stock VALUES (1, 5), (2, 6);",
            None,
        )
        .await
        .unwrap();
        let harness = Harness::new();
        let admin = url::Url::parse(&server_url()).unwrap().username().to_string();
        let url = url_of(&source.name, &admin);
        let artifact = backup(&url, None, harness.out.path(), &harness.ctx()).await.unwrap();
        let path = harness.out.path().join(&artifact.file);
        let scratch = format!(
            "steward_verify_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let exists = |name: String| async move {
            !sql(None, &format!("SHOW DATABASES LIKE '{name}'"), None)
                .await
                .unwrap()
                .is_empty()
        };
        let before = (schema_dump(&source.name).await, data_dump(&source.name).await);

        let checked = test_restore(
            &url,
            None,
            &["SELECT qty FROM stock WHERE id = 2".into()],
            &path,
            &scratch,
            &harness.ctx(),
        )
        .await
        .unwrap();
        assert_eq!(
            checked,
            "restored into a scratch database (1 tables), 1 verify queries returned rows"
        );
        assert!(!exists(scratch.clone()).await);
        let error = test_restore(
            &url,
            None,
            &["SELECT qty FROM stock WHERE id = 3".into()],
            &path,
            &scratch,
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.ends_with("verify_sql query 1 returned no rows: SELECT qty FROM stock WHERE id = 3"),
            "{error}"
        );
        assert!(!exists(scratch.clone()).await);
        assert_eq!((schema_dump(&source.name).await, data_dump(&source.name).await), before);

        // The database's own account, which may not create other databases: the privilege is
        // named, the password is not.
        let password = password_file(&harness, PASSWORD);
        let error = test_restore(
            &url_of(&source.name, &source.name),
            Some(&password),
            &[],
            &path,
            &scratch,
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.contains(&format!(
                "the test restore needs CREATE and DROP on the scratch database {scratch}"
            )) && error.contains("Access denied"),
            "{error}"
        );
        assert!(!error.contains("w#rd"), "{error}");
        assert!(!exists(scratch).await);
    }

    #[tokio::test]
    async fn a_database_is_dumped_and_restores() {
        if !available().await {
            return;
        }
        let source = TempDatabase::create().await;
        sql(
            Some(&source.name),
            "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, price DECIMAL(10,2), raw VARBINARY(16)) ENGINE=InnoDB;
             SET SESSION max_recursive_iterations = 10000;
             INSERT INTO items WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
               SELECT i, CONCAT('item ', i), i * 1.25, UNHEX('00FF10') FROM n;
             CREATE TABLE audit (id INT);
             CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW INSERT INTO audit VALUES (NEW.id);
             CREATE PROCEDURE item_count() SELECT COUNT(*) FROM items;",
            None,
        )
        .await
        .unwrap();

        let harness = Harness::new();
        let password = password_file(&harness, PASSWORD);
        let started = Instant::now();
        let artifact = backup(
            &url_of(&source.name, &source.name),
            Some(&password),
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap();
        eprintln!("mysqldump of 5000 rows took {:?}", started.elapsed());
        let path = harness.out.path().join(&artifact.file);
        assert_eq!(artifact.file, Path::new("database.sql"));
        assert_eq!(
            sha256_of(&path).await.unwrap(),
            (artifact.size, artifact.sha256.clone())
        );
        assert!(
            artifact.tool.as_deref().is_some_and(|t| t.contains("Ver")),
            "{artifact:?}"
        );

        let dump = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&dump);
        assert!(text.contains("CREATE TABLE `items`"), "{text}");
        assert!(text.contains("INSERT INTO `items` VALUES"), "{text}");
        assert!(text.contains("TRIGGER") && text.contains("items_audit"), "{text}");
        assert!(text.contains("PROCEDURE") && text.contains("item_count"), "{text}");
        assert!(!text.contains("CREATE DATABASE"), "restorable under another name");

        // A copy under another name, loaded by the server's administrator (the triggers and
        // procedures name their definer, which only an administrator may give to another).
        let copy = TempDatabase::create().await;
        sql(Some(&copy.name), "", Some(dump)).await.unwrap();
        let state = "SELECT COUNT(*), SUM(price), HEX(MIN(raw)), SUM(name LIKE 'changed%') FROM items";
        assert_eq!(
            sql(Some(&copy.name), state, None).await.unwrap(),
            "5000\t15628125.00\t00FF10\t0"
        );

        // Restored in place after rows were added, changed and deleted: the backed-up state is
        // back. By the server's administrator too: this test made the trigger and procedure as
        // root, and only an account with SUPER may recreate objects another account defined.
        sql(
            Some(&source.name),
            "UPDATE items SET name = CONCAT('changed ', id) WHERE id <= 10;
             DELETE FROM items WHERE id > 4900;
             INSERT INTO items VALUES (9001, 'new', 1, NULL);",
            None,
        )
        .await
        .unwrap();
        let admin = url::Url::parse(&server_url()).unwrap().username().to_string();
        restore(&url_of(&source.name, &admin), None, &path, &harness.ctx())
            .await
            .unwrap();
        assert_eq!(
            sql(Some(&source.name), state, None).await.unwrap(),
            "5000\t15628125.00\t00FF10\t0"
        );

        let lines = format!("{:?}", harness.lines().await);
        assert!(
            lines.contains("dumped database") && lines.contains("restored database"),
            "{lines}"
        );
        assert!(!lines.contains("w#rd"), "{lines}");
    }

    /// One object of every kind MariaDB has, made by the database's own account (not an
    /// administrator, as a real application's account).
    const BACKED_UP_SCHEMA: &str = "
        CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL, price DECIMAL(10,2)) ENGINE=InnoDB;
        INSERT INTO items (name, price) VALUES ('tea', 2.50), ('coffee', 3.10), ('cocoa', 2.90);
        CREATE TABLE audit (item INT);
        CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 3;
        CREATE VIEW dear AS SELECT id, name FROM items WHERE price >= 3;
        CREATE SEQUENCE ticket START WITH 100;
        CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
        CREATE PROCEDURE reprice(factor DECIMAL(4,2)) UPDATE items SET price = price * factor;
        CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW INSERT INTO audit VALUES (NEW.id);
        CREATE EVENT sweep ON SCHEDULE EVERY 1 YEAR STARTS '2037-01-01 00:00:00' DO DELETE FROM audit;";

    /// After the backup: objects of every kind created, altered and dropped, rows changed.
    const CHANGED_AFTER_THE_BACKUP: &str = "
        CREATE TABLE newer (id INT);
        INSERT INTO newer VALUES (1);
        CREATE VIEW newer_view AS SELECT 1 AS one;
        CREATE SEQUENCE newer_seq;
        CREATE FUNCTION newer_fn() RETURNS INT DETERMINISTIC RETURN 1;
        CREATE PROCEDURE newer_proc() SELECT 1;
        CREATE TRIGGER newer_trigger BEFORE UPDATE ON items FOR EACH ROW SET NEW.name = UPPER(NEW.name);
        CREATE EVENT newer_event ON SCHEDULE EVERY 1 YEAR STARTS '2037-01-01 00:00:00' DO DELETE FROM newer;
        ALTER TABLE items ADD COLUMN colour VARCHAR(10);
        CREATE OR REPLACE VIEW cheap AS SELECT id, name, price FROM items WHERE price < 10;
        DROP FUNCTION double_it;
        CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 3;
        ALTER EVENT sweep ON SCHEDULE EVERY 1 DAY STARTS '2037-01-01 00:00:00';
        SELECT NEXTVAL(ticket);
        DROP VIEW dear;
        DROP PROCEDURE reprice;
        DROP TRIGGER items_audit;
        DROP EVENT sweep;
        UPDATE items SET price = 9 WHERE id = 1;
        DELETE FROM items WHERE id = 2;
        INSERT INTO items (name, price) VALUES ('juice', 4);";

    #[tokio::test]
    async fn a_restore_leaves_exactly_what_the_backup_holds_objects_made_after_it_included() {
        if !available().await {
            return;
        }
        let db = TempDatabase::create().await;
        sql(
            None,
            &format!(
                "ALTER DATABASE {} CHARACTER SET latin1 COLLATE latin1_german1_ci COMMENT 'the shop'",
                db.name
            ),
            None,
        )
        .await
        .unwrap();
        sql_as(&db.name, PASSWORD, &db.name, BACKED_UP_SCHEMA).await.unwrap();
        let harness = Harness::new();
        let password = password_file(&harness, PASSWORD);
        let url = url_of(&db.name, &db.name);
        let artifact = backup(&url, Some(&password), harness.out.path(), &harness.ctx())
            .await
            .unwrap();
        let path = harness.out.path().join(&artifact.file);
        let (schema, data) = (schema_dump(&db.name).await, data_dump(&db.name).await);
        let options = sql(None, &format!("SHOW CREATE DATABASE {}", db.name), None)
            .await
            .unwrap();
        assert!(schema.contains("sweep") && schema.contains("reprice"), "{schema}");

        sql_as(&db.name, PASSWORD, &db.name, CHANGED_AFTER_THE_BACKUP)
            .await
            .unwrap();
        assert_ne!(schema_dump(&db.name).await, schema);
        assert_ne!(data_dump(&db.name).await, data);

        check_restore_privileges(&url, Some(&password)).await.unwrap();
        restore(&url, Some(&password), &path, &harness.ctx()).await.unwrap();
        let restored = schema_dump(&db.name).await;
        assert!(!restored.contains("newer"), "{restored}");
        assert_eq!(restored, schema);
        assert_eq!(data_dump(&db.name).await, data);
        assert_eq!(
            sql(None, &format!("SHOW CREATE DATABASE {}", db.name), None)
                .await
                .unwrap(),
            options
        );
        // The account may still use its database, and the trigger fires again.
        sql_as(
            &db.name,
            PASSWORD,
            &db.name,
            "INSERT INTO items (name, price) VALUES ('after', 1)",
        )
        .await
        .unwrap();
        assert_eq!(
            sql_as(&db.name, PASSWORD, &db.name, "SELECT item FROM audit")
                .await
                .unwrap(),
            "4"
        );
        let lines = format!("{:?}", harness.lines().await);
        assert!(lines.contains("dropping database"), "{lines}");
        assert!(!lines.contains("w#rd"), "{lines}");
    }

    #[tokio::test]
    async fn an_account_without_a_privilege_the_restore_needs_is_refused_naming_it() {
        if !available().await {
            return;
        }
        let db = TempDatabase::create().await;
        let harness = Harness::new();
        let password = password_file(&harness, PASSWORD);
        let url = url_of(&db.name, &db.name);
        check_restore_privileges(&url, Some(&password)).await.unwrap();

        sql(
            None,
            &format!("REVOKE TRIGGER, EVENT ON {name}.* FROM '{name}'@'%'", name = db.name),
            None,
        )
        .await
        .unwrap();
        let refused = check_restore_privileges(&url, Some(&password)).await.unwrap_err();
        assert_eq!(
            refused,
            format!(
                "the account {name}@% lacks what a restore needs: TRIGGER, EVENT on database {name} \
                 (the restore drops the database, creates it again and loads the backup's tables, views, routines, \
                 triggers and events into it)",
                name = db.name
            )
        );

        // Granted on a pattern that matches the database (as the server matches it), or
        // globally to an administrator: enough.
        let pattern = format!("{}%", &db.name[..db.name.len() - 4]);
        sql(
            None,
            &format!("GRANT TRIGGER, EVENT ON `{pattern}`.* TO '{}'@'%'", db.name),
            None,
        )
        .await
        .unwrap();
        check_restore_privileges(&url, Some(&password)).await.unwrap();
        let admin = url::Url::parse(&server_url()).unwrap().username().to_string();
        check_restore_privileges(&url_of(&db.name, &admin), None).await.unwrap();

        // A wrong password: the check says it could not check, without the password.
        let wrong = password_file(&harness, "not-the-password");
        let error = check_restore_privileges(&url, Some(&wrong)).await.unwrap_err();
        assert!(
            error.starts_with("the restore's privileges could not be checked: ") && error.contains("Access denied"),
            "{error}"
        );
        assert!(!error.contains("not-the-password"), "{error}");
    }

    #[tokio::test]
    async fn wrong_credentials_fail_with_the_servers_message_and_no_password() {
        if !available().await {
            return;
        }
        let source = TempDatabase::create().await;
        let harness = Harness::new();
        let password = password_file(&harness, "not-the-password");
        let error = backup(
            &url_of(&source.name, &source.name),
            Some(&password),
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("resource \"main\" of staging: "), "{error}");
        assert!(error.contains("dump exited with status"), "{error}");
        assert!(error.contains("Access denied"), "{error}");
        let lines = format!("{:?}", harness.lines().await);
        assert!(
            !error.contains("not-the-password") && !lines.contains("not-the-password"),
            "{lines}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_with_the_tools_message() {
        if tool_version("mysqldump").await.is_err() && tool_version("mariadb-dump").await.is_err() {
            skip_or_fail("neither mysqldump nor mariadb-dump can be run");
            return;
        }
        let harness = Harness::new();
        let error = backup(
            "mysql://root@127.0.0.1:1/test",
            None,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("resource \"main\" of staging: "), "{error}");
        assert!(error.contains("Can't connect"), "{error}");
    }

    #[test]
    fn urls_become_options_and_passwords_in_urls_are_refused() {
        assert_eq!(
            Target::parse("mysql://app%40x@db.example:3307/shop%2Dprod").unwrap(),
            Target {
                host: Some("db.example".into()),
                port: Some(3307),
                user: Some("app@x".into()),
                database: "shop-prod".into(),
            }
        );
        let refused = Target::parse("mysql://app:hunter2@db/shop").unwrap_err();
        assert!(
            refused.contains("contains a password") && !refused.contains("hunter2"),
            "{refused}"
        );
        assert!(Target::parse("mysql://app@db/").is_err());
        assert!(Target::parse("postgres://app@db/shop").is_err());
    }
}
