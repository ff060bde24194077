//! Running an external program for a job, without leaving anything behind: the one place
//! Steward starts programs — actions, `command` resources' scripts, dump and restore tools,
//! facts, maintenance hooks and smoke checks.
//!
//! [`run`] streams both outputs into the job log; a driver whose tool's standard output *is*
//! the artifact builds its tool with [`command`] and stops it with [`terminate_group`] and a
//! [`GroupGuard`], the same way.
//!
//! - The program starts in a process group of its own, so that everything it starts can be
//!   signalled at once.
//! - Its environment is clean: `PATH`, `HOME`, `LANG`, `TZ` and `USER` from Steward's, plus what
//!   the caller gives. Steward's own variables (which may hold the database password) are not
//!   passed on.
//! - Standard output and error are read line by line into the job log as they come.
//! - On timeout or cancel the group gets SIGTERM, then SIGKILL once `grace` has passed. When the
//!   program ends on its own but left processes in its group, those are stopped the same way:
//!   no orphans either way.

use std::{
    path::PathBuf,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use nix::{
    errno::Errno,
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::Command,
};
use tokio_util::sync::CancellationToken;

use crate::output::{JobLog, Level, MAX_LINE_BYTES};

/// Variables of Steward's own environment a program gets.
const INHERITED_VARS: [&str; 5] = ["PATH", "HOME", "LANG", "TZ", "USER"];

/// How often a stopping process group is checked for survivors.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// How long the output is still read once the program's group is gone.
const PIPE_DRAIN: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Debug, Clone)]
pub struct Program {
    /// The program and its arguments.
    pub command: Vec<String>,
    pub workdir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// A file to read standard input from (none: empty input).
    pub stdin: Option<PathBuf>,
}

/// What a job's programs answer to: where their output goes, when they must stop, and how
/// long they get between SIGTERM and SIGKILL (`jobs.cancel_grace_seconds`).
#[derive(Clone, Copy)]
pub struct Watch<'a> {
    pub log: &'a JobLog,
    pub stop: &'a CancellationToken,
    pub grace: Duration,
    /// Variables every program gets (the job's id and worker: how a restarted Steward finds
    /// what a crash left running).
    pub env: &'a [(String, String)],
}

/// How the program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Exit status 0.
    Succeeded,
    /// A non-zero exit status or a signal, described: "exited with status 3".
    Failed(String),
    TimedOut,
    /// `stop` was triggered.
    Stopped,
}

/// A program to start: clean environment (see the module docs), no standard input, both
/// outputs piped, a process group of its own, killed when dropped. Add arguments and variables,
/// then spawn it and keep a [`GroupGuard`] of its group.
pub fn command(program: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .envs(
            INHERITED_VARS
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v))),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// The process group a spawned [`command`] leads.
pub fn group_of(child: &tokio::process::Child) -> Option<Pid> {
    child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw)
}

/// Runs `program`, streaming its output into `log`, until it ends, times out, or `stop` fires.
/// An `Err` means it could not be started at all.
pub async fn run(program: &Program, log: &JobLog, stop: &CancellationToken) -> std::io::Result<Ended> {
    let (name, args) = program
        .command
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no program given"))?;
    let mut command = command(name);
    command
        .args(args)
        .envs(program.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(path) = &program.stdin {
        command.stdin(std::fs::File::open(path)?);
    }
    if let Some(dir) = &program.workdir {
        command.current_dir(dir);
    }
    let mut child = command.spawn()?;
    let group = group_of(&child);
    // Whatever happens to this future from here on, the group does not outlive it.
    let guard = GroupGuard(group);

    let stdout = child
        .stdout
        .take()
        .map(|out| tokio::spawn(pump(out, Level::Stdout, log.clone())));
    let stderr = child
        .stderr
        .take()
        .map(|err| tokio::spawn(pump(err, Level::Stderr, log.clone())));

    let ended = tokio::select! {
        status = child.wait() => Some(status?),
        () = tokio::time::sleep(program.timeout) => None,
        () = stop.cancelled() => None,
    };
    let ended = match ended {
        Some(status) => {
            if group_still_alive(group).await {
                log.warn("The program left processes running in its group; stopping them.")
                    .await;
                terminate_group(group, program.grace, log).await;
            }
            describe(status)
        }
        None => {
            let why = if stop.is_cancelled() {
                Ended::Stopped
            } else {
                Ended::TimedOut
            };
            terminate_group(group, program.grace, log).await;
            // The leader is dead by now (SIGKILL at the latest); reap it.
            let _ = child.wait().await;
            why
        }
    };
    // The group is gone (the leader reaped, the rest stopped): its id may be reused by then, so
    // the guard must not signal it any more.
    let mut guard = guard;
    if !group_still_alive(group).await {
        guard.0 = None;
    }
    drop(guard);
    // The pipes close once every process of the group is gone; wait for the last lines. A
    // process that left the group (setsid) may hold them open: it gets a moment, no more.
    for mut pump in [stdout, stderr].into_iter().flatten() {
        if tokio::time::timeout(PIPE_DRAIN, &mut pump).await.is_err() {
            pump.abort();
            log.warn("A process outside the program's group still holds its output open; no longer reading it.")
                .await;
        }
    }
    Ok(ended)
}

fn describe(status: ExitStatus) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ended::Succeeded,
        (Some(code), _) => Ended::Failed(format!("exited with status {code}")),
        (None, Some(signal)) => Ended::Failed(format!(
            "was killed by signal {}",
            Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.as_str().to_string())
        )),
        (None, None) => Ended::Failed("ended without an exit status".into()),
    }
}

