//! What a benchmark that runs a driver against a reference needs around the measurement: the
//! alternating order of the two sides, a driver [`Context`] that asks nothing of a job, a clock
//! of wall-clock and CPU time, and the machine's state (load, nice) for the report.
//!
//! (`backup-drivers` keeps copies of its own of these, from before this module.)

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    process::Stdio,
    time::Instant,
};

use anyhow::{Context as _, bail, ensure};
use engine::{
    drivers::Context,
    jobs::log::{JobLog, Level},
};
use tokio_util::sync::CancellationToken;

/// One side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Driver,
    Reference,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Driver => "driver",
            Side::Reference => "reference",
        }
    }
}

/// Driver first in even runs, reference first in odd ones, so neither always runs second on
/// a warmer cache or under the same neighbour.
pub fn sides(run: usize) -> [Side; 2] {
    if run.is_multiple_of(2) {
        [Side::Driver, Side::Reference]
    } else {
        [Side::Reference, Side::Driver]
    }
}

/// What a driver's [`Context`] borrows: a job log drained by a task (warnings and errors go to
/// stderr), a stop token never fired, scratch space.
pub struct Quiet {
    log: JobLog,
    drain: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
    scratch: PathBuf,
}

impl Quiet {
    pub fn new(work: &Path) -> anyhow::Result<Quiet> {
        let (log, mut lines) = JobLog::channel();
        let drain = tokio::spawn(async move {
            while let Some((level, line)) = lines.recv().await {
                if matches!(level, Level::Warn | Level::Error) {
                    eprintln!("  driver {}: {line}", level.as_str());
                }
            }
        });
        let scratch = work.join("scratch");
        fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        Ok(Quiet {
            log,
            drain,
            stop: CancellationToken::new(),
            scratch,
        })
    }

    pub fn ctx(&self, resource: &'static str) -> Context<'_> {
        fn ignore(_: u64, _: Option<u64>) {}
        Context {
            environment: "bench",
            resource,
            backup_id: "bench",
            description: "",
            log: &self.log,
            stop: &self.stop,
            progress: &ignore,
            scratch: &self.scratch,
            tool_env: &[],
            grace: std::time::Duration::from_secs(10),
        }
    }

    /// Closes the log and waits until every line is printed.
    pub async fn close(self) {
        drop(self.log);
        let _ = self.drain.await;
    }
}

/// Wall-clock and CPU time since it started.
pub struct Clock {
    wall: Instant,
    cpu_ticks: u64,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu_ticks: cpu_ticks(),
        }
    }

    /// (wall-clock seconds, CPU seconds) so far.
    pub fn read(&self) -> (f64, f64) {
        let ticks = cpu_ticks().saturating_sub(self.cpu_ticks);
        (self.wall.elapsed().as_secs_f64(), ticks as f64 / ticks_per_second())
    }
}

/// User + system CPU time of this process and of its children that have been waited for
/// (`utime stime cutime cstime` of `/proc/self/stat`), in clock ticks; 0 where there is no such
/// file.
fn cpu_ticks() -> u64 {
    // utime, stime, cutime, cstime are fields 14 to 17.
    stat_fields().map_or(0, |fields| {
        fields
            .iter()
            .skip(11)
            .take(4)
            .filter_map(|field| field.parse::<u64>().ok())
            .sum()
    })
}

/// `getconf CLK_TCK`, 100 if that cannot be run.
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().ok())
            .filter(|&t| t > 0.0)
            .unwrap_or(100.0)
    })
}

/// The fields of `/proc/self/stat` after the command name (which may contain spaces): index 0
/// is field 3, `state`.
fn stat_fields() -> Option<Vec<String>> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

/// This process's nice value.
pub fn nice() -> Option<i64> {
    stat_fields().and_then(|fields| fields.get(16)?.parse().ok())
}

/// `/proc/loadavg`'s 1-, 5- and 15-minute figures.
pub fn load_average() -> Option<[f64; 3]> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let mut figures = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([figures.next()??, figures.next()??, figures.next()??])
}

/// fsyncs a file; returns how long it took, in seconds.
pub fn fsync(path: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    File::open(path)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("fsync of {}", path.display()))?;
    Ok(started.elapsed().as_secs_f64())
}

/// `sync`: every dirty page of the system to disk; returns how long it took, in seconds.
pub fn sync_all() -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = std::process::Command::new("sync").status().context("running sync")?;
    ensure!(status.success(), "sync exited with {status}");
    Ok(started.elapsed().as_secs_f64())
}

/// The middle value (the mean of the middle two for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Skips a benchmark that cannot run here with a message, or fails with `CI=true` (CI must never
/// pass by not measuring), as the tests do.
pub fn skip_or_fail(why: String) -> anyhow::Result<String> {
    if std::env::var("CI").as_deref() == Ok("true") {
        bail!("CI=true and {why}");
    }
    eprintln!("SKIPPED: {why}");
    Ok(why)
}

/// The first line of `program --version`, or why it cannot be run.
pub fn version(program: &str) -> Result<String, String> {
    let output = std::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program} cannot be run: {e}"))?;
    if !output.status.success() {
        return Err(format!("`{program} --version` exited with {}", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    // zstd's banner: "*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***".
    Ok(line.trim_matches(|c: char| c == '*' || c.is_whitespace()).to_string())
}

/// Runs `sh -c SCRIPT sh ARGS…` and fails unless it exits 0 *and* prints nothing on stderr:
/// POSIX `sh` has no `pipefail`, and the tools in the pipelines measured here are silent when
/// they succeed, so a failed first stage is recognised by its message.
pub async fn pipeline(script: &str, args: &[&Path]) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("sh")
        .args(["-c", script, "sh"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .context("running sh")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success() && stderr.trim().is_empty(),
        "`{script}` exited with {}: {}",
        output.status,
        stderr.trim()
    );
    Ok(())
}

/// Stores `part` as night `night`'s backup of the environment `bench` (the previous night's is
/// its parent), with a manifest file `manifest` written for it: what the repository benchmarks
/// time on Steward's side.
pub fn store_night(
    repo: &mut engine::repository::Repository,
    night: usize,
    part: engine::repository::Part,
    manifest: &Path,
) -> anyhow::Result<engine::repository::Written> {
    std::fs::write(manifest, format!("{{\"night\":{night}}}"))?;
    repo.write_backup(
        &engine::repository::BackupLabels {
            environment: "bench",
            backup_id: &format!("bench-night-{night}"),
            manifest: b"{}",
        },
        vec![part],
        manifest,
        &std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        &std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_orders() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(sides(0), [Side::Driver, Side::Reference]);
        assert_eq!(sides(1), [Side::Reference, Side::Driver]);
    }

    #[tokio::test]
    async fn a_failing_first_stage_of_a_pipeline_is_an_error() {
        let error = pipeline(r#"ls "$1" | cat"#, &[Path::new("/no/such/file")])
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("/no/such/file"), "{error}");
        pipeline(r#"test -d "$1" | cat"#, &[Path::new("/")]).await.unwrap();
    }
}
