//! The `postgres` driver: a PostgreSQL database dumped with `pg_dump -Fc -Z0` into
//! `database.dump`.
//!
//! The custom format is what `pg_restore` reads (selective and parallel restores included), so
//! the dump goes to the artifact as it is: pg_dump's standard output is streamed into the file
//! and hashed on the way, never held in memory. It is not compressed (`-Z0`): the repository
//! compresses what it stores, and an uncompressed dump deduplicates against last night's where a
//! compressed one differs from its first changed row on.
//!
//! **A restore leaves the database exactly as the backup had it**, objects created after the
//! backup included. `pg_restore --clean` drops only what the dump contains, so a table created
//! after the backup would survive; instead every schema of the database is dropped
//! (`DROP SCHEMA … CASCADE`: a schema's owner may drop it with everything in it, whoever owns
//! the objects), `public` is recreated as a new database has it, and the dump is applied — all
//! in **one transaction** of one `psql` session fed by `pg_restore --file=-`. `COMMIT` is sent
//! only once pg_restore has written the whole dump; a failure anywhere ends the session without
//! it and PostgreSQL rolls everything back, so the database ends as in the backup or as it was.
//! (Swapping in a database restored beside the old one was the other candidate: it needs
//! CREATEDB, no connection to the old database, and loses what `pg_dump` does not carry —
//! the database's owner, grants and settings.) The method needs CREATE on the database and
//! ownership of every schema in it; [`check_restore_privileges`] refuses a restore without them
//! when it is requested, before maintenance.
//!
//! The password never appears in pg_dump's arguments (which every local user can read in
//! `/proc`): the URL must not contain one, and the configured secret is handed over in
//! `PGPASSWORD`. `--no-password` makes a missing or wrong password an error instead of a prompt
//! that would hang the job.

use std::{path::Path, time::Duration};

