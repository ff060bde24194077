//! Directory speed: the `directory` driver's backup *and restore* against the bare tools
//! underneath them, on a copy of the system's own files, both sides in one run.
//!
//! ```text
//! cargo run --release -p bench --bin directory-speed [-- --which backup|restore|both --runs 3]
//! ```
//!
//! The tree is a copy (`cp -a`, untimed) of `/usr/share`, `/usr/include`, `/usr/lib/gcc` and
//! `/usr/lib/python3` (or the `--source` directories given): real files of every size, about
//! 840 MB and 55,000 files on a Debian system, in a temporary directory on the file system both
//! sides write to.
//!
//! - **backup**: `engine::drivers::directory::backup` against
//!   `tar -cf - -C TREE . | zstd -T0 -3 -q -o OUT`. Target: driver ÷ reference throughput ≥ 1.0.
//! - **restore**: `engine::drivers::directory::restore_in_place` of the driver's archive into a
//!   path that does not exist yet (unpack beside, sync, rename) against
//!   `zstd -d -c -q ARCHIVE | tar -xf - -C DIR` of the same archive into an empty directory.
//!   Target: driver ÷ reference throughput ≥ 0.9. The driver syncs the new tree to disk before
//!   it swaps it in; `tar` does not, so a `sync` right after each reference run is timed apart
//!   and reported as a cross-check (*reference + sync*). Also timed, driver only: the same
//!   restore again, over the tree the first one left (moving the live tree aside and removing
//!   it are then part of the step, as in production).
//!
//! Throughput is the tree's file bytes ÷ wall-clock seconds. Driver and reference alternate,
//! the order swapped every run; every output is removed (and the removal synced) between runs,
//! untimed. Each restored tree is checked against the original (files, bytes, directories,
//! links). Nothing here fails because a figure is slow; the run fails only when it could not
//! measure.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, ensure};
use bench::run::{self, Clock, Quiet, Side, median, sides};
use clap::{Parser, ValueEnum};
use engine::drivers::directory;
use serde::Serialize;

const TARGET_BACKUP_RATIO: f64 = 1.0;
const TARGET_RESTORE_RATIO: f64 = 0.9;
/// The issue's minimum tree: 800 MB and 50,000 files.
const ISSUE_MIN_BYTES: u64 = 800_000_000;
const ISSUE_MIN_FILES: u64 = 50_000;
const MIB: f64 = (1u64 << 20) as f64;

#[derive(Parser)]
#[command(about = "The directory driver's backup and restore against tar | zstd and zstd -d | tar -x, same tree")]
struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    which: Which,
    /// Directories copied into the tree (repeat the option for several).
    #[arg(long = "source", default_values = ["/usr/share", "/usr/include", "/usr/lib/gcc", "/usr/lib/python3"])]
    sources: Vec<PathBuf>,
    /// Runs of each side (driver and reference alternate).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the JSON report goes (default: bench/results/directory-speed.json).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Backup,
    Restore,
    Both,
}

#[derive(Serialize)]
struct Report {
    benchmark: &'static str,
    run_at_unix_ms: u128,
    cpus: usize,
    /// `/proc/loadavg` when the run started: how busy the machine was.
    load_average_at_start: Option<[f64; 3]>,
    nice: Option<i64>,
    runs: usize,
    tools: String,
    /// The driver's zstd (the library's version).
    driver_tool: Option<String>,
    /// Set when it could not be measured here (a tool missing).
    skipped: Option<String>,
    tree: Option<Tree>,
    backup: Option<Comparison>,
    restore: Option<Comparison>,
    /// Driver only: `restore_in_place` over the tree a restore left (moving it aside and
    /// removing it included), seconds per run.
    restore_over_existing_s: Vec<f64>,
    restore_over_existing_median_s: Option<f64>,
    definitions: BTreeMap<&'static str, &'static str>,
}

/// What the tree holds; also what every restore must give back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct Tree {
    /// Bytes of the regular files.
    bytes: u64,
    files: u64,
    directories: u64,
    symlinks: u64,
}

