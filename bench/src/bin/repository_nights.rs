//! Repository nights: Steward's repository against restic and borg on the same tree, a first
//! backup and then "nights" with 1% of the files changed, all in one run; storage after the
//! last night, the nightly times, the first backup's throughput (with `tar | zstd` beside it)
//! and a restore against `restic restore`.
//!
//! ```text
//! cargo run --release -p bench --bin repository-nights [-- --nights 5 --change-percent 1]
//! ```
//!
//! The tree is a copy (`cp -a`, untimed) of `/usr/share`, `/usr/include`, `/usr/lib/gcc` and
//! `/usr/lib/python3` (or the `--source` directories): about 840 MB and 55,000 files on a
//! Debian system. Each side has a repository of its own in the same temporary directory, and its
//! cache there too (a cold cache would favour nobody).
//!
//! - **Steward**: what a backup job does for a directory resource — `directory::select` (the
//!   globs' walk) and `Repository::write_backup` with the previous backup as parent — and, for
//!   the restore, `Repository::restore_part` into an empty directory.
//! - **restic** 0.14 (Debian): `restic backup TREE` (its parent found by path), `restic restore
//!   latest --target`.
//! - **borg** 1.2 (Debian): `borg create --compression zstd,3 REPO::night-N TREE` (restic's and
//!   Steward's compression is zstd too), repokey encryption.
//! - `tar -cf - -C TREE . | zstd -T0 -3 -q -o OUT` once, beside the first backups, as the floor
//!   of a full copy.
//!
//! A night changes `--change-percent` of the regular files (every N-th file in walk order): a
//! 4 KiB block in its middle is overwritten (files under 4 KiB are rewritten) — new content, new
//! mtime — and `sync` (untimed). The sides run in turn, the order rotated every night. Storage
//! is `du -sb` of each repository. Nothing fails because a figure is slow.

