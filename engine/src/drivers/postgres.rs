//! The `postgres` driver: a PostgreSQL database dumped with `pg_dump -Fc` into
//! `database.dump`.
//!
//! The custom format is compressed by pg_dump itself and is what `pg_restore` reads (selective
//! and parallel restores included), so the dump goes to the artifact as it is: pg_dump's
//! standard output is streamed into the file and hashed on the way, never held in memory.
//!
//! The password never appears in pg_dump's arguments (which every local user can read in
//! `/proc`): the URL must not contain one, and the configured secret is handed over in
//! `PGPASSWORD`. `--no-password` makes a missing or wrong password an error instead of a prompt
//! that would hang the job.

use std::{path::Path, time::Duration};

use super::{
    Artifact, Context, DriverError, HashingWriter,
    command::{Watched, label, restore_result, run_tool, stream_stdout, tool_command, tool_version},
};
use crate::{config::SecretSource, process::Program};

/// The artifact's file name.
pub const ARTIFACT: &str = "database.dump";

const PG_DUMP: &str = "pg_dump";
const PG_RESTORE: &str = "pg_restore";

/// A restore is stopped after this long (SIGTERM, then SIGKILL after the grace period).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// How long pg_dump waits for the server to answer before it gives up (unless the URL says).
const CONNECT_TIMEOUT_SECONDS: &str = "30";

/// Dumps the database at `url` (`postgres://USER@HOST:PORT/DB`, no password) into
/// `out_dir/database.dump`.
pub async fn backup(
    url: &str,
    password: Option<&SecretSource>,
    out_dir: &Path,
    ctx: &Context<'_>,
) -> Result<Artifact, DriverError> {
    let label = label(ctx);
    let Server {
        host,
        port,
        database,
        password,
    } = Server::parse(url, password).map_err(|why| DriverError::Failed(format!("{label}: {why}")))?;
    let secrets: Vec<String> = password.iter().cloned().collect();

    let tool = tool_version(PG_DUMP).await.map_err(|e| {
        DriverError::Failed(format!(
            "{label}: {PG_DUMP} cannot be run (is the PostgreSQL client installed?): {e}"
        ))
    })?;

    let mut command = tool_command(PG_DUMP);
    command
        .envs(ctx.tool_env.iter().cloned())
        .args(["--format=custom", "--no-password", "--dbname"])
        .arg(url)
        .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECONDS)
        .env("PGAPPNAME", "steward-backup");
    if let Some(password) = &password {
        command.env("PGPASSWORD", password);
    }

    let target = out_dir.join(ARTIFACT);
    let file = std::fs::File::create(&target).map_err(DriverError::io(format!("creating {}", target.display())))?;
    let (watched, counter) = Watched::new(file, ctx.stop.clone());
    ctx.log
        .info(format!(
            "{label}: dumping database {database} on {host}:{port} with {tool}"
        ))
        .await;
    let (size, sha256) = stream_stdout(
        command,
        PG_DUMP,
        &secrets,
        HashingWriter::new(watched),
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
        .info(format!("{label}: dumped database {database} ({size} bytes)"))
        .await;
    Ok(Artifact {
        file: ARTIFACT.into(),
        size,
        sha256,
        tool: Some(tool),
        details: serde_json::json!({
            "database": database,
            "host": host,
            "port": port,
            "format": "custom",
        }),
    })
}

