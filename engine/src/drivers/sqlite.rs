//! The `sqlite` driver: a consistent copy of a SQLite database that is in use, kept as the plain
//! database file `database.sqlite`; [`restore`] gives back the database file.
//!
//! Copying the file (`cp`) while an application writes to it can catch a half-written page or
//! miss what is still in the `-wal` file. SQLite's `VACUUM INTO` instead copies the database as
//! one read transaction sees it: a consistent snapshot, taken while writers go on (in WAL mode
//! they are not even blocked), written as a fresh compact file without free pages and with any
//! WAL content folded in. The source is opened read-only, so the driver cannot change it.
//!
//! The copy is written to the driver's scratch directory and moved into the output directory,
//! hashed on the way. It stays a plain SQLite file: the repository compresses it and stores only
//! the parts that changed since the last backup (a compressed copy would differ from one night
//! to the next almost everywhere). Backups taken before the repository hold
//! `database.sqlite.zst`, which [`restore`] still reads.
//!
//! Cancellation interrupts `VACUUM INTO` itself (through SQLite's progress handler), so a large
//! database does not hold a cancelled job.

use std::{
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
    time::Duration,
};

use sqlx::{
    ConnectOptions, Connection,
    sqlite::{SqliteConnectOptions, SqliteConnection},
};
use tokio_util::sync::CancellationToken;

use super::{Artifact, Context, DriverError};

/// The artifact's file name inside the output directory.
pub const ARTIFACT_NAME: &str = "database.sqlite";
/// How long the copy waits for a lock (a writer's checkpoint, an exclusive transaction).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// SQLite virtual-machine steps between two looks at the cancellation token.
const STEPS_PER_CHECK: i32 = 10_000;

/// Copies the database at `path` into `out_dir/database.sqlite`.
pub async fn backup(path: &Path, out_dir: &Path, ctx: &Context<'_>) -> Result<Artifact, DriverError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        DriverError::Failed(format!("sqlite database {}: {what}: {e}", path.display()))
    };
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(DriverError::Failed(format!(
                "sqlite database {} is not a file",
                path.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DriverError::Failed(format!(
                "sqlite database {} does not exist",
                path.display()
            )));
        }
        Err(e) => return Err(DriverError::io(format!("sqlite database {}", path.display()))(e)),
    }
    let copy = ctx.scratch.join("database.sqlite");
    let copy_name = copy
        .to_str()
        .ok_or_else(|| DriverError::Failed(format!("scratch path {} is not UTF-8", copy.display())))?
        .to_string();
    // VACUUM INTO refuses to overwrite a file.
    match tokio::fs::remove_file(&copy).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(DriverError::io(format!("removing {}", copy.display()))(e));
        }
        _ => {}
    }

    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT)
        .connect()
        .await
        .map_err(|e| failed("opening", &e))?;
    let copied = copy_into(&mut connection, &copy_name, ctx.stop).await;
    let _ = connection.close().await;
    let version = match copied {
        Ok(version) => version,
        Err(e) => {
            let _ = tokio::fs::remove_file(&copy).await;
            return Err(if ctx.stop.is_cancelled() {
                DriverError::Cancelled
            } else {
                failed("copying", &e)
            });
        }
    };
    let copy_size = tokio::fs::metadata(&copy)
        .await
        .map_err(DriverError::io(format!("reading {}", copy.display())))?
        .len();
    ctx.log
        .info(format!(
            "sqlite database {}: consistent copy of {copy_size} bytes taken with SQLite {version}",
            path.display()
        ))
        .await;

    let out = out_dir.join(ARTIFACT_NAME);
    let kept = async {
        tokio::fs::rename(&copy, &out)
            .await
            .map_err(DriverError::io(format!("moving the copy to {}", out.display())))?;
        (ctx.progress)(copy_size, Some(copy_size));
        super::sha256_of(&out)
            .await
            .map_err(DriverError::io(format!("reading {} back", out.display())))
    }
    .await;
    let _ = tokio::fs::remove_file(&copy).await;
    let (size, sha256) = match kept {
        Ok(done) => done,
        Err(e) => {
            let _ = tokio::fs::remove_file(&out).await;
            return Err(e);
        }
    };
    ctx.log
        .info(format!(
            "sqlite database {}: wrote {ARTIFACT_NAME}, {size} bytes",
            path.display()
        ))
        .await;
    Ok(Artifact {
        file: PathBuf::from(ARTIFACT_NAME),
        size,
        sha256,
        tool: Some(format!("SQLite {version}")),
        details: serde_json::json!({ "database_bytes": copy_size }),
    })
}