use std::{
    collections::BTreeMap,
    fs,
    io::{Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, ensure};
use bench::run::{self, median};
use clap::Parser;
use engine::{drivers::directory, repository};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "bench-password";
const MB: f64 = 1_000_000.0;

#[derive(Parser)]
#[command(about = "Steward's repository against restic and borg: first backup, nights of 1% changes, storage, restore")]
struct Args {
    /// Directories copied into the tree (repeat the option for several).
    #[arg(long = "source", default_values = ["/usr/share", "/usr/include", "/usr/lib/gcc", "/usr/lib/python3"])]
    sources: Vec<PathBuf>,
    /// Nights after the first backup.
    #[arg(long, default_value_t = 5)]
    nights: usize,
    /// Percent of the regular files a night changes.
    #[arg(long, default_value_t = 1.0)]
    change_percent: f64,
    /// Where the JSON report goes (default: bench/results/repository-nights.json).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Report {
    benchmark: &'static str,
    run_at_unix_ms: u128,
    cpus: usize,
    load_average_at_start: Option<[f64; 3]>,
    tools: BTreeMap<&'static str, String>,
    tree_bytes: u64,
    tree_files: u64,
    nights: usize,
    files_changed_per_night: usize,
    /// Seconds per backup, the first one first, per side.
    seconds: BTreeMap<&'static str, Vec<f64>>,
    tar_zstd_first_s: f64,
    /// `du -sb` of each repository after the last night.
    storage_bytes: BTreeMap<&'static str, u64>,
    restore_seconds: BTreeMap<&'static str, f64>,
    /// Steward ÷ restic (and ÷ borg): storage, the nights' median time, first-backup
    /// throughput (restic's time ÷ Steward's), restore throughput likewise.
    ratios: BTreeMap<&'static str, f64>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Tool {
    Steward,
    Restic,
    Borg,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Steward => "steward",
            Tool::Restic => "restic",
            Tool::Borg => "borg",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut tools = BTreeMap::new();
    for program in ["borg", "tar", "zstd"] {
        let version = run::version(program).map_err(anyhow::Error::msg)?;
        tools.insert(program, version);
    }
    // restic has no --version.
    let restic = Command::new("restic")
        .arg("version")
        .output()
        .context("restic cannot be run")?;
    tools.insert("restic", String::from_utf8_lossy(&restic.stdout).trim().to_string());
    let load = run::load_average();
    let work = tempfile::Builder::new().prefix("steward-repo-bench-").tempdir()?;
    let tree = work.path().join("tree");
    fs::create_dir_all(&tree)?;
    for source in &args.sources {
        let status = Command::new("cp").arg("-a").arg(source).arg(&tree).status()?;
        ensure!(status.success(), "cp -a {} exited with {status}", source.display());
    }
    let selection = directory::select(&tree, &[], &[], Path::new("/nonexistent"), &CancellationToken::new())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let files: Vec<PathBuf> = {
        let mut regular: Vec<PathBuf> = selection
            .paths
            .iter()
            .filter(|rel| tree.join(rel).symlink_metadata().is_ok_and(|m| m.is_file()))
            .cloned()
            .collect();
        regular.sort();
        regular
    };
    let step = (100.0 / args.change_percent).round().max(1.0) as usize;
    let changed_per_night = files.len().div_ceil(step);
    eprintln!(
        "tree: {:.0} MB, {} files; {} files change each night",
        selection.bytes as f64 / MB,
        selection.files,
        changed_per_night
    );
    run::sync_all()?;

    let repos = Repos::init(work.path())?;
    let mut seconds: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let tar_zstd_first_s = {
        let out = work.path().join("tree.tar.zst");
        let started = Instant::now();
        run::pipeline("tar -cf - -C \"$1\" . | zstd -T0 -3 -q -o \"$2\"", &[&tree, &out]).await?;
        run::fsync(&out)?;
        let took = started.elapsed().as_secs_f64();
        fs::remove_file(&out)?;
        run::sync_all()?;
        took
    };
    for night in 0..=args.nights {
        if night > 0 {
            change_files(&tree, &files, step, night)?;
            run::sync_all()?;
        }
        let mut order = [Tool::Steward, Tool::Restic, Tool::Borg];
        order.rotate_left(night % 3);
        for tool in order {
            let took = repos.back_up(tool, &tree, night)?;
            eprintln!("night {night}: {} {took:.1} s", tool.name());
            seconds.entry(tool.name()).or_default().push(took);
            run::sync_all()?;
        }
    }
    let storage_bytes: BTreeMap<&'static str, u64> = [Tool::Steward, Tool::Restic, Tool::Borg]
        .into_iter()
        .map(|tool| Ok((tool.name(), du(&repos.dir(tool))?)))
        .collect::<anyhow::Result<_>>()?;

    // Restores of the last backup into empty directories, each checked against the tree as
    // the last night left it.
    let last = directory::select(&tree, &[], &[], Path::new("/nonexistent"), &CancellationToken::new())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut restore_seconds = BTreeMap::new();
    for tool in [Tool::Restic, Tool::Steward] {
        let into = work.path().join(format!("restored-{}", tool.name()));
        let took = repos.restore(tool, &into, args.nights)?;
        let restored = directory::select(&into, &[], &[], Path::new("/nonexistent"), &CancellationToken::new())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(
            restored.files == last.files && restored.bytes == last.bytes,
            "{} restored {} files ({} bytes), the tree has {} ({} bytes)",
            tool.name(),
            restored.files,
            restored.bytes,
            last.files,
            last.bytes
        );
        restore_seconds.insert(tool.name(), took);
        fs::remove_dir_all(&into)?;
        run::sync_all()?;
    }

    let nights_median = |tool: &str| median(&seconds[tool][1..]);
    let mut ratios = BTreeMap::new();
    ratios.insert(
        "storage_vs_restic",
        storage_bytes["steward"] as f64 / storage_bytes["restic"] as f64,
    );
    ratios.insert(
        "storage_vs_borg",
        storage_bytes["steward"] as f64 / storage_bytes["borg"] as f64,
    );
    ratios.insert(
        "night_time_vs_restic",
        nights_median("steward") / nights_median("restic"),
    );
    ratios.insert("night_time_vs_borg", nights_median("steward") / nights_median("borg"));
    ratios.insert(
        "first_throughput_vs_restic",
        seconds["restic"][0] / seconds["steward"][0],
    );
    ratios.insert("first_throughput_vs_tar_zstd", tar_zstd_first_s / seconds["steward"][0]);
    ratios.insert(
        "restore_throughput_vs_restic",
        restore_seconds["restic"] / restore_seconds["steward"],
    );

    let report = Report {
        benchmark: "repository-nights",
        run_at_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average_at_start: load,
        tools,
        tree_bytes: selection.bytes,
        tree_files: selection.files,
        nights: args.nights,
        files_changed_per_night: changed_per_night,
        seconds,
        tar_zstd_first_s,
        storage_bytes,
        restore_seconds,
        ratios,
    };
    print_report(&report);
    let out = args
        .out
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("results/repository-nights.json"));
    fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("written to {}", out.display());
    Ok(())
}

