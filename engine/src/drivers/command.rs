//! The `command` driver: an operator's own backup script, for systems Steward has no driver for.
//!
//! The script runs through [`process::run`] (own process group, clean environment, output line
//! by line into the job log, timeout) and gets a fresh, empty directory in `STEWARD_OUTPUT_DIR`
//! to write its backup into, with `STEWARD_BACKUP_ID`, `STEWARD_DESCRIPTION`,
//! `STEWARD_ENVIRONMENT` and `STEWARD_RESOURCE` beside the resource's `env` and `secret_env`.
//! When it succeeds, what it wrote is the backup: kept as the tree it is for the repository
//! ([`backup_tree`]: stored file by file, so what did not change since the last backup is not
//! stored again), or archived as `output.tar.zst` (tar + zstd, streamed, hashed while written;
//! [`backup`], the form of an export and of backups taken before the repository). Restore and
//! verify scripts get it back as a directory in `STEWARD_INPUT_DIR` either way. A script that
//! exits 0 but wrote nothing has not made a backup: that is an error, not an empty artifact.
//!
//! The module also holds what the database drivers share with it for running tools: a clean
//! [`tool_command`], [`stream_stdout`] for tools whose standard output *is* the artifact, and
//! the last standard-error lines that make an error message say what the tool said.

use std::{
    collections::{BTreeMap, VecDeque},
    io::{self, Read, Write},
    os::{fd::OwnedFd, unix::process::ExitStatusExt},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::Command,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{Artifact, Context, DriverError, HashingWriter};
use crate::{
    config::SecretSource,
    output::{JobLog, Level, MAX_LINE_BYTES, mask},
    process::{self, Ended, GroupGuard, Program},
};

/// The artifact's file name.
pub const ARTIFACT: &str = "output.tar.zst";

/// How often progress (bytes written) is reported while a tool or an archive is being written.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Standard-error lines kept for the error message of a failing tool.
const TAIL_LINES: usize = 3;

/// zstd's default level: fast, and most of the gain.
pub(super) const ZSTD_LEVEL: i32 = 3;

/// Runs the backup script of a `command` resource and archives what it wrote.
pub async fn backup(
    backup_cmd: &[String],
    env: &BTreeMap<String, String>,
    secret_env: &BTreeMap<String, SecretSource>,
    timeout_seconds: u32,
    out_dir: &Path,
    ctx: &Context<'_>,
) -> Result<Artifact, DriverError> {
    let label = label(ctx);
    let output = ctx.scratch.join("command-output");
    backup_tree(backup_cmd, env, secret_env, timeout_seconds, &output, ctx).await?;
    let target = out_dir.join(ARTIFACT);
    let (size, sha256) = archive(&output, &target, ctx).await?;
    ctx.log
        .info(format!("{label}: archived the script's output ({size} bytes)"))
        .await;
    Ok(Artifact {
        file: ARTIFACT.into(),
        size,
        sha256,
        tool: None,
        details: serde_json::json!({ "command": backup_cmd.first() }),
    })
}

/// What a backup script wrote, kept as a tree for the repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub files: u64,
    pub bytes: u64,
    pub details: serde_json::Value,
}

/// Runs the backup script of a `command` resource with `into` (created empty) as its
/// `STEWARD_OUTPUT_DIR`: what it writes there is the backup, stored by the repository as a
/// tree (so what did not change since the last backup is not stored again).
pub async fn backup_tree(
    backup_cmd: &[String],
    env: &BTreeMap<String, String>,
    secret_env: &BTreeMap<String, SecretSource>,
    timeout_seconds: u32,
    into: &Path,
    ctx: &Context<'_>,
) -> Result<Tree, DriverError> {
    let label = label(ctx);
    let output = empty_dir(into).await?;
    let script = Script {
        command: backup_cmd,
        called: "the backup script",
        env,
        secret_env,
        timeout_seconds,
    };
    run_backup_script(&script, &output, ctx).await?;
    let (files, bytes) = count_files(&output).await?;
    ctx.log
        .info(format!("{label}: the script wrote {files} file(s), {bytes} bytes"))
        .await;
    Ok(Tree {
        files,
        bytes,
        details: serde_json::json!({ "command": backup_cmd.first(), "files": files, "bytes_in": bytes }),
    })
}