use super::{
    Artifact, Context, DriverError, HashingWriter, Purpose,
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
        // Uncompressed: the repository compresses, and an uncompressed dump deduplicates night
        // to night where a compressed one differs from the first change on.
        .args(["--format=custom", "--compress=0", "--no-password", "--dbname"])
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

/// Empties the database before the dump is applied, inside the restore's transaction: drops
/// every schema but the system ones (with everything in them, extensions included), then
/// recreates `public` as a new database has it — the owner it had (on PostgreSQL 15
/// `pg_database_owner`), USAGE (before 15 also CREATE) for everyone, the standard comment. A
/// dump never creates `public` (pg_dump assumes it exists) and writes its privileges and
/// comment as changes from that default, so this is the state the dump expects.
const CLEAR_DATABASE: &str = r#"DO $steward$
DECLARE
    public_owner text := (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public');
    schema_name name;
BEGIN
    FOR schema_name IN
        SELECT nspname FROM pg_namespace
        WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'
    LOOP
        -- IF EXISTS: a schema an extension created goes with the extension.
        EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', schema_name);
    END LOOP;
    IF public_owner IS NULL THEN
        public_owner := CASE WHEN current_setting('server_version_num')::int >= 150000
                             THEN 'pg_database_owner' ELSE quote_ident(current_user) END;
    END IF;
    EXECUTE format('CREATE SCHEMA public AUTHORIZATION %s', public_owner);
    IF current_setting('server_version_num')::int >= 150000 THEN
        GRANT USAGE ON SCHEMA public TO PUBLIC;
    ELSE
        GRANT USAGE, CREATE ON SCHEMA public TO PUBLIC;
    END IF;
    COMMENT ON SCHEMA public IS 'standard public schema';
END
$steward$"#;

/// The restore's pipeline. pg_restore writes the dump as SQL into one psql session that has
/// already begun the transaction and emptied the database; `COMMIT` follows only when
/// pg_restore succeeded. psql exits 0 when its input just ends (the transaction then rolls
/// back), so pg_restore's failure is told by a marker file; its messages are kept aside and
/// shown after psql's, so that the last line is pg_restore's own reason when it failed (and
/// psql's when psql did). Arguments: `$1` the dump, `$2` the URL, `$3` where pg_restore's
/// messages go, `$4` the marker, `$5` the statements that empty the database.
const RESTORE_SCRIPT: &str = r#"
{ if pg_restore --no-owner --file=- -- "$1" 2>"$3"; then echo 'COMMIT;'; else : > "$4"; fi; } |
    psql --no-psqlrc --quiet --no-password --set=ON_ERROR_STOP=1 --output=/dev/null \
        --command='SET client_min_messages = warning' --command='BEGIN' --command="$5" --file=- --dbname="$2"
status=$?
if [ "$status" -ne 0 ]; then exit "$status"; fi
cat -- "$3" >&2
if [ -e "$4" ]; then exit 1; fi
"#;

/// Restores a `pg_dump -Fc` artifact into the database at `url`, in one transaction: every
/// schema dropped, `public` recreated, the dump applied (see the module's documentation). The
/// database ends as it was in the backup — nothing created after it survives — or, when
/// anything fails, as it was before.
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
    let server = Server::parse(url, password).map_err(|why| DriverError::Failed(format!("{label}: {why}")))?;
    let tool = tool_version(PG_RESTORE).await.map_err(|e| {
        DriverError::Failed(format!(
            "{label}: {PG_RESTORE} cannot be run (is the PostgreSQL client installed?): {e}"
        ))
    })?;
    tool_version(PSQL).await.map_err(|e| {
        DriverError::Failed(format!(
            "{label}: {PSQL} cannot be run (is the PostgreSQL client installed?): {e}"
        ))
    })?;
    let mut env: Vec<(String, String)> = ctx.tool_env.to_vec();
    env.extend([
        ("PGCONNECT_TIMEOUT".to_string(), CONNECT_TIMEOUT_SECONDS.to_string()),
        ("PGAPPNAME".to_string(), "steward-restore".to_string()),
    ]);
    env.extend(server.password.iter().map(|p| ("PGPASSWORD".to_string(), p.clone())));
    let messages = ctx.scratch.join("pg_restore.messages");
    let marker = ctx.scratch.join("pg_restore.failed");
    let program = Program {
        command: vec![
            "sh".to_string(),
            "-c".to_string(),
            RESTORE_SCRIPT.to_string(),
            "steward-restore".to_string(),
            artifact.display().to_string(),
            url.to_string(),
            messages.display().to_string(),
            marker.display().to_string(),
            CLEAR_DATABASE.to_string(),
        ],
        workdir: None,
        env,
        timeout: RESTORE_TIMEOUT,
        grace: ctx.grace,
        stdin: None,
    };
    ctx.log
        .info(format!(
            "{label}: restoring database {} on {}:{} with {tool} in one transaction: every schema is dropped and the backup's recreated",
            server.database, server.host, server.port
        ))
        .await;
    let secrets: Vec<String> = server.password.into_iter().collect();
    let (ended, last) = run_tool(&program, &secrets, ctx).await;
    restore_result(
        ended,
        last,
        &label,
        "the restore (pg_restore into psql)",
        RESTORE_TIMEOUT,
        match purpose {
            Purpose::Restore => " (the restore ran in one transaction: the database is as it was before)",
            Purpose::TestRestore => " (in the scratch database, which is dropped)",
        },
    )?;
    ctx.log
        .info(format!("{label}: restored database {}", server.database))
        .await;
    Ok(())
}

/// Test-restores a `pg_dump -Fc` artifact into the scratch database `scratch` on the server at
/// `url`, never touching the database `url` names: `scratch` is created (`CREATE DATABASE …
/// TEMPLATE template0` with that database's encoding and locale, which needs CREATEDB), the dump restored into it by [`restore`] — the
/// same pipeline a real restore runs, so what fails here fails there —, each of `verify_sql`
/// run in it (each must return a row), and `scratch` dropped afterwards, whatever happened.
/// Returns what was checked, in words; a failure carries pg_restore's or psql's own words.
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
    let server = Server::parse(url, password).map_err(failed)?;
    let mut scratch_url = url::Url::parse(url).map_err(|e| failed(format!("the URL is not valid: {e}")))?;
    scratch_url.set_path(scratch);
    let scratch_url = scratch_url.to_string();
    let account = url::Url::parse(url)
        .ok()
        .map(|u| u.username().to_string())
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "the account".to_string());
    let quoted = format!("\"{}\"", scratch.replace('"', "\"\""));

    // The live database's encoding and locale (read only), so that the dump loads as it would
    // into it; the server's defaults when they cannot be read.
    let literal = |value: &str| format!("'{}'", value.replace('\'', "''"));
    let options = match admin(url, &server, &[DATABASE_OPTIONS_QUERY], ctx).await {
        Ok(answer) => match answer.trim().split('|').collect::<Vec<_>>()[..] {
            [encoding, collate, ctype] => format!(
                " ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                literal(encoding),
                literal(collate),
                literal(ctype)
            ),
            _ => String::new(),
        },
        Err(_) => String::new(),
    };
    // A leftover of this very job (a drop that failed) goes first: the name is the job's own.
    let drop = format!("DROP DATABASE IF EXISTS {quoted}");
    let create = format!("CREATE DATABASE {quoted} TEMPLATE template0{options}");
    if let Err(why) = admin(url, &server, &[&drop, &create], ctx).await {
        if ctx.stop.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        if why.contains("permission denied to create database") {
            return Err(failed(format!(
                "the test restore needs CREATEDB: {account} may not create the scratch database {scratch} ({why})"
            )));
        }
        return Err(failed(format!("creating the scratch database {scratch} failed: {why}")));
    }
    ctx.log
        .info(format!(
            "{label}: test restore into the scratch database {scratch} on {}:{} (the database {} is not touched)",
            server.host, server.port, server.database
        ))
        .await;
    let checked = match restore_and_query(&scratch_url, password, verify_sql, artifact, &server, ctx).await {
        Err(DriverError::Failed(_)) if ctx.stop.is_cancelled() => Err(DriverError::Cancelled),
        other => other,
    };
    // Dropped even when the job was told to stop (its own timeout still applies).
    let never = tokio_util::sync::CancellationToken::new();
    let dropped = match run_psql(url, &server, &[&format!("{drop} WITH (FORCE)")], ctx, &never).await {
        // Before PostgreSQL 13 there is no FORCE; the restore's sessions have ended anyway.
        Err(why) if why.contains("syntax error") => run_psql(url, &server, &[&drop], ctx, &never).await,
        other => other,
    };
    match dropped {
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

/// The test restore proper: [`restore`] into the scratch database, then what it holds and the
/// verify queries.
async fn restore_and_query(
    scratch_url: &str,
    password: Option<&SecretSource>,
    verify_sql: &[String],
    artifact: &Path,
    server: &Server,
    ctx: &Context<'_>,
) -> Result<String, DriverError> {
    let label = label(ctx);
    restore_for(scratch_url, password, artifact, ctx, Purpose::TestRestore).await?;
    let tables = admin(scratch_url, server, &[TABLES_QUERY], ctx)
        .await
        .map_err(|why| DriverError::Failed(format!("{label}: counting the restored tables failed: {why}")))?;
    let mut checked = format!("restored into a scratch database ({} tables)", tables.trim());
    for (n, query) in verify_sql.iter().enumerate() {
        if ctx.stop.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        let answer = admin(scratch_url, server, &[query], ctx)
            .await
            .map_err(|why| DriverError::Failed(format!("{label}: verify_sql query {} failed: {why}", n + 1)))?;
        let rows = answer.lines().filter(|line| !line.is_empty()).count();
        if rows == 0 {
            return Err(DriverError::Failed(format!(
                "{label}: verify_sql query {} returned no rows: {query}",
                n + 1
            )));
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

/// The database's encoding, collation and character classification.
const DATABASE_OPTIONS_QUERY: &str = "SELECT pg_encoding_to_char(encoding), datcollate, datctype \
     FROM pg_database WHERE datname = current_database()";

/// Tables (plain and partitioned) outside the system schemas.
const TABLES_QUERY: &str = "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'";

/// How long one statement of a test restore's own (create, drop, a verify query) may take.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Runs `statements` with psql on `url`, each on its own (outside a transaction, as `CREATE
/// DATABASE` must be), and returns the answer unaligned, without headers. Stops with the job.
/// `Err` is psql's message, without the password.
async fn admin(url: &str, server: &Server, statements: &[&str], ctx: &Context<'_>) -> Result<String, String> {
    run_psql(url, server, statements, ctx, ctx.stop).await
}

/// [`admin`], stopped by `stop` only: the scratch database's drop must run after a stop too.
async fn run_psql(
    url: &str,
    server: &Server,
    statements: &[&str],
    ctx: &Context<'_>,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<String, String> {
    let mut command = tool_command(PSQL);
    command.envs(ctx.tool_env.iter().cloned()).args([
        "--no-psqlrc",
        "--no-password",
        "--quiet",
        "--tuples-only",
        "--no-align",
        "--set=ON_ERROR_STOP=1",
    ]);
    for statement in statements {
        command.arg("--command").arg(statement);
    }
    command
        .arg("--dbname")
        .arg(url)
        .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECONDS)
        .env("PGAPPNAME", "steward-verify");
    if let Some(password) = &server.password {
        command.env("PGPASSWORD", password);
    }
    let mask = |text: &str| match &server.password {
        Some(password) if !password.is_empty() => text.replace(password.as_str(), "********"),
        _ => text.to_string(),
    };
    // The child is killed when this future is dropped (a stop, the timeout).
    let output = tokio::select! {
        output = tokio::time::timeout(STATEMENT_TIMEOUT, command.output()) => output
            .map_err(|_| format!("{PSQL} did not finish within {} minutes", STATEMENT_TIMEOUT.as_secs() / 60))?
            .map_err(|e| format!("{PSQL} cannot be run: {e}"))?,
        () = stop.cancelled() => return Err("stopped".to_string()),
    };
    if output.status.success() {
        Ok(mask(&String::from_utf8_lossy(&output.stdout)))
    } else {
        Err(mask(String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// Whether the account at `url` may restore with this driver's method: CREATE on the database
/// (to recreate its schemas) and ownership — or membership in the owning role — of every
/// schema in it (to drop them). A superuser has both. `Err` names what is missing, or why it
/// could not be found out; it never contains the password.
pub async fn check_restore_privileges(url: &str, password: Option<&SecretSource>) -> Result<(), String> {
    let server = Server::parse(url, password)?;
    let mut command = tool_command(PSQL);
    command
        .args([
            "--no-psqlrc",
            "--no-password",
            "--tuples-only",
            "--no-align",
            "--field-separator=\u{1f}",
            "--set=ON_ERROR_STOP=1",
            "--command",
            PRIVILEGES_QUERY,
            "--dbname",
            url,
        ])
        .env("PGCONNECT_TIMEOUT", CHECK_TIMEOUT.as_secs().to_string())
        .env("PGAPPNAME", "steward-restore-check");
    if let Some(password) = &server.password {
        command.env("PGPASSWORD", password);
    }
    let mask = |text: &str| match &server.password {
        Some(password) if !password.is_empty() => text.replace(password.as_str(), "********"),
        _ => text.to_string(),
    };
    let output = tokio::time::timeout(CHECK_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            format!(
                "the restore's privileges could not be checked: {} did not answer within {} s",
                server.database,
                CHECK_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("the restore's privileges could not be checked: {PSQL} cannot be run: {e}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "the restore's privileges could not be checked: {}",
            mask(said.trim())
        ));
    }
    let answer = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = answer.trim_end_matches('\n').split('\u{1f}').collect();
    let [user, can_create, not_owned] = fields[..] else {
        return Err(format!(
            "the restore's privileges could not be checked: unexpected answer from {PSQL}"
        ));
    };
    let mut missing = Vec::new();
    if can_create != "t" {
        missing.push(format!(
            "CREATE on database {} (the restore recreates the backup's schemas)",
            server.database
        ));
    }
    if !not_owned.is_empty() {
        missing.push(format!(
            "ownership of schema {not_owned} (the restore drops every schema, so that nothing made after the backup survives; grant the account the owning role, or restore as the owner)"
        ));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the account {user} lacks what a restore needs: {}",
            missing.join("; ")
        ))
    }
}

const PSQL: &str = "psql";

/// How long the privilege check waits for the server (it runs while a person waits).
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// The account, whether it may CREATE in the database, and the schemas it may not drop
/// (`pg_has_role(…, 'USAGE')`: owner or a member inheriting the owner's rights, as `DROP
/// SCHEMA` checks it; a superuser passes both).
const PRIVILEGES_QUERY: &str = "SELECT current_user, has_database_privilege(current_database(), 'CREATE'), \
     coalesce((SELECT string_agg(format('%I (owned by %s)', nspname, nspowner::regrole), ', ' ORDER BY nspname) \
     FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' \
     AND NOT pg_has_role(nspowner, 'USAGE')), '')";

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
            postgres::{TempDatabase, TempRole, available, data_dump, psql, schema_dump},
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
        assert!(
            error.contains("the restore (pg_restore into psql) exited with status 1: pg_restore: error:"),
            "{error}"
        );
        assert!(error.contains("the database is as it was before"), "{error}");
        assert_eq!(psql(&db.url, state).await.unwrap(), before);
    }

    /// One object of every kind, made by the database's owner (not a superuser, as a real
    /// application's account).
    const BACKED_UP_SCHEMA: &str = "
        CREATE TYPE mood AS ENUM ('calm', 'busy');
        CREATE TYPE point2 AS (x integer, y integer);
        CREATE DOMAIN price AS numeric(10,2) CHECK (VALUE >= 0);
        CREATE SEQUENCE ticket START 100;
        CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price price, mood mood DEFAULT 'calm',
                            ticket integer DEFAULT nextval('ticket'));
        INSERT INTO items (name, price) SELECT 'item ' || g, g * 1.25 FROM generate_series(1, 200) g;
        CREATE INDEX items_name ON items (name);
        CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 10;
        CREATE MATERIALIZED VIEW totals AS SELECT mood, count(*) AS n, sum(price) AS total FROM items GROUP BY mood;
        CREATE FUNCTION double_it(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT x * 2';
        CREATE PROCEDURE reprice(factor numeric) LANGUAGE sql AS 'UPDATE items SET price = price * factor';
        CREATE TABLE audit (item integer, at_ticket integer);
        CREATE FUNCTION log_item() RETURNS trigger LANGUAGE plpgsql AS
            'BEGIN INSERT INTO audit VALUES (NEW.id, NEW.ticket); RETURN NEW; END';
        CREATE TRIGGER items_log AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION log_item();
        CREATE SCHEMA billing;
        CREATE TABLE billing.invoices (id integer PRIMARY KEY, item integer REFERENCES public.items (id));
        INSERT INTO billing.invoices SELECT g, g FROM generate_series(1, 20) g;
        GRANT SELECT ON cheap TO PUBLIC;
        COMMENT ON TABLE items IS 'what we sell';";

    /// After the backup: objects of every kind created, altered and dropped, rows changed.
    const CHANGED_AFTER_THE_BACKUP: &str = "
        CREATE TABLE newer (id integer);
        INSERT INTO newer VALUES (1);
        CREATE VIEW newer_view AS SELECT 1 AS one;
        CREATE MATERIALIZED VIEW newer_totals AS SELECT count(*) FROM items;
        CREATE SEQUENCE newer_seq;
        CREATE FUNCTION newer_fn() RETURNS integer LANGUAGE sql AS 'SELECT 1';
        CREATE PROCEDURE newer_proc() LANGUAGE sql AS 'SELECT 1';
        CREATE TYPE newer_type AS ENUM ('x');
        CREATE SCHEMA newer_schema;
        CREATE TABLE newer_schema.t (x integer);
        CREATE FUNCTION newer_trigger_fn() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
        CREATE TRIGGER newer_trigger BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION newer_trigger_fn();
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        ALTER TYPE mood ADD VALUE 'angry';
        ALTER TABLE items ADD COLUMN colour text, ALTER COLUMN ticket SET DEFAULT 0;
        CREATE OR REPLACE VIEW cheap AS SELECT id, name, price FROM items WHERE price < 5;
        CREATE OR REPLACE FUNCTION double_it(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT x * 3';
        ALTER SEQUENCE ticket RESTART 5000;
        COMMENT ON TABLE items IS 'changed';
        REVOKE SELECT ON cheap FROM PUBLIC;
        DROP MATERIALIZED VIEW totals;
        DROP PROCEDURE reprice(numeric);
        DROP TRIGGER items_log ON items;
        DROP SCHEMA billing CASCADE;
        DROP DOMAIN price CASCADE;
        UPDATE items SET name = 'changed' WHERE id <= 10;
        DELETE FROM items WHERE id > 150;
        INSERT INTO items (name) VALUES ('new');
        REFRESH MATERIALIZED VIEW newer_totals;";

    #[tokio::test]
    async fn a_restore_leaves_exactly_what_the_backup_holds_objects_made_after_it_included() {
        if !available().await {
            return;
        }
        let owner = TempRole::create("").await;
        let db = TempDatabase::create().await;
        psql(&db.url, &format!("ALTER DATABASE {} OWNER TO {}", db.name, owner.name))
            .await
            .unwrap();
        let url = owner.url(&db);
        psql(&url, BACKED_UP_SCHEMA).await.unwrap();
        let harness = Harness::new();
        let artifact = backup(&url, None, harness.out.path(), &harness.ctx()).await.unwrap();
        let path = harness.out.path().join(&artifact.file);
        let (schema, data) = (schema_dump(&db.url).await, data_dump(&db.url).await);
        let totals = "SELECT string_agg(mood || '=' || n || '/' || total, ',' ORDER BY mood) FROM totals";
        let backed_up_totals = psql(&url, totals).await.unwrap();

        psql(&url, CHANGED_AFTER_THE_BACKUP).await.unwrap();
        assert_ne!(schema_dump(&db.url).await, schema);
        assert_ne!(data_dump(&db.url).await, data);

        check_restore_privileges(&url, None).await.unwrap();
        restore(&url, None, &path, &harness.ctx()).await.unwrap();
        let restored = schema_dump(&db.url).await;
        assert!(
            !restored.contains("newer") && !restored.contains("pg_trgm"),
            "{restored}"
        );
        assert_eq!(restored, schema);
        assert_eq!(data_dump(&db.url).await, data);
        assert_eq!(psql(&url, totals).await.unwrap(), backed_up_totals);
        // The sequences go on from where they were, the trigger fires again.
        psql(&url, "INSERT INTO items (name) VALUES ('after')").await.unwrap();
        assert_eq!(
            psql(&url, "SELECT item, at_ticket FROM audit").await.unwrap(),
            "201|300"
        );

        // Restored a second time: the same again (nothing left over by the first).
        restore(&url, None, &path, &harness.ctx()).await.unwrap();
        assert_eq!(schema_dump(&db.url).await, schema);
        assert_eq!(data_dump(&db.url).await, data);
        let lines = format!("{:?}", harness.lines().await);
        assert!(lines.contains("every schema is dropped"), "{lines}");
    }

    #[tokio::test]
    async fn a_restore_that_fails_after_the_drops_changes_nothing() {
        if !available().await {
            return;
        }
        let owner = TempRole::create("").await;
        let db = TempDatabase::create().await;
        // An extension only a superuser may create: the owner's restore drops every schema,
        // loads most of the dump, and fails at `CREATE EXTENSION`.
        psql(
            &db.url,
            &format!(
                "ALTER DATABASE {} OWNER TO {}; CREATE EXTENSION pageinspect;",
                db.name, owner.name
            ),
        )
        .await
        .unwrap();
        let url = owner.url(&db);
        psql(&url, BACKED_UP_SCHEMA).await.unwrap();
        let harness = Harness::new();
        let artifact = backup(&url, None, harness.out.path(), &harness.ctx()).await.unwrap();
        let path = harness.out.path().join(&artifact.file);
        psql(&url, CHANGED_AFTER_THE_BACKUP).await.unwrap();
        let (schema, data) = (schema_dump(&db.url).await, data_dump(&db.url).await);

        let error = restore(&url, None, &path, &harness.ctx())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the restore (pg_restore into psql) exited with status 3")
                && error.contains("Must be superuser to create this extension"),
            "{error}"
        );
        assert!(error.contains("the database is as it was before"), "{error}");
        assert_eq!(schema_dump(&db.url).await, schema);
        assert_eq!(data_dump(&db.url).await, data);

        // A dump cut short: pg_restore fails half-way, psql never gets COMMIT.
        let damaged = harness.scratch.path().join("damaged.dump");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&damaged, &bytes[..bytes.len() * 3 / 4]).unwrap();
        let error = restore(&db.url, None, &damaged, &harness.ctx())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the restore (pg_restore into psql) exited with status 1: pg_restore: error:"),
            "{error}"
        );
        assert_eq!(schema_dump(&db.url).await, schema);
        assert_eq!(data_dump(&db.url).await, data);
    }

    #[tokio::test]
    async fn an_account_that_cannot_drop_every_schema_is_refused_naming_the_privilege() {
        if !available().await {
            return;
        }
        let owner = TempRole::create("").await;
        let stranger = TempRole::create("").await;
        let db = TempDatabase::create().await;
        psql(
            &db.url,
            &format!(
                "ALTER DATABASE {} OWNER TO {}; CREATE SCHEMA audit; CREATE TABLE audit.log (line text);",
                db.name, owner.name
            ),
        )
        .await
        .unwrap();

        // The database's owner, but `audit` belongs to another role.
        let refused = check_restore_privileges(&owner.url(&db), None).await.unwrap_err();
        assert_eq!(
            refused,
            format!(
                "the account {} lacks what a restore needs: ownership of schema audit (owned by postgres) \
                 (the restore drops every schema, so that nothing made after the backup survives; \
                 grant the account the owning role, or restore as the owner)",
                owner.name
            )
        );
        // An account that neither owns the database's schemas nor may create any.
        let refused = check_restore_privileges(&stranger.url(&db), None).await.unwrap_err();
        assert!(
            refused.contains(&format!(
                "CREATE on database {} (the restore recreates the backup's schemas)",
                db.name
            )),
            "{refused}"
        );
        assert!(
            refused.contains("ownership of schema audit (owned by postgres), public (owned by pg_database_owner)"),
            "{refused}"
        );
        // Once the schema is the owner's, the owner may restore; a superuser always may.
        psql(&db.url, &format!("ALTER SCHEMA audit OWNER TO {}", owner.name))
            .await
            .unwrap();
        check_restore_privileges(&owner.url(&db), None).await.unwrap();
        check_restore_privileges(&db.url, None).await.unwrap();

        // An unreachable server: the check says it could not check, without the password.
        let harness = Harness::new();
        let secret = harness.scratch.path().join("password");
        std::fs::write(&secret, "pa55-w0rd\n").unwrap();
        let error = check_restore_privileges(
            "postgres://postgres@127.0.0.1:1/test",
            Some(&SecretSource::File(secret)),
        )
        .await
        .unwrap_err();
        assert!(
            error.starts_with("the restore's privileges could not be checked: psql: error:"),
            "{error}"
        );
        assert!(!error.contains("pa55"), "{error}");
    }

    #[tokio::test]
    async fn a_test_restore_goes_into_a_scratch_database_that_is_dropped_whatever_happens() {
        if !available().await {
            return;
        }
        let owner = TempRole::create("").await;
        let db = TempDatabase::create().await;
        psql(
            &db.url,
            &format!(
                "ALTER DATABASE {} OWNER TO {}; CREATE TABLE items (id integer PRIMARY KEY);
                 INSERT INTO items VALUES (1), (2);",
                db.name, owner.name
            ),
        )
        .await
        .unwrap();
        let harness = Harness::new();
        let artifact = backup(&db.url, None, harness.out.path(), &harness.ctx()).await.unwrap();
        let path = harness.out.path().join(&artifact.file);
        let scratch = format!(
            "steward_verify_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let server = db.url.clone();
        let exists = |name: String| {
            let server = server.clone();
            async move {
                psql(
                    &server,
                    &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
                )
                .await
                .unwrap()
                    == "1"
            }
        };

        let checked = test_restore(
            &db.url,
            None,
            &["SELECT id FROM items WHERE id = 2".into()],
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

        // A verify query that finds nothing fails the test restore; the database still goes.
        let error = test_restore(
            &db.url,
            None,
            &["SELECT id FROM items WHERE id = 3".into()],
            &path,
            &scratch,
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.ends_with("verify_sql query 1 returned no rows: SELECT id FROM items WHERE id = 3"),
            "{error}"
        );
        assert!(!exists(scratch.clone()).await);

        // The database's owner without CREATEDB: the privilege is named.
        let error = test_restore(&owner.url(&db), None, &[], &path, &scratch, &harness.ctx())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!(
                "the test restore needs CREATEDB: {} may not create the scratch database {scratch}",
                owner.name
            )) && error.contains("permission denied to create database"),
            "{error}"
        );
        assert_eq!(psql(&db.url, "SELECT count(*) FROM items").await.unwrap(), "2");

        // The scratch database gets the live one's encoding and locale.
        let latin = {
            let name = format!("steward_drv_{}", uuid::Uuid::new_v4().simple());
            psql(
                &crate::drivers::testing::postgres::server_url(),
                &format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"),
            )
            .await
            .unwrap();
            let mut url = url::Url::parse(&db.url).unwrap();
            url.set_path(&name);
            TempDatabase {
                name,
                url: url.to_string(),
            }
        };
        psql(
            &latin.url,
            "CREATE TABLE names (name text); INSERT INTO names VALUES ('Müller');",
        )
        .await
        .unwrap();
        let artifact = backup(&latin.url, None, harness.out.path(), &harness.ctx())
            .await
            .unwrap();
        let latin_encoded = "SELECT 1 FROM pg_database WHERE datname = current_database() \
             AND pg_encoding_to_char(encoding) = 'LATIN1' AND datcollate = 'C'";
        let checked = test_restore(
            &latin.url,
            None,
            &[latin_encoded.into(), "SELECT 1 FROM names WHERE name = 'Müller'".into()],
            &harness.out.path().join(&artifact.file),
            &scratch,
            &harness.ctx(),
        )
        .await
        .unwrap();
        assert!(checked.ends_with("2 verify queries returned rows"), "{checked}");
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