fn print_report(report: &Report) {
    println!(
        "tree {:.0} MB, {} files; {} nights of {} changed files",
        report.tree_bytes as f64 / MB,
        report.tree_files,
        report.nights,
        report.files_changed_per_night
    );
    println!(
        "{:<8} {:>9} {:>13} {:>12} {:>10}",
        "", "first s", "nights med s", "storage MB", "restore s"
    );
    for tool in ["steward", "restic", "borg"] {
        let times = &report.seconds[tool];
        println!(
            "{tool:<8} {:>9.1} {:>13.2} {:>12.0} {:>10}",
            times[0],
            median(&times[1..]),
            report.storage_bytes[tool] as f64 / MB,
            report
                .restore_seconds
                .get(tool)
                .map_or("-".to_string(), |s| format!("{s:.1}"))
        );
    }
    println!("tar | zstd -3 of the first tree: {:.1} s", report.tar_zstd_first_s);
    for (name, ratio) in &report.ratios {
        println!("  {name:<32} {ratio:.2}");
    }
}

/// Overwrites a 4 KiB block in the middle of every `step`-th file (offset by the night, so each
/// night changes other files).
fn change_files(tree: &Path, files: &[PathBuf], step: usize, night: usize) -> anyhow::Result<()> {
    let block: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(night as u32 * 97) >> 13) as u8)
        .collect();
    for rel in files.iter().skip(night % step).step_by(step) {
        let path = tree.join(rel);
        let len = fs::metadata(&path)?.len();
        if len < block.len() as u64 {
            fs::write(&path, &block[..])?;
            continue;
        }
        let mut file = fs::OpenOptions::new().write(true).open(&path)?;
        file.seek(SeekFrom::Start(len / 2 - (len / 2).min(2048)))?;
        file.write_all(&block)?;
    }
    Ok(())
}