/// Runs a backup script with `output` as `STEWARD_OUTPUT_DIR`; an error unless it exited 0
/// and wrote something.
async fn run_backup_script(script: &Script<'_>, output: &Path, ctx: &Context<'_>) -> Result<(), DriverError> {
    let label = label(ctx);
    let Some(name) = script.command.first() else {
        return Err(DriverError::Failed(format!("{label}: no backup script is configured")));
    };
    let (mut vars, secrets) = script_env(script.env, script.secret_env, &label)?;
    // Steward's variables come last so that `env` cannot override them.
    vars.extend([
        ("STEWARD_BACKUP_ID".to_string(), ctx.backup_id.to_string()),
        ("STEWARD_OUTPUT_DIR".to_string(), output.display().to_string()),
        ("STEWARD_DESCRIPTION".to_string(), ctx.description.to_string()),
        ("STEWARD_ENVIRONMENT".to_string(), ctx.environment.to_string()),
        ("STEWARD_RESOURCE".to_string(), ctx.resource.to_string()),
    ]);
    vars.extend(ctx.tool_env.iter().cloned());
    let timeout_seconds = script.timeout_seconds;
    let program = Program {
        command: script.command.to_vec(),
        workdir: None,
        env: vars,
        timeout: Duration::from_secs(u64::from(timeout_seconds)),
        grace: ctx.grace,
        stdin: None,
    };

    ctx.log.info(format!("{label}: running the backup script {name}")).await;
    let (ended, last) = run_tool(&program, &secrets, ctx).await;
    let last = last.map(|line| format!(": {line}")).unwrap_or_default();
    match ended {
        Err(e) => {
            return Err(DriverError::Failed(format!(
                "{label}: the backup script {name} could not be started: {e}"
            )));
        }
        Ok(Ended::Succeeded) => {}
        Ok(Ended::Failed(how)) => {
            return Err(DriverError::Failed(format!("{label}: the backup script {how}{last}")));
        }
        Ok(Ended::TimedOut) => {
            return Err(DriverError::Failed(format!(
                "{label}: the backup script did not finish within {timeout_seconds} s and was stopped"
            )));
        }
        Ok(Ended::Stopped) => return Err(DriverError::Cancelled),
    }

    let mut entries = tokio::fs::read_dir(output)
        .await
        .map_err(DriverError::io(format!("reading {}", output.display())))?;
    if entries
        .next_entry()
        .await
        .map_err(DriverError::io(format!("reading {}", output.display())))?
        .is_none()
    {
        return Err(DriverError::Failed(format!(
            "{label}: the backup script wrote nothing into STEWARD_OUTPUT_DIR"
        )));
    }
    Ok(())
}

/// The regular files under `dir` and their bytes.
async fn count_files(dir: &Path) -> Result<(u64, u64), DriverError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let stop = CancellationToken::new();
        super::directory::select(&dir, &[], &[], Path::new("/nonexistent"), &stop).map(|s| (s.files, s.bytes))
    })
    .await
    .map_err(|e| DriverError::Failed(format!("counting the script's files stopped: {e}")))?
}

/// Runs the restore script of a `command` resource with the backed-up output unpacked into
/// `STEWARD_INPUT_DIR` (beside `STEWARD_BACKUP_ID`, `STEWARD_ENVIRONMENT`, `STEWARD_RESOURCE`
/// and the resource's `env` and `secret_env`).
pub async fn restore(
    restore_cmd: Option<&[String]>,
    env: &BTreeMap<String, String>,
    secret_env: &BTreeMap<String, SecretSource>,
    timeout_seconds: u32,
    artifact: &Path,
    ctx: &Context<'_>,
) -> Result<(), DriverError> {
    let label = label(ctx);
    let Some(script) = restore_cmd.filter(|command| !command.is_empty()) else {
        return Err(DriverError::Failed(format!(
            "{label}: no restore script is configured (the resource's `restore`)"
        )));
    };
    let script = Script {
        command: script,
        called: "the restore script",
        env,
        secret_env,
        timeout_seconds,
    };
    run_on_input(&script, artifact, ctx).await.map(drop)
}