/// Runs `VACUUM INTO copy` on the source connection, interruptible by `stop`; returns SQLite's
/// version.
async fn copy_into(
    connection: &mut SqliteConnection,
    copy: &str,
    stop: &CancellationToken,
) -> Result<String, sqlx::Error> {
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut *connection)
        .await?;
    {
        let stop = stop.clone();
        let mut handle = connection.lock_handle().await?;
        // Returning false interrupts the running statement.
        handle.set_progress_handler(STEPS_PER_CHECK, move || !stop.is_cancelled());
    }
    sqlx::query("VACUUM INTO ?1")
        .bind(copy)
        .execute(&mut *connection)
        .await?;
    Ok(version)
}

/// Writes the database file `into` (replaced if it exists) from an artifact written by
/// [`backup`] — the plain file, or `database.sqlite.zst` of a backup taken before the
/// repository, decompressed. Blocking: call it from `spawn_blocking`, and only while nothing has
/// the database open — the restore job stops the application first.
pub fn restore(artifact: &Path, into: &Path) -> Result<(), DriverError> {
    let source = File::open(artifact).map_err(DriverError::io(format!("opening {}", artifact.display())))?;
    let mut source: Box<dyn Read> = if artifact.extension().is_some_and(|e| e == "zst") {
        Box::new(zstd::Decoder::new(source).map_err(DriverError::io(format!("reading {}", artifact.display())))?)
    } else {
        Box::new(source)
    };
    let writing = || DriverError::io(format!("writing {}", into.display()));
    let mut target = File::create(into).map_err(writing())?;
    io::copy(&mut source, &mut target).map_err(DriverError::io(format!(
        "restoring {} into {}",
        artifact.display(),
        into.display()
    )))?;
    target.sync_all().map_err(writing())
}

/// Test-restores an artifact written by [`backup`]: decompresses it into a file in
/// `ctx.scratch` (zstd's checksum verified), checks its size against the manifest's `details`
/// and runs `PRAGMA integrity_check` on it, then removes it. The live database is never opened.
/// Returns what was checked, in words.
pub async fn test_restore(
    artifact: &Path,
    details: &serde_json::Value,
    ctx: &Context<'_>,
) -> Result<String, DriverError> {
    let copy = ctx.scratch.join("database.sqlite");
    let checked = check_copy(artifact, &copy, details).await;
    let _ = tokio::fs::remove_file(&copy).await;
    checked.map_err(|why| DriverError::Failed(format!("sqlite database {}: {why}", ctx.resource)))
}