/// SIGTERM to the group, then SIGKILL to whatever is left after `grace`.
pub async fn terminate_group(group: Option<Pid>, grace: Duration, log: &JobLog) {
    let Some(group) = group else { return };
    if killpg(group, Signal::SIGTERM).is_err() {
        return; // Nobody left.
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !group_still_alive(Some(group)).await {
            return;
        }
        tokio::time::sleep(GROUP_POLL).await;
    }
    if group_still_alive(Some(group)).await {
        log.warn(format!(
            "Still running {} s after SIGTERM; sending SIGKILL.",
            grace.as_secs()
        ))
        .await;
        let _ = killpg(group, Signal::SIGKILL);
    }
}

/// [`group_alive`] off the async runtime: it reads /proc, which takes milliseconds on a busy
/// machine.
async fn group_still_alive(group: Option<Pid>) -> bool {
    let Some(group) = group else { return false };
    tokio::task::spawn_blocking(move || group_alive(group))
        .await
        .unwrap_or(true)
}

/// Whether any process of the group still exists (zombies excluded: they are dead, only not
/// yet reaped by whoever is their parent now).
fn group_alive(group: Pid) -> bool {
    match killpg(group, None) {
        Err(Errno::ESRCH) => false,
        Err(_) => true,
        Ok(()) => live_members(group) > 0,
    }
}

/// Processes of the group that are not zombies, from /proc.
pub fn live_members(group: Pid) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 1; // Cannot tell: assume alive, so SIGKILL follows after the grace period.
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
            pgrp == Some(group.as_raw()) && state != Some("Z") && state != Some("X")
        })
        .count()
}

/// Kills the processes a crashed Steward left running for job `job_id` of worker `worker`:
/// every process on this machine whose environment says `STEWARD_WORKER=<worker>` and
/// `STEWARD_JOB_ID=<job_id>` (what every job gives its programs, inherited by their
/// children). Returns how many were signalled.
pub fn kill_job_leftovers(worker: &str, job_id: i64) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let want_worker = format!("STEWARD_WORKER={worker}");
    let want_job = format!("STEWARD_JOB_ID={job_id}");
    let mut killed = 0;
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let matches = |want: &str| environ.split(|&b| b == 0).any(|var| var == want.as_bytes());
        if matches(&want_worker)
            && matches(&want_job)
            && nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
        {
            killed += 1;
        }
    }
    killed
}

/// Kills the whole group when dropped (a cancelled future, a panic): the last line of defence.
pub struct GroupGuard(pub Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// Copies lines from a pipe into the log. Invalid UTF-8 is replaced, not dropped; a line longer
/// than [`MAX_LINE_BYTES`] is stored in pieces.
async fn pump(pipe: impl AsyncRead + Unpin, level: Level, log: JobLog) {
    let mut reader = BufReader::new(pipe);
    let mut line: Vec<u8> = Vec::new();
    while let Ok(buffer) = reader.fill_buf().await {
        if buffer.is_empty() {
            break;
        }
        let (taken, complete) = match buffer.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                line.extend_from_slice(&buffer[..newline]);
                (newline + 1, true)
            }
            None => {
                line.extend_from_slice(buffer);
                (buffer.len(), false)
            }
        };
        reader.consume(taken);
        while line.len() > MAX_LINE_BYTES {
            let rest = line.split_off(MAX_LINE_BYTES);
            log.line(level, String::from_utf8_lossy(&line).into_owned()).await;
            line = rest;
        }
        if complete {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            log.line(level, String::from_utf8_lossy(&line).into_owned()).await;
            line.clear();
        }
    }
    if !line.is_empty() {
        log.line(level, String::from_utf8_lossy(&line).into_owned()).await;
    }
}

#[cfg(test)]
mod tests;