/// Test-restores a `command` resource: the backed-up output is unpacked into scratch (the whole
/// archive read, its checksum verified) and, when the resource has a `verify` script, that
/// script runs on it exactly as a restore script would (`STEWARD_INPUT_DIR`, …) and must exit 0.
/// The live system is the script's business: a verify script should only read its input.
/// Returns what was checked, in words.
pub async fn test_restore(
    verify_cmd: Option<&[String]>,
    env: &BTreeMap<String, String>,
    secret_env: &BTreeMap<String, SecretSource>,
    timeout_seconds: u32,
    artifact: &Path,
    ctx: &Context<'_>,
) -> Result<String, DriverError> {
    match verify_cmd.filter(|command| !command.is_empty()) {
        Some(command) => {
            let script = Script {
                command,
                called: "the verify script",
                env,
                secret_env,
                timeout_seconds,
            };
            let files = run_on_input(&script, artifact, ctx).await?;
            Ok(format!(
                "{files} files unpacked; the verify script {} passed",
                command.first().map(String::as_str).unwrap_or_default()
            ))
        }
        None => {
            let (input, files) = input_of(artifact, ctx).await?;
            let _ = tokio::fs::remove_dir_all(&input).await;
            Ok(format!("{files} files read back (no verify script is configured)"))
        }
    }
}

/// A script run on a backup's unpacked output: a restore or a verify script.
struct Script<'a> {
    command: &'a [String],
    /// How messages call it: "the restore script".
    called: &'a str,
    env: &'a BTreeMap<String, String>,
    secret_env: &'a BTreeMap<String, SecretSource>,
    timeout_seconds: u32,
}

/// Runs `script` on the backed-up output in `STEWARD_INPUT_DIR`: the tree the repository
/// restored into scratch, or (a backup taken before the repository) its archive unpacked into
/// scratch. Returns how many files it got.
async fn run_on_input(script: &Script<'_>, artifact: &Path, ctx: &Context<'_>) -> Result<u64, DriverError> {
    let label = label(ctx);
    let (mut vars, secrets) = script_env(script.env, script.secret_env, &label)?;
    let (input, files) = input_of(artifact, ctx).await?;
    vars.extend([
        ("STEWARD_BACKUP_ID".to_string(), ctx.backup_id.to_string()),
        ("STEWARD_INPUT_DIR".to_string(), input.display().to_string()),
        ("STEWARD_ENVIRONMENT".to_string(), ctx.environment.to_string()),
        ("STEWARD_RESOURCE".to_string(), ctx.resource.to_string()),
    ]);
    vars.extend(ctx.tool_env.iter().cloned());
    let program = Program {
        command: script.command.to_vec(),
        workdir: None,
        env: vars,
        timeout: Duration::from_secs(u64::from(script.timeout_seconds)),
        grace: ctx.grace,
        stdin: None,
    };
    let name = script.command.first().map(String::as_str).unwrap_or_default();
    ctx.log.info(format!("{label}: running {} {name}", script.called)).await;
    let (ended, last) = run_tool(&program, &secrets, ctx).await;
    let _ = tokio::fs::remove_dir_all(&input).await;
    restore_result(ended, last, &label, script.called, program.timeout, "")?;
    Ok(files)
}

/// The backed-up output as a directory in scratch, and how many files it holds: a tree as the
/// repository restored it, or an archive unpacked.
async fn input_of(artifact: &Path, ctx: &Context<'_>) -> Result<(std::path::PathBuf, u64), DriverError> {
    if artifact.is_dir() {
        let (files, _) = count_files(artifact).await?;
        return Ok((artifact.to_path_buf(), files));
    }
    let input = empty_dir(&ctx.scratch.join("command-input")).await?;
    match unpack_input(artifact, &input, ctx).await {
        Ok(files) => Ok((input, files)),
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&input).await;
            Err(e)
        }
    }
}

