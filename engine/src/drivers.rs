//! Drivers: how each kind of resource (a directory, a PostgreSQL or MySQL database, a SQLite
//! file, an operator's script, a remote system reached over HTTP) becomes one artifact of a
//! backup. A directory going into the repository is read there as a tree
//! ([`directory::select`] chooses what); the archive writer [`backup`] serves exports.
//!
//! A driver writes into a directory the storage gives it (a staging area; the storage publishes
//! the finished backup) and reports what it wrote as an [`Artifact`]: the file, its size and its
//! SHA-256, computed while writing ([`HashingWriter`]) so no artifact is read twice just to be
//! hashed. Tool output goes to the job log; cancellation arrives through [`Context::stop`].
//!
//! Each driver also restores ([`restore`], in place) and test-restores ([`test_restore`]: into
//! scratch — a temporary tree or file, a scratch database — through the same code, never
//! touching the live system).

use std::{
    io,
    path::{Path, PathBuf},
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use tokio_util::sync::CancellationToken;

use crate::{config::Resource, output::JobLog};

pub mod command;
pub mod directory;
pub mod http;
pub mod mysql;
pub mod postgres;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod testing;

/// What a driver needs while it works.
pub struct Context<'a> {
    pub environment: &'a str,
    pub resource: &'a str,
    pub backup_id: &'a str,
    pub description: &'a str,
    /// The job log: tool output and Steward's notes (secrets are masked by the log writer).
    pub log: &'a JobLog,
    /// Fired when the job is cancelled: stop promptly; the caller removes what was written.
    pub stop: &'a CancellationToken,
    /// Bytes written so far, and the expected total when known.
    pub progress: &'a (dyn Fn(u64, Option<u64>) + Send + Sync),
    /// Scratch space for the driver, removed by the caller afterwards.
    pub scratch: &'a Path,
    /// Variables every program a driver starts gets (the job id and worker, by which a
    /// restarted Steward finds and stops what a crash left running).
    pub tool_env: &'a [(String, String)],
    /// Between SIGTERM and SIGKILL when a tool is stopped (`jobs.cancel_grace_seconds`).
    pub grace: std::time::Duration,
}

/// What a driver wrote for the repository.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// One file in the output directory (a dump, an archive).
    File(Artifact),
    /// A script's output, kept as the tree it wrote in the output directory: the repository
    /// stores it file by file, so what did not change is not stored again.
    Tree(command::Tree),
}

/// Backs up one resource into `out_dir` for the repository: a `command` resource's output as
/// a tree, every other resource as [`backup`] writes it. (Directories are read in place by the
/// backup job and never come here.)
pub async fn backup_for_repository(
    resource: &Resource,
    out_dir: &Path,
    ctx: &Context<'_>,
) -> Result<Written, DriverError> {
    match resource {
        Resource::Command {
            backup,
            env,
            secret_env,
            timeout_seconds,
            ..
        } => command::backup_tree(backup, env, secret_env, *timeout_seconds, out_dir, ctx)
            .await
            .map(Written::Tree),
        _ => self::backup(resource, out_dir, ctx).await.map(Written::File),
    }
}

/// Backs up one resource into `out_dir` with its driver.
pub async fn backup(resource: &Resource, out_dir: &Path, ctx: &Context<'_>) -> Result<Artifact, DriverError> {
    match resource {
        Resource::Directory { path, include, exclude } => directory::backup(path, include, exclude, out_dir, ctx).await,
        Resource::Postgres { url, password, .. } => postgres::backup(url, password.as_ref(), out_dir, ctx).await,
        Resource::Mysql { url, password, .. } => mysql::backup(url, password.as_ref(), out_dir, ctx).await,
        Resource::Sqlite { path } => sqlite::backup(path, out_dir, ctx).await,
        Resource::Command {
            backup,
            env,
            secret_env,
            timeout_seconds,
            ..
        } => command::backup(backup, env, secret_env, *timeout_seconds, out_dir, ctx).await,
        Resource::Http {
            start_url,
            status_url,
            secret_header,
            poll_seconds,
            timeout_seconds,
            ..
        } => {
            http::backup(
                start_url,
                status_url,
                secret_header.as_ref(),
                *poll_seconds,
                *timeout_seconds,
                out_dir,
                ctx,
            )
            .await
        }
    }
}