/// Restores a `pg_dump -Fc` artifact into the database at `url` with `pg_restore --clean
/// --if-exists --single-transaction --exit-on-error`: every object of the dump is dropped and
/// recreated in one transaction, so the database ends as it was in the backup or — when
/// anything fails — as it was before. (Objects created after the backup that the dump does not
/// know are left in place.)
pub async fn restore(
    url: &str,
    password: Option<&SecretSource>,
    artifact: &Path,
    ctx: &Context<'_>,
) -> Result<(), DriverError> {
    let label = label(ctx);
    let server = Server::parse(url, password).map_err(|why| DriverError::Failed(format!("{label}: {why}")))?;
    let tool = tool_version(PG_RESTORE).await.map_err(|e| {
        DriverError::Failed(format!(
            "{label}: {PG_RESTORE} cannot be run (is the PostgreSQL client installed?): {e}"
        ))
    })?;
    let mut env: Vec<(String, String)> = ctx.tool_env.to_vec();
    env.extend([
        ("PGCONNECT_TIMEOUT".to_string(), CONNECT_TIMEOUT_SECONDS.to_string()),
        ("PGAPPNAME".to_string(), "steward-restore".to_string()),
    ]);
    env.extend(server.password.iter().map(|p| ("PGPASSWORD".to_string(), p.clone())));
    let program = Program {
        command: [
            PG_RESTORE,
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-password",
            "--dbname",
            url,
        ]
        .into_iter()
        .map(str::to_string)
        .chain([artifact.display().to_string()])
        .collect(),
        workdir: None,
        env,
        timeout: RESTORE_TIMEOUT,
        grace: ctx.grace,
        stdin: None,
    };
    ctx.log
        .info(format!(
            "{label}: restoring database {} on {}:{} with {tool}",
            server.database, server.host, server.port
        ))
        .await;
    let secrets: Vec<String> = server.password.into_iter().collect();
    let (ended, last) = run_tool(&program, &secrets, ctx).await;
    restore_result(
        ended,
        last,
        &label,
        PG_RESTORE,
        RESTORE_TIMEOUT,
        " (the restore ran in one transaction: the database is as it was before)",
    )?;
    ctx.log
        .info(format!("{label}: restored database {}", server.database))
        .await;
    Ok(())
}

/// What a `postgres://` URL names, checked: no password in it (it would show in `/proc`).
struct Server {
    host: String,
    port: u16,
    database: String,
    /// The configured secret, read.
    password: Option<String>,
}