/// Wall-clock times of one side.
#[derive(Serialize)]
struct Timings {
    seconds: Vec<f64>,
    best_s: f64,
    median_s: f64,
    /// User + system CPU seconds of this process and of the programs it waited for.
    cpu_seconds: Vec<f64>,
    cpu_median_s: f64,
}

impl Timings {
    fn of(seconds: Vec<f64>, cpu_seconds: Vec<f64>) -> Timings {
        Timings {
            best_s: seconds.iter().copied().fold(f64::INFINITY, f64::min),
            median_s: median(&seconds),
            seconds,
            cpu_median_s: median(&cpu_seconds),
            cpu_seconds,
        }
    }
}

#[derive(Serialize)]
struct Comparison {
    driver: Timings,
    reference: Timings,
    /// Seconds to make the reference's output durable right after each reference run (fsync
    /// of the archive for a backup, `sync` for a restore), not in `reference`.
    reference_sync_s: Vec<f64>,
    driver_mib_per_s_median: f64,
    reference_mib_per_s_median: f64,
    /// Driver throughput ÷ reference throughput (reference seconds ÷ driver seconds): of the
    /// medians (the headline), of the best runs, and per run pair.
    ratio_median: f64,
    ratio_best: f64,
    ratio_pairs: Vec<f64>,
    ratio_median_of_pairs: f64,
    /// The same against the reference + its sync, per run, median.
    ratio_median_vs_reference_with_sync: f64,
    cpu_ratio_median: f64,
    target_ratio_at_least: f64,
    target_met: bool,
}

/// Times collected for one comparison.
#[derive(Default)]
struct Runs {
    driver: (Vec<f64>, Vec<f64>),
    reference: (Vec<f64>, Vec<f64>),
    reference_sync: Vec<f64>,
}

impl Runs {
    /// Records a run's (wall-clock, CPU) seconds; returns the wall-clock ones.
    fn record(&mut self, side: Side, (wall, cpu): (f64, f64)) -> f64 {
        let into = if side == Side::Driver {
            &mut self.driver
        } else {
            &mut self.reference
        };
        into.0.push(wall);
        into.1.push(cpu);
        wall
    }