/// What a driver produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// The file written, inside the output directory, e.g. `files.tar.zst`.
    pub file: PathBuf,
    pub size: u64,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// The external tool and its version, e.g. `pg_dump (PostgreSQL) 15.19`, when one was used.
    pub tool: Option<String>,
    /// Driver-specific facts for the manifest (e.g. what a remote system reported).
    pub details: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The tool's or the system's own message, as the operator needs to read it.
    #[error("{0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl DriverError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> DriverError {
        let context = context.into();
        move |source| DriverError::Io { context, source }
    }
}

/// Restores one resource from its artifact (a file of a published backup, read locally), in
/// place: the resource ends as it was when the backup was taken.
/// Why a database driver restores a dump: into the live database, or into a scratch one for a
/// test restore (only what a failure message says differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Restore,
    TestRestore,
}

pub async fn restore(resource: &Resource, artifact: &Path, ctx: &Context<'_>) -> Result<(), DriverError> {
    match resource {
        Resource::Directory { path, include, exclude } => {
            directory::restore_in_place(
                directory::TreeSource::Archive(artifact.to_path_buf()),
                path,
                include,
                exclude,
                ctx,
            )
            .await
        }
        Resource::Postgres { url, password, .. } => postgres::restore(url, password.as_ref(), artifact, ctx).await,
        Resource::Mysql { url, password, .. } => mysql::restore(url, password.as_ref(), artifact, ctx).await,
        Resource::Sqlite { path } => sqlite::restore_in_place(artifact, path, ctx).await,
        Resource::Command {
            restore,
            env,
            secret_env,
            timeout_seconds,
            ..
        } => command::restore(restore.as_deref(), env, secret_env, *timeout_seconds, artifact, ctx).await,
        Resource::Http {
            restore_url,
            status_url,
            secret_header,
            poll_seconds,
            timeout_seconds,
            ..
        } => {
            let restore_url = restore_url.as_deref().ok_or_else(|| {
                DriverError::Failed(format!(
                    "resource \"{}\" of {}: no restore_url is configured, so the remote system cannot be asked to restore",
                    ctx.resource, ctx.environment
                ))
            })?;
            http::restore(
                restore_url,
                status_url,
                secret_header.as_ref(),
                *poll_seconds,
                *timeout_seconds,
                artifact,
                ctx,
            )
            .await
        }
    }
}

/// What a test restore of one resource found (a failure is the `Err`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestRestored {
    /// Restored into scratch and checked: what was checked, in words.
    Checked(String),
    /// Not restored, and why.
    Skipped(String),
}

/// Restores one resource's artifact into scratch and checks it, never touching the live
/// system: `directory` — unpacked into a temporary tree and compared with the manifest;
/// `sqlite` — a temporary file and `PRAGMA integrity_check`; `postgres`, `mysql` — the scratch
/// database `scratch_database` on the same server, with the resource's `verify_sql`, dropped
/// afterwards; `command` — unpacked and given to the resource's `verify` script, if any; `http`
/// — skipped. `driver` and `details` are the manifest's; `resource` is the configuration, which
/// the database and command drivers need (the archive formats do not).
pub async fn test_restore(
    driver: &str,
    details: &serde_json::Value,
    resource: Option<&Resource>,
    artifact: &Path,
    scratch_database: &str,
    ctx: &Context<'_>,
) -> Result<TestRestored, DriverError> {
    let checked = match (driver, resource) {
        // A tree the repository restored into scratch (every blob checked as it was read).
        ("directory", _) if artifact.is_dir() => directory::check_tree(artifact, details, ctx).await?,
        ("directory", _) => directory::test_restore(artifact, details, ctx).await?,
        ("sqlite", _) => sqlite::test_restore(artifact, details, ctx).await?,
        ("http", _) => {
            return Ok(TestRestored::Skipped(
                "the remote system keeps and restores its own backup; it cannot be restored into scratch".into(),
            ));
        }
        (
            "postgres",
            Some(Resource::Postgres {
                url,
                password,
                verify_sql,
            }),
        ) => postgres::test_restore(url, password.as_ref(), verify_sql, artifact, scratch_database, ctx).await?,
        (
            "mysql",
            Some(Resource::Mysql {
                url,
                password,
                verify_sql,
            }),
        ) => mysql::test_restore(url, password.as_ref(), verify_sql, artifact, scratch_database, ctx).await?,
        (
            "command",
            Some(Resource::Command {
                verify,
                env,
                secret_env,
                timeout_seconds,
                ..
            }),
        ) => command::test_restore(verify.as_deref(), env, secret_env, *timeout_seconds, artifact, ctx).await?,
        (_, None) => {
            return Ok(TestRestored::Skipped(format!(
                "no longer configured, so there is no {driver} server or script to test-restore it with"
            )));
        }
        (_, Some(resource)) => {
            return Ok(TestRestored::Skipped(format!(
                "backed up with the {driver} driver, now configured with the {} driver",
                resource.driver()
            )));
        }
    };
    Ok(TestRestored::Checked(checked))
}