impl Server {
    fn parse(url: &str, password: Option<&SecretSource>) -> Result<Server, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("the URL is not a valid postgres:// URL: {e}"))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "the URL must start with postgres:// (it starts with {}://)",
                parsed.scheme()
            ));
        }
        if parsed.password().is_some() || parsed.query_pairs().any(|(key, _)| key == "password") {
            return Err(
                "the URL contains a password; give it as the resource's `password` (from an environment variable or a file) instead"
                    .into(),
            );
        }
        let password = password
            .map(|source| source.read().map_err(|why| format!("the password: {why}")))
            .transpose()?;
        Ok(Server {
            host: parsed.host_str().unwrap_or("localhost").to_string(),
            port: parsed.port().unwrap_or(5432),
            database: percent_encoding::percent_decode_str(parsed.path().trim_start_matches('/'))
                .decode_utf8_lossy()
                .into_owned(),
            password,
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
            postgres::{TempDatabase, available, psql},
            skip_or_fail,
        },
    };

    #[tokio::test]
    async fn a_database_is_dumped_in_custom_format_and_restores() {
        if !available().await {
            return;
        }
        let source = TempDatabase::create().await;
        psql(
            &source.url,
            "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2));
             INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 5000) g;
             CREATE INDEX items_name ON items (name);",
        )
        .await
        .unwrap();

        let harness = Harness::new();
        let started = Instant::now();
        let artifact = backup(&source.url, None, harness.out.path(), &harness.ctx())
            .await
            .unwrap();
        eprintln!("pg_dump of 5000 rows took {:?}", started.elapsed());
        assert!(harness.progress_max() > 0);
        let path = harness.out.path().join(&artifact.file);
        assert_eq!(artifact.file, Path::new("database.dump"));
        assert_eq!(
            sha256_of(&path).await.unwrap(),
            (artifact.size, artifact.sha256.clone())
        );
        assert!(
            artifact
                .tool
                .as_deref()
                .is_some_and(|t| t.starts_with("pg_dump (PostgreSQL)")),
            "{artifact:?}"
        );
        assert_eq!(artifact.details["database"], source.name.as_str());

        let listing = tokio::process::Command::new("pg_restore")
            .arg("--list")
            .arg(&path)
            .output()
            .await
            .unwrap();
        assert!(listing.status.success(), "{listing:?}");
        let listing = String::from_utf8_lossy(&listing.stdout);
        assert!(listing.contains("TABLE public items"), "{listing}");
        assert!(listing.contains("INDEX public items_name"), "{listing}");

        let copy = TempDatabase::create().await;
        restore(&copy.url, None, &path, &harness.ctx()).await.unwrap();
        assert_eq!(
            psql(&copy.url, "SELECT count(*), sum(price) FROM items").await.unwrap(),
            "5000|15628125.00"
        );
        let lines = harness.lines().await;
        assert!(format!("{lines:?}").contains("dumped database"), "{lines:?}");
    }

    #[tokio::test]
    async fn a_restore_brings_back_the_backed_up_state_or_changes_nothing() {
        if !available().await {
            return;
        }
        let db = TempDatabase::create().await;
        let state = "SELECT count(*), sum(price), count(*) FILTER (WHERE name LIKE 'changed%') FROM items";
        psql(
            &db.url,
            "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2));
             INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 1000) g;",
        )
        .await
        .unwrap();
        let harness = Harness::new();
        let artifact = backup(&db.url, None, harness.out.path(), &harness.ctx()).await.unwrap();
        let path = harness.out.path().join(&artifact.file);
        let backed_up = psql(&db.url, state).await.unwrap();

        // Added, modified, deleted after the backup.
        psql(
            &db.url,
            "UPDATE items SET name = 'changed ' || id WHERE id <= 10;
             DELETE FROM items WHERE id > 900;
             INSERT INTO items SELECT g, 'new ' || g, 1 FROM generate_series(5001, 5100) g;",
        )
        .await
        .unwrap();
        let changed = psql(&db.url, state).await.unwrap();
        assert_ne!(changed, backed_up);
        restore(&db.url, None, &path, &harness.ctx()).await.unwrap();
        assert_eq!(psql(&db.url, state).await.unwrap(), backed_up);

        // A damaged dump: refused by pg_restore, and the database is untouched.
        psql(&db.url, "DELETE FROM items WHERE id = 1").await.unwrap();
        let before = psql(&db.url, state).await.unwrap();
        let damaged = harness.scratch.path().join("damaged.dump");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
        let error = restore(&db.url, None, &damaged, &harness.ctx())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("pg_restore exited with status 1"), "{error}");
        assert!(error.contains("the database is as it was before"), "{error}");
        assert_eq!(psql(&db.url, state).await.unwrap(), before);
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_with_pg_dumps_message_and_no_password() {
        if tool_version(PG_DUMP).await.is_err() {
            skip_or_fail("pg_dump cannot be run");
            return;
        }
        let harness = Harness::new();
        let secret = harness.scratch.path().join("password");
        std::fs::write(&secret, "pa55-w0rd\n").unwrap();
        let error = backup(
            "postgres://postgres@127.0.0.1:1/test",
            Some(&SecretSource::File(secret)),
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("resource \"main\" of staging: pg_dump exited with status 1: "),
            "{error}"
        );
        assert!(error.contains("port 1 failed"), "{error}");
        let lines = harness.lines().await;
        assert!(
            !error.contains("pa55") && !format!("{lines:?}").contains("pa55"),
            "{error} {lines:?}"
        );
    }

    #[tokio::test]
    async fn a_password_in_the_url_is_refused_without_being_repeated() {
        let harness = Harness::new();
        let error = backup(
            "postgres://postgres:hunter2@127.0.0.1:5432/test",
            None,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.contains("the URL contains a password"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");

        let error = backup(
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&password=hunter2",
            None,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.contains("the URL contains a password"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