    /// The comparison of the runs, throughput as MiB of `bytes` per second.
    fn compare(self, target: f64, bytes: u64) -> Comparison {
        let driver = Timings::of(self.driver.0, self.driver.1);
        let reference = Timings::of(self.reference.0, self.reference.1);
        let pairs: Vec<f64> = reference
            .seconds
            .iter()
            .zip(&driver.seconds)
            .map(|(r, d)| r / d)
            .collect();
        let with_sync: Vec<f64> = reference
            .seconds
            .iter()
            .zip(&self.reference_sync)
            .map(|(r, s)| r + s)
            .collect();
        let ratio_median = reference.median_s / driver.median_s;
        let mib = bytes as f64 / MIB;
        Comparison {
            driver_mib_per_s_median: mib / driver.median_s,
            reference_mib_per_s_median: mib / reference.median_s,
            ratio_median,
            ratio_best: reference.best_s / driver.best_s,
            ratio_median_of_pairs: median(&pairs),
            ratio_pairs: pairs,
            ratio_median_vs_reference_with_sync: median(&with_sync) / driver.median_s,
            cpu_ratio_median: driver.cpu_median_s / reference.cpu_median_s,
            target_ratio_at_least: target,
            target_met: ratio_median >= target,
            reference_sync_s: self.reference_sync,
            driver,
            reference,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.runs > 0, "--runs must be at least 1");
    let load_average_at_start = run::load_average();
    let mut report = Report {
        benchmark: "directory-speed",
        run_at_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        load_average_at_start,
        nice: run::nice(),
        runs: args.runs,
        tools: String::new(),
        driver_tool: None,
        skipped: None,
        tree: None,
        backup: None,
        restore: None,
        restore_over_existing_s: Vec::new(),
        restore_over_existing_median_s: None,
        definitions: definitions(),
    };
    match (run::version("tar"), run::version("zstd")) {
        (Ok(tar), Ok(zstd)) => {
            report.tools = format!("{tar}; {zstd}");
            measure(&args, &mut report).await?;
        }
        (Err(why), _) | (_, Err(why)) => report.skipped = Some(run::skip_or_fail(why)?),
    }
    print_summary(&report);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results/directory-speed.json"));
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nWritten to {}", out.display());
    Ok(())
}

async fn measure(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    // Everything in one temporary directory, removed when this returns (or fails).
    let work = tempfile::Builder::new()
        .prefix("steward-bench-dirspeed-")
        .tempdir()
        .context("creating a temporary directory")?;
    let tree_root = work.path().join("tree");
    fs::create_dir_all(&tree_root)?;
    let sources: Vec<&PathBuf> = args.sources.iter().filter(|s| s.is_dir()).collect();
    ensure!(
        !sources.is_empty(),
        "none of the sources {:?} is a directory",
        args.sources
    );
    eprintln!("copying {sources:?} into {}", tree_root.display());
    let status = std::process::Command::new("cp")
        .arg("-a")
        .args(&sources)
        .arg(&tree_root)
        .status()
        .context("running cp")?;
    ensure!(status.success(), "cp -a exited with {status}");
    let tree = census(&tree_root)?;
    report.tree = Some(tree);
    eprintln!(
        "tree: {} files ({:.0} MB), {} directories, {} symbolic links",
        tree.files,
        tree.bytes as f64 / 1e6,
        tree.directories,
        tree.symlinks
    );
    if tree.bytes < ISSUE_MIN_BYTES || tree.files < ISSUE_MIN_FILES {
        eprintln!("NOTE: the tree is smaller than the issue's (800 MB and 50,000 files); add --source directories");
    }
    run::sync_all()?;
    let quiet = Quiet::new(work.path())?;

    if matches!(args.which, Which::Backup | Which::Both) {
        let out_dir = work.path().join("backup-driver");
        let reference_out = work.path().join("backup-reference.tar.zst");
        let mut runs = Runs::default();
        for run in 0..args.runs {
            for side in sides(run) {
                let clock = Clock::start();
                let took = if side == Side::Driver {
                    fs::create_dir_all(&out_dir)?;
                    let artifact = directory::backup(&tree_root, &[], &[], &out_dir, &quiet.ctx("files"))
                        .await
                        .with_context(|| format!("backup driver, run {}", run + 1))?;
                    let took = runs.record(side, clock.read());
                    ensure!(
                        artifact.details["bytes_in"].as_u64() == Some(tree.bytes),
                        "the driver archived {} bytes, the tree has {}",
                        artifact.details["bytes_in"],
                        tree.bytes
                    );
                    report.driver_tool = artifact.tool;
                    fs::remove_dir_all(&out_dir)?;
                    took
                } else {
                    run::pipeline(
                        r#"tar -cf - -C "$1" . | zstd -T0 -3 -q -o "$2""#,
                        &[&tree_root, &reference_out],
                    )
                    .await
                    .with_context(|| format!("backup reference, run {}", run + 1))?;
                    let took = runs.record(side, clock.read());
                    runs.reference_sync.push(run::fsync(&reference_out)?);
                    fs::remove_file(&reference_out)?;
                    took
                };
                eprintln!("backup: run {}/{}: {} {took:.2} s", run + 1, args.runs, side.name());
            }
        }
        report.backup = Some(runs.compare(TARGET_BACKUP_RATIO, tree.bytes));
    }

    if matches!(args.which, Which::Restore | Which::Both) {
        // The archive both sides restore: the driver's own, made once, untimed.
        let archive_dir = work.path().join("archive");
        fs::create_dir_all(&archive_dir)?;
        let artifact = directory::backup(&tree_root, &[], &[], &archive_dir, &quiet.ctx("files"))
            .await
            .context("making the archive to restore")?;
        report.driver_tool = artifact.tool.clone();
        let archive = archive_dir.join(&artifact.file);
        let driver_parent = work.path().join("restore-driver");
        let driver_target = driver_parent.join("tree");
        let reference_dir = work.path().join("restore-reference");
        fs::create_dir_all(&driver_parent)?;
        // Restored trees are kept (moved aside) until every pair has run: ext4 skips inodes
        // freed in the last minutes when it allocates new ones, reading their inode blocks, so
        // creating files right after removing a tree of 60,000 costs several times the CPU
        // (seen in `perf`: `recently_deleted` under `ext4_create`), on both sides but unevenly.
        let kept = work.path().join("kept");
        fs::create_dir_all(&kept)?;
        let mut runs = Runs::default();
        for run in 0..args.runs {
            for side in sides(run) {
                let restored = if side == Side::Driver {
                    let clock = Clock::start();
                    directory::restore_in_place(
                        directory::TreeSource::Archive(archive.clone()),
                        &driver_target,
                        &[],
                        &[],
                        &quiet.ctx("files"),
                    )
                    .await
                    .with_context(|| format!("restore driver, run {}", run + 1))?;
                    runs.record(side, clock.read());
                    driver_target.clone()
                } else {
                    fs::create_dir_all(&reference_dir)?;
                    let clock = Clock::start();
                    run::pipeline(r#"zstd -d -c -q "$1" | tar -xf - -C "$2""#, &[&archive, &reference_dir])
                        .await
                        .with_context(|| format!("restore reference, run {}", run + 1))?;
                    runs.record(side, clock.read());
                    runs.reference_sync.push(run::sync_all()?);
                    reference_dir.clone()
                };
                check(&restored, tree, side)?;
                fs::rename(&restored, kept.join(format!("{run}-{}", side.name())))?;
                run::sync_all()?;
                let took = if side == Side::Driver {
                    &runs.driver.0
                } else {
                    &runs.reference.0
                };
                eprintln!(
                    "restore: run {}/{}: {} {:.2} s",
                    run + 1,
                    args.runs,
                    side.name(),
                    took[took.len() - 1]
                );
            }
        }
        // Production's case, once, last: the live tree is there, moved aside and removed.
        fs::rename(kept.join("0-driver"), &driver_target)?;
        let clock = Clock::start();
        directory::restore_in_place(
            directory::TreeSource::Archive(archive.clone()),
            &driver_target,
            &[],
            &[],
            &quiet.ctx("files"),
        )
        .await
        .context("restore driver over the tree")?;
        let over = clock.read().0;
        report.restore_over_existing_s.push(over);
        eprintln!("restore: driver over the existing tree {over:.2} s");
        check(&driver_target, tree, Side::Driver)?;
        directory::remove_tree(&driver_target)?;
        directory::remove_tree(&kept)?;
        report.restore = Some(runs.compare(TARGET_RESTORE_RATIO, tree.bytes));
        report.restore_over_existing_median_s = Some(median(&report.restore_over_existing_s));
    }
    quiet.close().await;
    // Much faster than the temporary directory's own (one-thread) removal.
    directory::remove_tree(&tree_root).with_context(|| format!("removing {}", tree_root.display()))?;
    Ok(())
}

/// Counts what is under `root` (not following links).
fn census(root: &Path) -> anyhow::Result<Tree> {
    fn visit(dir: &Path, tree: &mut Tree) -> anyhow::Result<()> {
        for child in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let child = child?;
            let kind = child.file_type()?;
            if kind.is_dir() {
                tree.directories += 1;
                visit(&child.path(), tree)?;
            } else if kind.is_symlink() {
                tree.symlinks += 1;
            } else if kind.is_file() {
                tree.files += 1;
                tree.bytes += child.metadata()?.len();
            }
        }
        Ok(())
    }
    let mut tree = Tree {
        bytes: 0,
        files: 0,
        directories: 0,
        symlinks: 0,
    };
    visit(root, &mut tree)?;
    Ok(tree)
}

/// A restored tree holds what the original does.
fn check(restored: &Path, tree: Tree, side: Side) -> anyhow::Result<()> {
    let found = census(restored)?;
    ensure!(
        found == tree,
        "the {} restored {found:?}, the tree is {tree:?}",
        side.name()
    );
    Ok(())
}

fn definitions() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "tree",
            "a cp -a copy of the --source directories (default /usr/share, /usr/include, /usr/lib/gcc, /usr/lib/python3); bytes are \
             the regular files' bytes",
        ),
        (
            "backup.driver",
            "engine::drivers::directory::backup of the tree into a fresh directory (walk, tar, zstd -3 on all \
             cores, SHA-256, fsync of the artifact)",
        ),
        (
            "backup.reference",
            "sh -c 'tar -cf - -C TREE . | zstd -T0 -3 -q -o OUT'; reference_sync_s: its output's fsync, timed after",
        ),
        (
            "restore.driver",
            "engine::drivers::directory::restore_in_place of the driver's archive into a path that does not exist \
             yet: unpack beside it, syncfs, rename, fsync of the parent",
        ),
        (
            "restore.reference",
            "sh -c 'zstd -d -c -q ARCHIVE | tar -xf - -C DIR' of the same archive into an empty directory on the \
             same file system; reference_sync_s: a `sync` right after, timed apart",
        ),
        (
            "ratio_*",
            "driver throughput / reference throughput = reference seconds / driver seconds; of the medians \
             (headline, target_met), of the best runs, per run pair; *_with_sync uses reference + its sync",
        ),
        (
            "restore_over_existing_s",
            "driver only, once after every pair: restore_in_place over a restored tree (the live tree moved \
             aside and removed are part of it)",
        ),
        (
            "cpu_seconds",
            "user + system CPU of this process's threads and of the programs it waited for (/proc/self/stat)",
        ),
    ])
}