fn du(dir: &Path) -> anyhow::Result<u64> {
    let out = Command::new("du").arg("-sb").arg(dir).output()?;
    ensure!(out.status.success(), "du exited with {}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .context("du's output")
}

/// The three repositories, each with its cache beside it.
struct Repos {
    root: PathBuf,
}

impl Repos {
    fn init(root: &Path) -> anyhow::Result<Repos> {
        let repos = Repos {
            root: root.to_path_buf(),
        };
        repository::open(
            &repository::Location::Local(repos.dir(Tool::Steward)),
            PASSWORD,
            Some(&root.join("steward-cache")),
            true,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        repos.tool(Tool::Restic, &["init"])?;
        repos.tool(Tool::Borg, &["init", "--encryption", "repokey"])?;
        Ok(repos)
    }

    /// Steward's repository, opened.
    fn steward(&self) -> anyhow::Result<repository::Repository> {
        repository::open(
            &repository::Location::Local(self.dir(Tool::Steward)),
            PASSWORD,
            Some(&self.root.join("steward-cache")),
            false,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn dir(&self, tool: Tool) -> PathBuf {
        self.root.join(format!("repo-{}", tool.name()))
    }

    /// Runs restic or borg on its repository; fails with its stderr.
    fn tool(&self, tool: Tool, args: &[&str]) -> anyhow::Result<()> {
        let repo = self.dir(tool);
        let mut command = Command::new(tool.name());
        match tool {
            Tool::Restic => {
                command
                    .arg("-r")
                    .arg(&repo)
                    .args(["--quiet"])
                    .args(args)
                    .env("RESTIC_PASSWORD", PASSWORD)
                    .env("RESTIC_CACHE_DIR", self.root.join("restic-cache"));
            }
            Tool::Borg => {
                command
                    .args(args)
                    .env("BORG_REPO", &repo)
                    .env("BORG_PASSPHRASE", PASSWORD)
                    .env("BORG_BASE_DIR", self.root.join("borg-home"));
            }
            Tool::Steward => unreachable!("Steward is a library here"),
        }
        let out = command.stdin(Stdio::null()).stdout(Stdio::null()).output()?;
        ensure!(
            out.status.success(),
            "{} {args:?}: {}",
            tool.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn back_up(&self, tool: Tool, tree: &Path, night: usize) -> anyhow::Result<f64> {
        let started = Instant::now();
        match tool {
            Tool::Steward => {
                let stop = CancellationToken::new();
                let selection = directory::select(tree, &[], &[], Path::new("/nonexistent"), &stop)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut repo = self.steward()?;
                let part = repository::Part {
                    name: "tree".into(),
                    source: tree.to_path_buf(),
                    keep: Some(selection.paths),
                };
                let written = run::store_night(&mut repo, night, part, &self.root.join("manifest.json"))?;
                // What the repository did: how many files the parent spared, what was new.
                eprintln!(
                    "  steward: {} files, {} unchanged since the parent, {:.1} MB new",
                    written.files,
                    written.unchanged_files,
                    written.added_bytes as f64 / MB
                );
            }
            Tool::Restic => self.tool(tool, &["backup", &tree.display().to_string()])?,
            Tool::Borg => self.tool(
                tool,
                &[
                    "create",
                    "--compression",
                    "zstd,3",
                    &format!("::night-{night}"),
                    &tree.display().to_string(),
                ],
            )?,
        }
        // Timed until the data is on disk, for every tool alike.
        sync();
        Ok(started.elapsed().as_secs_f64())
    }

    fn restore(&self, tool: Tool, into: &Path, last_night: usize) -> anyhow::Result<f64> {
        let started = Instant::now();
        match tool {
            Tool::Steward => {
                let mut repo = self.steward()?;
                repo.restore_part(&format!("bench-night-{last_night}"), "tree", into)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Tool::Restic => {
                // restic restores the tree under its absolute path below the target.
                self.tool(tool, &["restore", "latest", "--target", &into.display().to_string()])?;
            }
            Tool::Borg => unreachable!("the restore is compared with restic's"),
        }
        sync();
        let took = started.elapsed().as_secs_f64();
        if tool == Tool::Restic {
            // Compare what restic wrote: the tree below its absolute path.
            let nested = into.join(self.root.join("tree").strip_prefix("/").unwrap_or(Path::new("")));
            let flat = into.with_extension("flat");
            fs::rename(&nested, &flat)?;
            fs::remove_dir_all(into)?;
            fs::rename(&flat, into)?;
        }
        Ok(took)
    }
}

/// Writes what is buffered: each timing includes getting its data onto the disk, and one step's
/// writeback is not charged to the next.
fn sync() {
    let _ = Command::new("sync").status();
}
