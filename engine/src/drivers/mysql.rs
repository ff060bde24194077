//! The `mysql` driver: a MySQL or MariaDB database dumped with `mysqldump` (MariaDB's
//! `mariadb-dump` where there is no `mysqldump`) into `database.sql.zst`.
//!
//! `--single-transaction` gives a consistent snapshot of InnoDB tables without locking them,
//! `--routines` and `--triggers` keep the database's code with its data, `--hex-blob` keeps
//! binary columns intact, and `--no-tablespaces` spares the account the PROCESS privilege.
//! The database is dumped without `CREATE DATABASE`/`USE`, so it can be restored into a
//! database of any name. SQL text compresses well: the dump is zstd-compressed while it
//! streams (in blocking work, never on the async threads) and hashed as it is written.
//!
//! The password never appears in the tool's arguments: it is handed over in `MYSQL_PWD`, which
//! passes any bytes as they are (an option file would need quoting rules that differ between
//! MySQL and MariaDB) and is readable only by Steward's own user.

use std::{path::Path, time::Duration};

use super::{
    Artifact, Context, DriverError, HashingWriter,
    command::{Watched, ZSTD_LEVEL, label, restore_result, run_tool, stream_stdout, tool_command, tool_version},
};
use crate::{config::SecretSource, process::Program};

/// The artifact's file name.
pub const ARTIFACT: &str = "database.sql.zst";

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
    let encoder = zstd::Encoder::new(HashingWriter::new(watched), ZSTD_LEVEL)
        .map_err(DriverError::io("starting the zstd compressor"))?;
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
        encoder,
        |encoder| {
            let (watched, size, sha256) = encoder.finish()?.finish();
            watched.into_inner().sync_all()?;
            Ok((size, sha256))
        },
        &counter,
        ctx,
    )
    .await?;
    ctx.log
        .info(format!(
            "{label}: dumped database {} ({size} bytes compressed)",
            target.database
        ))
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
            "compression": "zstd",
        }),
    })
}

/// Loads a `database.sql.zst` artifact into the database at `url`: decompressed into scratch
/// space, then read by the `mysql` client (`mariadb` where there is none), which stops at the
/// first error. The dump drops and recreates each of its tables; MySQL commits each table's
/// DDL on its own, so a failed load leaves the database partly restored — the error says so.
pub async fn restore(
    url: &str,
    password: Option<&SecretSource>,
    artifact: &Path,
    ctx: &Context<'_>,
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
    let mut client = None;
    for candidate in CLIENTS {
        if let Ok(version) = tool_version(candidate).await {
            client = Some((candidate, version));
            break;
        }
    }
    let Some((client, tool)) = client else {
        return Err(DriverError::Failed(format!(
            "{label}: neither mysql nor mariadb can be run (is the MySQL or MariaDB client installed?)"
        )));
    };

    // The client reads the dump from a file: decompress it first (blocking work, off the
    // async threads).
    let dump = ctx.scratch.join("database.sql");
    let (from, to) = (artifact.to_path_buf(), dump.clone());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut decoder = zstd::Decoder::new(std::fs::File::open(&from)?)?;
        std::io::copy(&mut decoder, &mut std::fs::File::create(&to)?)?;
        Ok(())
    })
    .await
    .map_err(|e| DriverError::Failed(format!("{label}: decompressing the dump failed: {e}")))?
    .map_err(DriverError::io(format!(
        "{label}: decompressing {}",
        artifact.display()
    )))?;

    let mut command = vec![client.to_string(), "--batch".to_string()];
    command.extend(target.host.iter().map(|host| format!("--host={host}")));
    command.extend(target.port.iter().map(|port| format!("--port={port}")));
    command.extend(target.user.iter().map(|user| format!("--user={user}")));
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
            "{label}: loading the dump into {} with {tool}",
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
        " (the tables loaded before the error are restored, the others are not)",
    )?;
    ctx.log
        .info(format!("{label}: restored database {}", target.database))
        .await;
    Ok(())
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
            mysql::{PASSWORD, TempDatabase, available, server_url, sql, url_of},
            skip_or_fail,
        },
    };

    fn password_file(harness: &Harness, password: &str) -> SecretSource {
        let path = harness.scratch.path().join("mysql-password");
        std::fs::write(&path, format!("{password}\n")).unwrap();
        SecretSource::File(path)
    }

    #[tokio::test]
    async fn a_database_is_dumped_compressed_and_restores() {
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
        assert_eq!(artifact.file, Path::new("database.sql.zst"));
        assert_eq!(
            sha256_of(&path).await.unwrap(),
            (artifact.size, artifact.sha256.clone())
        );
        assert!(
            artifact.tool.as_deref().is_some_and(|t| t.contains("Ver")),
            "{artifact:?}"
        );

        let dump = zstd::decode_all(std::fs::File::open(&path).unwrap()).unwrap();
        assert!(
            artifact.size < dump.len() as u64 / 2,
            "{} of {}",
            artifact.size,
            dump.len()
        );
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