fn print_summary(report: &Report) {
    if let Some(why) = &report.skipped {
        println!("\nskipped: {why}");
        return;
    }
    let Some(tree) = report.tree else {
        return;
    };
    println!(
        "\nTree: {:.0} MB ({:.0} MiB) in {} files, {} directories, {} symbolic links; {} runs each side, alternating",
        tree.bytes as f64 / 1e6,
        tree.bytes as f64 / MIB,
        tree.files,
        tree.directories,
        tree.symlinks,
        report.runs
    );
    for (name, comparison, reference) in [
        ("backup", &report.backup, "tar | zstd -T0 -3"),
        ("restore", &report.restore, "zstd -d | tar -x"),
    ] {
        let Some(c) = comparison else { continue };
        println!("\n{name}: driver vs `{reference}`");
        println!(
            "  {:<10} {:>9} {:>9} {:>11} {:>11}",
            "", "median", "best", "MiB/s med", "CPU median"
        );
        for (side, t, mib_s) in [
            ("driver", &c.driver, c.driver_mib_per_s_median),
            ("reference", &c.reference, c.reference_mib_per_s_median),
        ] {
            println!(
                "  {side:<10} {:>7.2} s {:>7.2} s {:>11.0} {:>9.2} s",
                t.median_s, t.best_s, mib_s, t.cpu_median_s
            );
        }
        println!(
            "  throughput driver/reference: median {:.3}, best {:.3}, median of run pairs {:.3}; against reference \
             + sync {:.3} (sync median {:.2} s); CPU driver/reference {:.2}",
            c.ratio_median,
            c.ratio_best,
            c.ratio_median_of_pairs,
            c.ratio_median_vs_reference_with_sync,
            median(&c.reference_sync_s),
            c.cpu_ratio_median
        );
        println!(
            "  target ≥ {}: {}",
            c.target_ratio_at_least,
            if c.target_met { "met" } else { "NOT met" }
        );
    }
    if let Some(over) = report.restore_over_existing_median_s {
        println!("\nrestore over the existing tree (driver only, old tree removed): median {over:.2} s");
    }
    if let Some([one, five, fifteen]) = report.load_average_at_start {
        println!(
            "\n{} CPUs; load average at the start {one:.2} {five:.2} {fifteen:.2}; tools: {}; driver: {}",
            report.cpus,
            report.tools,
            report.driver_tool.as_deref().unwrap_or("?")
        );
    }
}