/// Unpacks the backed-up output into `input`; returns how many files it holds.
async fn unpack_input(artifact: &Path, input: &Path, ctx: &Context<'_>) -> Result<u64, DriverError> {
    let label = label(ctx);
    let (from, into, stop) = (artifact.to_path_buf(), input.to_path_buf(), ctx.stop.clone());
    tokio::task::spawn_blocking(move || super::directory::unpack_counting(&from, &into, &stop))
        .await
        .map_err(|e| DriverError::Failed(format!("{label}: unpacking the backup failed: {e}")))?
        .map(|unpacked| unpacked.files)
}

/// How a restoring program ended, as the driver's result. `name` is how messages call it
/// (`pg_restore`, `the restore script`); `after_failure` says what a failure left behind.
pub(super) fn restore_result(
    ended: io::Result<Ended>,
    last: Option<String>,
    label: &str,
    name: &str,
    timeout: Duration,
    after_failure: &str,
) -> Result<(), DriverError> {
    let last = last.map(|line| format!(": {line}")).unwrap_or_default();
    let within = match timeout.as_secs() {
        secs if secs >= 3600 && secs % 3600 == 0 => format!("{} hours", secs / 3600),
        secs => format!("{secs} s"),
    };
    match ended {
        Ok(Ended::Succeeded) => Ok(()),
        Ok(Ended::Stopped) => Err(DriverError::Cancelled),
        Ok(Ended::Failed(how)) => Err(DriverError::Failed(format!(
            "{label}: {name} {how}{last}{after_failure}"
        ))),
        Ok(Ended::TimedOut) => Err(DriverError::Failed(format!(
            "{label}: {name} did not finish within {within} and was stopped"
        ))),
        Err(e) => Err(DriverError::Failed(format!(
            "{label}: {name} could not be started: {e}"
        ))),
    }
}

/// Environment variables of a program: name and value.
type Vars = Vec<(String, String)>;

/// A script's variables from the resource's `env` and `secret_env` (read now), and the secret
/// values, to be masked in the log.
fn script_env(
    env: &BTreeMap<String, String>,
    secret_env: &BTreeMap<String, SecretSource>,
    label: &str,
) -> Result<(Vars, Vec<String>), DriverError> {
    let mut secrets = Vec::new();
    let mut vars: Vars = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, source) in secret_env {
        let value = source
            .read()
            .map_err(|why| DriverError::Failed(format!("{label}: the secret {key}: {why}")))?;
        secrets.push(value.clone());
        vars.push((key.clone(), value));
    }
    Ok((vars, secrets))
}

/// `dir`, emptied (or created).
async fn empty_dir(dir: &Path) -> Result<std::path::PathBuf, DriverError> {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(DriverError::io(format!("clearing {}", dir.display()))(e)),
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(DriverError::io(format!("creating {}", dir.display())))?;
    Ok(dir.to_path_buf())
}

/// Archives `dir` (its contents, at the top of the archive) into `target` as tar + zstd; returns size and SHA-256.
async fn archive(dir: &Path, target: &Path, ctx: &Context<'_>) -> Result<(u64, String), DriverError> {
    let context = format!("archiving {} into {}", dir.display(), target.display());
    let file = std::fs::File::create(target).map_err(DriverError::io(format!("creating {}", target.display())))?;
    let (watched, counter) = Watched::new(file, ctx.stop.clone());
    let dir = dir.to_path_buf();
    let work = tokio::task::spawn_blocking(move || -> io::Result<(u64, String)> {
        let encoder = zstd::Encoder::new(HashingWriter::new(watched), ZSTD_LEVEL)?;
        let mut builder = tar::Builder::new(encoder);
        // The script's symbolic links are kept as links, not followed.
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &dir)?;
        let encoder = builder.into_inner()?;
        let (watched, size, sha256) = encoder.finish()?.finish();
        watched.into_inner().sync_all()?;
        Ok((size, sha256))
    });
    follow(work, &counter, ctx)
        .await?
        .map_err(|e| cancelled_or(e, ctx, &context))
}