async fn check_copy(artifact: &Path, copy: &Path, details: &serde_json::Value) -> Result<String, String> {
    let (from, to) = (artifact.to_path_buf(), copy.to_path_buf());
    tokio::task::spawn_blocking(move || restore(&from, &to))
        .await
        .map_err(|e| format!("decompressing failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let size = tokio::fs::metadata(copy)
        .await
        .map_err(|e| format!("reading {}: {e}", copy.display()))?
        .len();
    if let Some(expected) = details.get("database_bytes").and_then(serde_json::Value::as_u64)
        && expected != size
    {
        return Err(format!(
            "the restored file has {size} bytes, the manifest says {expected}"
        ));
    }
    let mut connection = SqliteConnectOptions::new()
        .filename(copy)
        .read_only(true)
        .create_if_missing(false)
        .connect()
        .await
        .map_err(|e| format!("the restored file cannot be opened as a database: {e}"))?;
    let checked = async {
        let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut connection)
            .await?;
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            .fetch_one(&mut connection)
            .await?;
        Ok::<_, sqlx::Error>((problems, tables))
    }
    .await;
    let _ = connection.close().await;
    let (problems, tables) = checked.map_err(|e| format!("checking the restored file failed: {e}"))?;
    if problems != ["ok"] {
        return Err(format!("PRAGMA integrity_check found: {}", problems.join("; ")));
    }
    Ok(format!(
        "restored into a temporary file ({}, {tables} tables), PRAGMA integrity_check: ok",
        crate::text::human_bytes(size)
    ))
}

/// Replaces the database file `target` with the backed-up copy, atomically: the copy is
/// decompressed beside it and renamed over it, after its `-wal` and `-shm` files (which belong
/// to the old database and would be replayed into the new one) were removed. Call it only while
/// nothing has the database open: the restore job puts the environment in maintenance first.
pub async fn restore_in_place(artifact: &Path, target: &Path, ctx: &Context<'_>) -> Result<(), DriverError> {
    let name = target
        .file_name()
        .ok_or_else(|| DriverError::Failed(format!("sqlite database {}: not a file name", target.display())))?;
    let fresh = target.with_file_name(format!(".{}.steward-restore-{}", name.to_string_lossy(), ctx.backup_id));
    ctx.log
        .info(format!(
            "sqlite database {}: writing the backed-up copy beside it",
            target.display()
        ))
        .await;
    let (from, to) = (artifact.to_path_buf(), fresh.clone());
    tokio::task::spawn_blocking(move || restore(&from, &to).inspect_err(|_| drop(std::fs::remove_file(&to))))
        .await
        .map_err(|e| DriverError::Failed(format!("sqlite database {}: restoring failed: {e}", target.display())))??;
    for suffix in ["-wal", "-shm"] {
        let side = target.with_file_name(format!("{}{suffix}", name.to_string_lossy()));
        match tokio::fs::remove_file(&side).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let _ = tokio::fs::remove_file(&fresh).await;
                return Err(DriverError::io(format!("removing {}", side.display()))(e));
            }
        }
    }
    if let Err(e) = tokio::fs::rename(&fresh, target).await {
        let _ = tokio::fs::remove_file(&fresh).await;
        return Err(DriverError::io(format!(
            "moving the restored database into {}",
            target.display()
        ))(e));
    }
    ctx.log
        .info(format!("sqlite database {}: restored", target.display()))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{
        str::FromStr,
        sync::{
            Arc,
            atomic::{AtomicBool, AtomicI64, Ordering},
        },
    };

    use sqlx::sqlite::SqliteJournalMode;

    use super::*;
    use crate::{
        drivers::{sha256_of, testing::Harness},
        output::JobLog,
    };

    async fn backup_with(harness: &Harness, path: &Path) -> Result<Artifact, DriverError> {
        backup(path, harness.out.path(), &harness.ctx()).await
    }

    async fn open(path: &Path) -> SqliteConnection {
        SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .unwrap()
    }

    async fn count(connection: &mut SqliteConnection) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM item")
            .fetch_one(connection)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_being_written_is_copied_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let mut setup = open(&path).await;
        sqlx::query("CREATE TABLE item (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
            .execute(&mut setup)
            .await
            .unwrap();
        // Some megabytes, so that the copy takes a while next to the writer.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO item (payload) SELECT printf('%.400c row %d', 'x', i) FROM n",
        )
        .execute(&mut setup)
        .await
        .unwrap();

        // The writer: one row per transaction, as fast as it can, until told to stop.
        let stop_writing = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicI64::new(0));
        let writer = {
            let (path, stop_writing, written) = (path.clone(), stop_writing.clone(), written.clone());
            tokio::spawn(async move {
                let mut connection = open(&path).await;
                while !stop_writing.load(Ordering::Relaxed) {
                    sqlx::query("INSERT INTO item (payload) VALUES ('written during the backup')")
                        .execute(&mut connection)
                        .await
                        .unwrap();
                    written.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        while written.load(Ordering::Relaxed) < 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let before = count(&mut setup).await;
        let harness = Harness::new();
        let artifact = backup_with(&harness, &path).await.unwrap();
        let after = count(&mut setup).await;
        stop_writing.store(true, Ordering::Relaxed);
        writer.await.unwrap();
        assert!(after > before, "the writer kept writing during the backup");

        let artifact_path = harness.out.path().join(&artifact.file);
        assert_eq!(artifact.file, PathBuf::from(ARTIFACT_NAME));
        assert_eq!(
            sha256_of(&artifact_path).await.unwrap(),
            (artifact.size, artifact.sha256.clone())
        );
        assert!(
            artifact.tool.as_deref().unwrap_or("").starts_with("SQLite 3."),
            "{:?}",
            artifact.tool
        );
        assert!(
            !harness.scratch.path().join("database.sqlite").exists(),
            "scratch copy removed"
        );

        let restored = dir.path().join("restored.db");
        restore(&artifact_path, &restored).unwrap();
        let mut copy = SqliteConnectOptions::new().filename(&restored).connect().await.unwrap();
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut copy)
            .await
            .unwrap();
        assert_eq!(check, "ok");
        let rows = count(&mut copy).await;
        assert!((before..=after).contains(&rows), "{before} <= {rows} <= {after}");
        // A snapshot has no gaps: ids run 1..=rows.
        let max: i64 = sqlx::query_scalar("SELECT max(id) FROM item")
            .fetch_one(&mut copy)
            .await
            .unwrap();
        assert_eq!(max, rows);
    }

    #[tokio::test]
    async fn a_restore_in_place_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let mut db = open(&path).await;
        sqlx::query("CREATE TABLE item (id INTEGER PRIMARY KEY, body TEXT)")
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query("INSERT INTO item (body) VALUES ('a'), ('b'), ('c')")
            .execute(&mut db)
            .await
            .unwrap();
        let harness = Harness::new();
        let artifact = backup_with(&harness, &path).await.unwrap();
        // Changed after the backup.
        sqlx::query("DELETE FROM item WHERE id = 1; INSERT INTO item (body) VALUES ('new')")
            .execute(&mut db)
            .await
            .unwrap();
        assert_eq!(count(&mut db).await, 3);
        db.close().await.unwrap();

        restore_in_place(&harness.out.path().join(&artifact.file), &path, &harness.ctx())
            .await
            .unwrap();
        let mut db = open(&path).await;
        let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM item ORDER BY id")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(bodies, vec!["a", "b", "c"]);
        db.close().await.unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("steward"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[tokio::test]
    async fn a_compressed_copy_of_a_backup_taken_before_the_repository_still_restores() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let mut db = open(&path).await;
        sqlx::query("CREATE TABLE item (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO item (body) VALUES ('old')")
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
        let harness = Harness::new();
        let artifact = backup_with(&harness, &path).await.unwrap();
        assert_eq!(artifact.file, PathBuf::from(ARTIFACT_NAME));
        // What the driver wrote before the repository: the same copy, zstd-compressed.
        let plain = std::fs::read(harness.out.path().join(&artifact.file)).unwrap();
        let old = dir.path().join("database.sqlite.zst");
        std::fs::write(&old, zstd::encode_all(plain.as_slice(), 3).unwrap()).unwrap();

        let restored = dir.path().join("restored.db");
        restore(&old, &restored).unwrap();
        assert_eq!(std::fs::read(&restored).unwrap(), plain);
    }

    #[tokio::test]
    async fn a_missing_database_is_a_clear_error() {
        let harness = Harness::new();
        let error = backup_with(&harness, Path::new("/no/such/app.db")).await.unwrap_err();
        assert_eq!(error.to_string(), "sqlite database /no/such/app.db does not exist");
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "not a database, just some text that is long enough ".repeat(100)).unwrap();
        let harness = Harness::new();
        let error = backup_with(&harness, &path).await.unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("sqlite database {}", path.display())),
            "{error}"
        );
        assert!(error.contains("not a database"), "{error}");
        assert!(!harness.out.path().join(ARTIFACT_NAME).exists());
    }

    #[tokio::test]
    async fn a_cancelled_backup_is_interrupted_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let mut setup = open(&path).await;
        sqlx::query("CREATE TABLE item (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
            .execute(&mut setup)
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
             INSERT INTO item (payload) SELECT printf('%.100c', 'x') FROM n",
        )
        .execute(&mut setup)
        .await
        .unwrap();
        let harness = Harness::new();
        harness.stop.cancel();
        let (log, mut lines) = JobLog::channel();
        let ctx = Context {
            log: &log,
            ..harness.ctx()
        };
        let error = backup(&path, harness.out.path(), &ctx).await.unwrap_err();
        assert!(matches!(error, DriverError::Cancelled), "{error}");
        // Interrupted inside VACUUM INTO: no copy was announced or left behind.
        drop(log);
        while let Some((_, line)) = lines.recv().await {
            assert!(!line.contains("consistent copy"), "{line}");
        }
        assert!(!harness.scratch.path().join("database.sqlite").exists());
        assert!(!harness.out.path().join(ARTIFACT_NAME).exists());
    }
}