/// Whether the configured account may restore `resource` the way its driver restores: a
/// database restore drops what the database holds and recreates the backup's objects, which
/// needs privileges a backup does not. Asked when a restore is requested, before maintenance,
/// so that a restore that would fail for want of a privilege is refused instead. `Err` names
/// the missing privilege (or why it could not be checked); resources of other drivers pass.
pub async fn check_restore_privileges(resource: &Resource) -> Result<(), String> {
    match resource {
        Resource::Postgres { url, password, .. } => postgres::check_restore_privileges(url, password.as_ref()).await,
        Resource::Mysql { url, password, .. } => mysql::check_restore_privileges(url, password.as_ref()).await,
        Resource::Directory { .. } | Resource::Sqlite { .. } | Resource::Command { .. } | Resource::Http { .. } => {
            Ok(())
        }
    }
}

/// Wraps a writer and counts and hashes every byte that passes through.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer, the byte count and the hex SHA-256.
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.written, hex::encode(self.hasher.finalize()))
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.hasher.update(&buf[..n]);
                this.written += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Hands the bytes written to it to a thread of its own that hashes them and writes them to
/// the file, so that the thread producing them (reading files, feeding the compressor) never
/// waits on hashing or on the disk. [`BackgroundWriter::finish`] returns what
/// [`HashingWriter::finish`] does.
pub struct BackgroundWriter {
    buffer: Vec<u8>,
    sender: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<io::Result<(std::fs::File, u64, String)>>>,
}

/// Bytes handed over at a time, and chunks in flight at most.
const BACKGROUND_CHUNK: usize = 1 << 20;
const BACKGROUND_QUEUE: usize = 8;

impl BackgroundWriter {
    pub fn new(file: std::fs::File) -> BackgroundWriter {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(BACKGROUND_QUEUE);
        let thread = std::thread::spawn(move || {
            use std::io::Write;
            let mut writer = HashingWriter::new(file);
            for chunk in receiver {
                writer.write_all(&chunk)?;
            }
            Ok(writer.finish())
        });
        BackgroundWriter {
            buffer: Vec::with_capacity(BACKGROUND_CHUNK),
            sender: Some(sender),
            thread: Some(thread),
        }
    }

    fn hand_over(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(BACKGROUND_CHUNK));
        let sent = self.sender.as_ref().is_some_and(|sender| sender.send(chunk).is_ok());
        if sent { Ok(()) } else { Err(self.stopped()) }
    }

    /// The writing thread stopped early: its error (a full disk, say).
    fn stopped(&mut self) -> io::Error {
        self.sender = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the writing thread stopped"),
        }
    }

    /// Writes what is left, waits for the thread, and returns the file, the byte count and the
    /// hex SHA-256.
    pub fn finish(mut self) -> io::Result<(std::fs::File, u64, String)> {
        self.hand_over()?;
        self.sender = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(io::Error::other("the writing thread stopped")),
        }
    }
}

impl io::Write for BackgroundWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= BACKGROUND_CHUNK {
            self.hand_over()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }
}

/// Reads a file back and returns its size and hex SHA-256 (verification after writing).
pub async fn sha256_of(path: &Path) -> io::Result<(u64, String)> {
    sha256_of_reader(tokio::fs::File::open(path).await?).await
}

/// Reads a stream to its end and returns its size and hex SHA-256 (`steward backup verify`
/// reads artifacts through [`crate::storage::Storage::open`]).
pub async fn sha256_of_reader(mut reader: impl tokio::io::AsyncRead + Unpin) -> io::Result<(u64, String)> {
    use tokio::io::AsyncReadExt;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[tokio::test]
    async fn the_hash_written_equals_the_hash_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("artifact");
        let mut writer = HashingWriter::new(std::fs::File::create(&path).unwrap());
        for chunk in [b"hello ".as_slice(), b"world"] {
            writer.write_all(chunk).unwrap();
        }
        let (_, size, sha) = writer.finish();
        assert_eq!(size, 11);
        // sha256("hello world")
        assert_eq!(sha, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(sha256_of(&path).await.unwrap(), (11, sha));
    }
}