/// `resource "db" of prod`: how errors and log lines name what they are about.
pub(super) fn label(ctx: &Context<'_>) -> String {
    format!("resource \"{}\" of {}", ctx.resource, ctx.environment)
}

/// An I/O error of blocking work that was stopped by a cancellation is the cancellation.
fn cancelled_or(e: io::Error, ctx: &Context<'_>, context: &str) -> DriverError {
    if ctx.stop.is_cancelled() {
        DriverError::Cancelled
    } else {
        DriverError::Io {
            context: context.to_string(),
            source: e,
        }
    }
}

/// Waits for blocking work, reporting `counter` as progress meanwhile.
async fn follow<T>(mut work: JoinHandle<T>, counter: &AtomicU64, ctx: &Context<'_>) -> Result<T, DriverError> {
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            done = &mut work => {
                (ctx.progress)(counter.load(Ordering::Relaxed), None);
                return done.map_err(|e| DriverError::Failed(format!("{}: the writer task failed: {e}", label(ctx))));
            }
            _ = ticker.tick() => (ctx.progress)(counter.load(Ordering::Relaxed), None),
        }
    }
}

/// A file being written by blocking work: counts the bytes for progress reports and refuses to
/// write once the job is cancelled, so that tar and zstd stop promptly.
pub(super) struct Watched<W> {
    inner: W,
    written: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl<W> Watched<W> {
    pub(super) fn new(inner: W, stop: CancellationToken) -> (Self, Arc<AtomicU64>) {
        let written = Arc::new(AtomicU64::new(0));
        (
            Watched {
                inner,
                written: written.clone(),
                stop,
            },
            written,
        )
    }

    pub(super) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.stop.is_cancelled() {
            // Not `Interrupted`: `write_all` retries those, forever.
            return Err(io::Error::other("the backup was cancelled"));
        }
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A tool run for a driver: the one process runner's [`process::command`].
pub(crate) fn tool_command(program: &str) -> Command {
    process::command(program)
}

/// `TOOL --version`, first line; `Err` when the tool cannot be run (not installed).
pub(super) async fn tool_version(program: &str) -> io::Result<String> {
    let output = tool_command(program).arg("--version").output().await?;
    if !output.status.success() {
        return Err(io::Error::other(format!("`{program} --version` {}", output.status)));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// Runs a tool whose standard output is the artifact: the output is copied into `sink` by
/// blocking work (so compression never runs on the async threads), `finish` completes the sink
/// there, standard error goes line by line into the job log. `counter` is the byte count
/// reported as progress (see [`Watched`]). `secrets` are masked in what is logged and in the
/// error. On cancellation the tool's group gets SIGTERM, then SIGKILL.
pub(super) async fn stream_stdout<W, T, F>(
    mut command: Command,
    tool: &str,
    secrets: &[String],
    sink: W,
    finish: F,
    counter: &AtomicU64,
    ctx: &Context<'_>,
) -> Result<T, DriverError>
where
    W: Write + Send + 'static,
    T: Send + 'static,
    F: FnOnce(W) -> io::Result<T> + Send + 'static,
{
    let label = label(ctx);
    let mut child = command
        .spawn()
        .map_err(|e| DriverError::Failed(format!("{label}: {tool} could not be started: {e}")))?;
    let group = process::group_of(&child);
    let guard = GroupGuard(group);
    let stderr = child
        .stderr
        .take()
        .map(|err| tokio::spawn(collect_stderr(err, ctx.log.clone(), secrets.to_vec())));
    let stdout: OwnedFd = child
        .stdout
        .take()
        .ok_or_else(|| DriverError::Failed(format!("{label}: {tool}'s output could not be read")))?
        .into_owned_fd()
        .map_err(DriverError::io(format!("reading {tool}'s output")))?;
    let copy = tokio::task::spawn_blocking(move || -> io::Result<T> {
        let mut input = std::fs::File::from(stdout);
        let mut sink = sink;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = match input.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            sink.write_all(&buffer[..n])?;
        }
        finish(sink)
    });

    let outcome = tokio::select! {
        outcome = async {
            let copied = follow(copy, counter, ctx).await;
            (copied, child.wait().await)
        } => Some(outcome),
        () = ctx.stop.cancelled() => None,
    };
    let Some((copied, status)) = outcome else {
        // SIGTERM, the grace period, then SIGKILL to what is left; then the guard's SIGKILL.
        process::terminate_group(group, ctx.grace, ctx.log).await;
        let _ = child.wait().await;
        drop(guard);
        return Err(DriverError::Cancelled);
    };
    // Whatever the tool left in its group goes now; then its standard error closes.
    drop(guard);
    let tail = match stderr {
        Some(task) => tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => VecDeque::new(),
    };
    let said = if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", Vec::from(tail).join(" "))
    };
    let status = status.map_err(DriverError::io(format!("waiting for {tool}")))?;
    match (copied?, status.code(), status.signal()) {
        (Ok(done), Some(0), _) => Ok(done),
        // The tool failed by itself: its own message is what the operator needs.
        (_, Some(code), _) if code != 0 => Err(DriverError::Failed(format!(
            "{label}: {tool} exited with status {code}{said}"
        ))),
        (Err(e), _, _) => Err(cancelled_or(e, ctx, &format!("writing {tool}'s output"))),
        (Ok(_), _, signal) => Err(DriverError::Failed(format!(
            "{label}: {tool} was killed by signal {}{said}",
            signal.map_or_else(|| "?".to_string(), |s| s.to_string())
        ))),
    }
}

/// Logs a tool's standard error line by line (secrets masked) and returns the last lines.
async fn collect_stderr(pipe: impl AsyncRead + Unpin, log: JobLog, secrets: Vec<String>) -> VecDeque<String> {
    let mut reader = BufReader::new(pipe);
    let mut tail = VecDeque::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        line.truncate(MAX_LINE_BYTES);
        let text = mask(String::from_utf8_lossy(&line).trim_end(), &secrets);
        remember(&mut tail, &text);
        log.line(Level::Stderr, text).await;
    }
    tail
}

/// Runs a program (a script, or a tool whose output is not the artifact) through
/// [`process::run`], its lines into the job log with `secrets` masked; returns how it ended and
/// its last standard-error line, for the error message.
pub(super) async fn run_tool(
    program: &Program,
    secrets: &[String],
    ctx: &Context<'_>,
) -> (io::Result<Ended>, Option<String>) {
    let (relay, lines) = JobLog::channel();
    let forwarder = tokio::spawn(forward(lines, ctx.log.clone(), secrets.to_vec()));
    let ended = process::run(program, &relay, ctx.stop).await;
    drop(relay);
    let tail = forwarder.await.unwrap_or_default();
    (ended, tail.back().cloned())
}

/// Relays a script's lines to the job log and returns its last standard-error lines.
async fn forward(
    mut lines: tokio::sync::mpsc::Receiver<(Level, String)>,
    log: JobLog,
    secrets: Vec<String>,
) -> VecDeque<String> {
    let mut tail = VecDeque::new();
    while let Some((level, line)) = lines.recv().await {
        let line = mask(&line, &secrets);
        if level == Level::Stderr {
            remember(&mut tail, &line);
        }
        log.line(level, line).await;
    }
    tail
}

fn remember(tail: &mut VecDeque<String>, line: &str) {
    let line = line.trim();
    if line.is_empty() {
        return;
    }
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line.to_string());
}

#[cfg(test)]
mod tests {
    use std::{
        io::Read,
        time::{Duration, Instant},
    };

    use super::*;
    use crate::drivers::sha256_of;
    use crate::drivers::testing::Harness;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    /// The archive's entries: path → contents (`None` for directories, `->target` for links).
    fn entries(path: &Path) -> BTreeMap<String, Option<String>> {
        let file = std::fs::File::open(path).unwrap();
        let mut archive = tar::Archive::new(zstd::Decoder::new(file).unwrap());
        let mut found = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let content = match entry.header().entry_type() {
                tar::EntryType::Directory => None,
                tar::EntryType::Symlink => Some(format!("->{}", entry.link_name().unwrap().unwrap().display())),
                _ => {
                    let mut text = String::new();
                    entry.read_to_string(&mut text).unwrap();
                    Some(text)
                }
            };
            found.insert(name, content);
        }
        found
    }

    #[tokio::test]
    async fn the_scripts_output_is_archived_with_stewards_variables_and_secrets() {
        let harness = Harness::new();
        let secret_file = harness.scratch.path().join("token");
        std::fs::write(&secret_file, "s3cr3t-t0ken\n").unwrap();
        let script = r#"
            set -e
            cd "$STEWARD_OUTPUT_DIR"
            printf '%s\n' "$STEWARD_BACKUP_ID" "$STEWARD_DESCRIPTION" "$STEWARD_ENVIRONMENT" "$STEWARD_RESOURCE" "$PLAIN" > env.txt
            [ "$TOKEN" = s3cr3t-t0ken ] && echo token-ok > token.txt
            mkdir -p 'sub dir/empty'
            printf 'dump' > 'sub dir/data.bin'
            ln -s 'sub dir/data.bin' link
            echo "using token $TOKEN"
            echo "progress on stderr" >&2
        "#;
        let env = BTreeMap::from([("PLAIN".to_string(), "plain value".to_string())]);
        let secret_env = BTreeMap::from([("TOKEN".to_string(), SecretSource::File(secret_file))]);
        let started = Instant::now();
        let artifact = backup(&sh(script), &env, &secret_env, 30, harness.out.path(), &harness.ctx())
            .await
            .unwrap();
        eprintln!("command backup took {:?}", started.elapsed());

        let path = harness.out.path().join(&artifact.file);
        assert_eq!(artifact.file, Path::new(ARTIFACT));
        assert_eq!(
            sha256_of(&path).await.unwrap(),
            (artifact.size, artifact.sha256.clone())
        );
        let found = entries(&path);
        assert_eq!(
            found.get("env.txt"),
            Some(&Some(
                "staging-20261122-0436-7f3a\nbefore the upgrade\nstaging\nmain\nplain value\n".to_string()
            )),
            "{found:?}"
        );
        assert_eq!(found.get("token.txt"), Some(&Some("token-ok\n".to_string())));
        assert_eq!(found.get("sub dir/data.bin"), Some(&Some("dump".to_string())));
        assert_eq!(found.get("sub dir/empty"), Some(&None));
        assert_eq!(found.get("link"), Some(&Some("->sub dir/data.bin".to_string())));
        assert!(harness.progress_max() > 0);

        let lines = harness.lines().await;
        assert!(
            lines.contains(&(Level::Stdout, "using token ***".to_string())),
            "{lines:?}"
        );
        assert!(
            lines.contains(&(Level::Stderr, "progress on stderr".to_string())),
            "{lines:?}"
        );
        assert!(!format!("{lines:?}").contains("s3cr3t"), "{lines:?}");
    }

    #[tokio::test]
    async fn a_failing_script_fails_with_its_last_stderr_line() {
        let harness = Harness::new();
        let script = "echo starting; echo 'warming up' >&2; echo 'disk quota exceeded' >&2; exit 4";
        let error = backup(
            &sh(script),
            &BTreeMap::new(),
            &BTreeMap::new(),
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "resource \"main\" of staging: the backup script exited with status 4: disk quota exceeded"
        );
        assert!(!harness.out.path().join(ARTIFACT).exists());
    }

    #[tokio::test]
    async fn the_restore_script_reads_what_the_backup_script_wrote() {
        let harness = Harness::new();
        let target = harness.scratch.path().join("restored.txt");
        let no_vars = BTreeMap::new();
        let artifact = backup(
            &sh("mkdir -p \"$STEWARD_OUTPUT_DIR/sub\"; echo 'index v1' > \"$STEWARD_OUTPUT_DIR/sub/index.txt\""),
            &no_vars,
            &BTreeMap::new(),
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap();
        let archive = harness.out.path().join(&artifact.file);
        let script = sh(&format!(
            "echo \"restoring $STEWARD_BACKUP_ID\"; cp \"$STEWARD_INPUT_DIR/sub/index.txt\" '{}'",
            target.display()
        ));
        restore(Some(&script), &no_vars, &BTreeMap::new(), 30, &archive, &harness.ctx())
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "index v1\n");

        let failing = sh("echo 'cluster is read-only' >&2; exit 4");
        let error = restore(Some(&failing), &no_vars, &BTreeMap::new(), 30, &archive, &harness.ctx())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with("the restore script exited with status 4: cluster is read-only"),
            "{error}"
        );
        let none = restore(None, &no_vars, &BTreeMap::new(), 30, &archive, &harness.ctx())
            .await
            .unwrap_err()
            .to_string();
        assert!(none.contains("no restore script is configured"), "{none}");
        let lines = format!("{:?}", harness.lines().await);
        assert!(lines.contains("restoring staging-20261122-0436-7f3a"), "{lines}");
    }

    #[tokio::test]
    async fn a_script_that_writes_nothing_made_no_backup() {
        let harness = Harness::new();
        let error = backup(
            &sh("echo all fine"),
            &BTreeMap::new(),
            &BTreeMap::new(),
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.ends_with("the backup script wrote nothing into STEWARD_OUTPUT_DIR"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_script_that_runs_too_long_is_stopped() {
        let harness = Harness::new();
        let started = Instant::now();
        let error = backup(
            &sh("echo partial > \"$STEWARD_OUTPUT_DIR/x\"; sleep 60"),
            &BTreeMap::new(),
            &BTreeMap::new(),
            1,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.contains("did not finish within 1 s and was stopped"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        assert!(!harness.out.path().join(ARTIFACT).exists());
    }

    #[tokio::test]
    async fn a_cancelled_script_is_stopped() {
        let harness = Harness::new();
        let stop = harness.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stop.cancel();
        });
        let started = Instant::now();
        let result = backup(
            &sh("sleep 60"),
            &BTreeMap::new(),
            &BTreeMap::new(),
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await;
        assert!(matches!(result, Err(DriverError::Cancelled)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_streaming_tool_is_stopped_when_the_job_is_cancelled() {
        let harness = Harness::new();
        let stop = harness.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stop.cancel();
        });
        let mut command = tool_command("sh");
        command.args(["-c", "echo started >&2; exec yes steward"]);
        let file = std::fs::File::create(harness.out.path().join("endless")).unwrap();
        let (watched, counter) = Watched::new(file, harness.stop.clone());
        let started = Instant::now();
        let result = stream_stdout(
            command,
            "yes",
            &[],
            HashingWriter::new(watched),
            |writer| Ok(writer.written()),
            &counter,
            &harness.ctx(),
        )
        .await;
        assert!(matches!(result, Err(DriverError::Cancelled)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(counter.load(Ordering::Relaxed) > 0);
    }

    #[tokio::test]
    async fn a_missing_secret_names_the_variable_not_a_value() {
        let harness = Harness::new();
        let secret_env = BTreeMap::from([(
            "TOKEN".to_string(),
            SecretSource::File(harness.scratch.path().join("absent")),
        )]);
        let error = backup(
            &sh("true"),
            &BTreeMap::new(),
            &secret_env,
            30,
            harness.out.path(),
            &harness.ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("resource \"main\" of staging: the secret TOKEN: cannot read"),
            "{error}"
        );
    }
}
