//! Backup drivers: the `directory` and `postgres` drivers against the bare tools underneath
//! them, run on the same input in the same process.
//!
//! ```text
//! cargo run --release -p bench --bin backup-drivers [-- --which directory|postgres|both --size-mib 1024 --runs 3]
//! ```
//!
//! **directory**: a generated tree in a temporary directory (one big text-like file that zstd
//! shrinks about 2.6×, plus 4,000 small files in 200 nested directories), archived by
//! `engine::drivers::directory::backup` and by the reference pipeline
//! `tar -cf - -C TREE . | zstd -T0 -3 -q -o OUT` (run by `sh -c`). Both figures are MiB/s of
//! input (the tree's file bytes); the issue's target is driver ÷ reference throughput ≥ 0.9.
//!
//! **postgres**: a fresh database (`steward_bench_<time>_<random>` on the server named by
//! `STEWARD_TEST_POSTGRES_URL`) filled with three tables and their indexes, dumped by
//! `engine::drivers::postgres::backup` and by plain `pg_dump -Fc --dbname URL -f OUT`. The
//! issue's target is driver ÷ reference time ≤ 1.05. The database is dropped at the end, also
//! when a run fails; databases of aborted runs older than an hour are dropped by the next run.
//!
//! Driver and reference alternate, `--runs` times each, the order swapped every run (driver
//! first, then reference first, …) so neither always runs on a warmer cache. Ratios are taken of
//! the medians (headline) and of the best runs. The drivers fsync their artifacts; so does
//! `pg_dump -f` (its default), `tar | zstd` does not: the reference's output is fsynced right
//! after each reference run, timed separately, and reported as a cross-check (it also keeps one
//! run's writeback out of the next run). CPU time (user + system, this process and the programs
//! it waited for) is reported beside wall-clock time: on a busy machine it moves much less.
//!
//! Nothing here fails because a figure is slow; the run fails only when it could not measure.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{BufWriter, Write as _},
    path::{Path, PathBuf},
    process::Stdio,
    time::Instant,
};

use anyhow::{Context as _, bail, ensure};
use bench::run::{Clock, Quiet, Side, fsync, load_average, median, nice, sides, skip_or_fail, sync_all, version};
use clap::{Parser, ValueEnum};
use engine::{
    config::SecretSource,
    drivers::{self, Artifact},
};
use serde::Serialize;
use sqlx::{Connection as _, PgConnection};

/// The issue's targets.
const TARGET_DIRECTORY_RATIO: f64 = 0.9;
const TARGET_POSTGRES_RATIO: f64 = 1.05;
/// Small files in the generated tree, spread over `SMALL_DIRS` directories two levels deep.
const SMALL_FILES: u64 = 4000;
const SMALL_DIRS: u64 = 200;
/// Average small-file size (sizes are uniform in 0..=2×this); smaller when the tree is small.
const SMALL_FILE_AVERAGE: u64 = 16 << 10;
/// Benchmark databases older than this are leftovers of aborted runs and are dropped.
const STALE_DATABASE_SECS: u64 = 3600;
const DATABASE_PREFIX: &str = "steward_bench_";
const MIB: f64 = (1u64 << 20) as f64;

#[derive(Parser)]
#[command(about = "The directory and postgres backup drivers against tar | zstd and pg_dump, same input")]
struct Args {
    /// Which drivers to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    which: Which,
    /// Size of the generated directory tree (file bytes), MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Approximate size of the benchmark database (tables and indexes), MiB.
    #[arg(long, default_value_t = 200)]
    pg_mib: u64,
    /// Runs of each side (driver and reference alternate).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the JSON report goes (default: bench/results/backup-drivers.json, or
    /// bench/results/postgres-restore.json for `--which postgres-restore`).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Directory,
    Postgres,
    /// The directory and postgres backups.
    Both,
    /// The postgres driver's restore against plain `pg_restore`.
    PostgresRestore,
    /// All three.
    All,
}

#[derive(Serialize)]
struct Report {
    benchmark: &'static str,
    run_at_unix_ms: u128,
    cpus: usize,
    /// `/proc/loadavg`'s 1-, 5- and 15-minute figures when the run started: how busy the machine
    /// was.
    load_average_at_start: Option<[f64; 3]>,
    /// This process's nice value (e.g. -10 when run under `nice -n -10`).
    nice: Option<i64>,
    runs: usize,
    /// What each figure is, for whoever reads only the JSON.
    definitions: BTreeMap<&'static str, &'static str>,
    directory: Option<DirectoryReport>,
    postgres: Option<PostgresReport>,
    /// The postgres driver's restore against `pg_restore` (same fields; no fsync figures).
    postgres_restore: Option<PostgresReport>,
}

/// Wall-clock times of one side (driver or reference).
#[derive(Serialize)]
struct Timings {
    /// Seconds per run, in the order run.
    seconds: Vec<f64>,
    best_s: f64,
    median_s: f64,
    /// CPU seconds (user + system) per run: of this process's threads and of the programs it
    /// started, as `/proc/self/stat` counts them (10 ms ticks). The PostgreSQL server's own work
    /// is not in it.
    cpu_seconds: Vec<f64>,
    cpu_median_s: f64,
    /// The output's size (the last run's; every run writes the same input).
    output_bytes: u64,
}

impl Timings {
    fn of(seconds: Vec<f64>, cpu_seconds: Vec<f64>, output_bytes: u64) -> Timings {
        Timings {
            best_s: seconds.iter().copied().fold(f64::INFINITY, f64::min),
            median_s: median(&seconds),
            seconds,
            cpu_median_s: median(&cpu_seconds),
            cpu_seconds,
            output_bytes,
        }
    }
}

#[derive(Default, Serialize)]
struct DirectoryReport {
    /// Set when it could not be measured here (a tool missing).
    skipped: Option<String>,
    tree: Option<Tree>,
    /// `engine::drivers::directory::backup`.
    driver: Option<Timings>,
    driver_tool: Option<String>,
    /// `tar -cf - -C TREE . | zstd -T0 -3 -q -o OUT`.
    reference: Option<Timings>,
    reference_tools: Option<String>,
    /// fsync of the reference's output after each reference run (not in `reference`).
    reference_fsync_s: Vec<f64>,
    driver_mib_per_s_median: Option<f64>,
    driver_mib_per_s_best: Option<f64>,
    reference_mib_per_s_median: Option<f64>,
    reference_mib_per_s_best: Option<f64>,
    /// Driver throughput ÷ reference throughput, of the medians and of the best runs.
    ratio_median: Option<f64>,
    ratio_best: Option<f64>,
    /// The ratio of each run's driver and reference (the two ran one right after the other, so
    /// under the same load), in run order, and their median.
    ratio_pairs: Vec<f64>,
    ratio_median_of_pairs: Option<f64>,
    /// The same against reference + its fsync, run by run, median.
    ratio_median_vs_reference_with_fsync: Option<f64>,
    /// Driver CPU seconds ÷ reference CPU seconds, of the medians: less noisy than wall-clock
    /// time on a busy machine (work for the same result).
    cpu_ratio_median: Option<f64>,
    target_ratio_at_least: f64,
    target_met: Option<bool>,
}

#[derive(Clone, Copy, Serialize)]
struct Tree {
    /// Bytes of all files (the input both sides read).
    bytes: u64,
    files: u64,
    directories: u64,
    big_file_bytes: u64,
    small_files: u64,
    small_files_bytes: u64,
}

#[derive(Default, Serialize)]
struct PostgresReport {
    /// Set when it could not be measured here (PostgreSQL unreachable, pg_dump missing).
    skipped: Option<String>,
    database: Option<Database>,
    /// `engine::drivers::postgres::backup`.
    driver: Option<Timings>,
    driver_tool: Option<String>,
    /// `pg_dump -Fc --dbname URL -f OUT`.
    reference: Option<Timings>,
    /// fsync of the reference's output after each reference run (not in `reference`).
    reference_fsync_s: Vec<f64>,
    /// Driver time ÷ reference time, of the medians and of the best runs.
    ratio_median: Option<f64>,
    ratio_best: Option<f64>,
    /// The ratio of each run's driver and reference (the two ran one right after the other, so
    /// under the same load), in run order, and their median.
    ratio_pairs: Vec<f64>,
    ratio_median_of_pairs: Option<f64>,
    /// The same against reference + its fsync, run by run, median.
    ratio_median_vs_reference_with_fsync: Option<f64>,
    /// Driver CPU seconds ÷ reference CPU seconds, of the medians: less noisy than wall-clock
    /// time on a busy machine (work for the same result).
    cpu_ratio_median: Option<f64>,
    target_ratio_at_most: f64,
    target_met: Option<bool>,
}

#[derive(Clone, Serialize)]
struct Database {
    server_version: String,
    /// `pg_database_size` after loading, VACUUM (FREEZE, ANALYZE) and CHECKPOINT.
    bytes: i64,
    /// Rows per table.
    rows: BTreeMap<&'static str, i64>,
    tables_bytes: i64,
    indexes_bytes: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let load_average_at_start = load_average();
    ensure!(args.runs > 0, "--runs must be at least 1");
    ensure!(args.size_mib > 0, "--size-mib must be at least 1");
    ensure!(args.pg_mib > 0, "--pg-mib must be at least 1");

    let directory = if matches!(args.which, Which::Directory | Which::Both | Which::All) {
        Some(directory(&args).await?)
    } else {
        None
    };
    let postgres_backup = if matches!(args.which, Which::Postgres | Which::Both | Which::All) {
        Some(postgres(&args, Measure::Backup).await?)
    } else {
        None
    };
    let postgres_restore = if matches!(args.which, Which::PostgresRestore | Which::All) {
        Some(postgres(&args, Measure::Restore).await?)
    } else {
        None
    };

    print_summary(directory.as_ref(), postgres_backup.as_ref(), args.runs);
    print_restore_summary(postgres_restore.as_ref(), args.runs);
    let nice = nice();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    if let Some([one, five, fifteen]) = load_average_at_start {
        println!(
            "\n{cpus} CPUs; load average at the start {one:.2} {five:.2} {fifteen:.2}; nice {}",
            nice.map_or_else(|| "?".to_string(), |n: i64| n.to_string())
        );
    }
    let report = Report {
        benchmark: "backup-drivers",
        run_at_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        cpus,
        load_average_at_start,
        nice,
        runs: args.runs,
        definitions: definitions(),
        directory,
        postgres: postgres_backup,
        postgres_restore,
    };
    let out = args.out.unwrap_or_else(|| {
        // A restore-only run keeps the backup figures' file as it is.
        let name = if args.which == Which::PostgresRestore {
            "results/postgres-restore.json"
        } else {
            "results/backup-drivers.json"
        };
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
    });
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nWritten to {}", out.display());
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// directory

async fn directory(args: &Args) -> anyhow::Result<DirectoryReport> {
    let tools = match (version("tar"), version("zstd")) {
        (Ok(tar), Ok(zstd)) => format!("{tar}; {zstd}"),
        (Err(why), _) | (_, Err(why)) => {
            return Ok(DirectoryReport {
                skipped: Some(skip_or_fail(format!("the directory reference cannot run: {why}"))?),
                target_ratio_at_least: TARGET_DIRECTORY_RATIO,
                ..DirectoryReport::default()
            });
        }
    };
    // Everything in one temporary directory, removed when this returns (or fails).
    let work = tempfile::Builder::new()
        .prefix("steward-bench-dir-")
        .tempdir()
        .context("creating a temporary directory")?;
    let root = work.path().join("tree");
    let size = args.size_mib << 20;
    eprintln!(
        "directory: generating a {} MiB tree in {}",
        args.size_mib,
        root.display()
    );
    let started = Instant::now();
    let tree = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || generate_tree(&root, size))
            .await
            .context("generating the tree")??
    };
    // The tree's dirty pages go to disk now, not during the first timed run.
    sync_all().context("sync after generating the tree")?;
    eprintln!(
        "directory: {} files ({} MiB) in {} directories, written in {:.1} s",
        tree.files,
        tree.bytes >> 20,
        tree.directories,
        started.elapsed().as_secs_f64()
    );

    let quiet = Quiet::new(work.path())?;
    let driver_out = work.path().join("driver-out");
    let reference_out = work.path().join("reference.tar.zst");
    let (mut driver_s, mut driver_cpu) = (Vec::new(), Vec::new());
    let (mut reference_s, mut reference_cpu) = (Vec::new(), Vec::new());
    let mut fsync_s = Vec::new();
    let (mut driver_bytes, mut reference_bytes, mut driver_tool) = (0, 0, None);
    for run in 0..args.runs {
        for side in sides(run) {
            let took = if side == Side::Driver {
                fs::create_dir_all(&driver_out)?;
                let clock = Clock::start();
                let artifact = drivers::directory::backup(&root, &[], &[], &driver_out, &quiet.ctx("files"))
                    .await
                    .with_context(|| format!("directory driver, run {}", run + 1))?;
                let (took, cpu) = clock.read();
                driver_s.push(took);
                driver_cpu.push(cpu);
                let details_in = artifact.details["bytes_in"].as_u64();
                ensure!(
                    details_in == Some(tree.bytes),
                    "the driver read {details_in:?} bytes, the tree has {}",
                    tree.bytes
                );
                driver_bytes = artifact.size;
                driver_tool = artifact.tool.clone();
                fs::remove_dir_all(&driver_out)?;
                took
            } else {
                let clock = Clock::start();
                tar_zstd(&root, &reference_out)
                    .await
                    .with_context(|| format!("reference, run {}", run + 1))?;
                let (took, cpu) = clock.read();
                reference_s.push(took);
                reference_cpu.push(cpu);
                fsync_s.push(fsync(&reference_out)?);
                reference_bytes = fs::metadata(&reference_out)?.len();
                fs::remove_file(&reference_out)?;
                took
            };
            eprintln!("directory: run {}/{}: {} {took:.2} s", run + 1, args.runs, side.name());
        }
    }
    quiet.close().await;

    let driver = Timings::of(driver_s, driver_cpu, driver_bytes);
    let reference = Timings::of(reference_s, reference_cpu, reference_bytes);
    let mib = tree.bytes as f64 / MIB;
    let with_fsync: Vec<f64> = reference.seconds.iter().zip(&fsync_s).map(|(r, f)| r + f).collect();
    let ratio_median = reference.median_s / driver.median_s;
    let pairs: Vec<f64> = reference
        .seconds
        .iter()
        .zip(&driver.seconds)
        .map(|(r, d)| r / d)
        .collect();
    Ok(DirectoryReport {
        skipped: None,
        tree: Some(tree),
        driver_mib_per_s_median: Some(mib / driver.median_s),
        driver_mib_per_s_best: Some(mib / driver.best_s),
        reference_mib_per_s_median: Some(mib / reference.median_s),
        reference_mib_per_s_best: Some(mib / reference.best_s),
        ratio_median: Some(ratio_median),
        ratio_median_of_pairs: Some(median(&pairs)),
        ratio_pairs: pairs,
        ratio_best: Some(reference.best_s / driver.best_s),
        ratio_median_vs_reference_with_fsync: Some(median(&with_fsync) / driver.median_s),
        cpu_ratio_median: Some(driver.cpu_median_s / reference.cpu_median_s),
        target_ratio_at_least: TARGET_DIRECTORY_RATIO,
        target_met: Some(ratio_median >= TARGET_DIRECTORY_RATIO),
        driver: Some(driver),
        driver_tool,
        reference: Some(reference),
        reference_tools: Some(tools),
        reference_fsync_s: fsync_s,
    })
}

/// The reference: `tar -cf - -C TREE . | zstd -T0 -3 -q -o OUT`. POSIX `sh` has no `pipefail`,
/// so a failed `tar` is recognised by its message: both tools are silent when they succeed.
async fn tar_zstd(root: &Path, out: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("sh")
        .args(["-c", r#"tar -cf - -C "$1" . | zstd -T0 -3 -q -o "$2""#, "sh"])
        .arg(root)
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .context("running sh")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success() && stderr.trim().is_empty(),
        "`tar | zstd` exited with {}: {}",
        output.status,
        stderr.trim()
    );
    Ok(())
}

/// Writes the benchmark tree under `root`: `size` bytes of files, most in `big.txt`, the rest in
/// small files under `small/dNN/sNN/`. The content is text-like (words from a pseudo-random
/// vocabulary, numbers, hex ids) from a fixed seed, so every run sees the same tree and zstd -3
/// shrinks it about 2.6×: work for the compressor, neither trivial nor incompressible.
fn generate_tree(root: &Path, size: u64) -> anyhow::Result<Tree> {
    let mut text = Text::new(0x9e37_79b9_7f4a_7c15);
    let mut buffer = Vec::with_capacity(1 << 20);
    // Small files take at most a quarter of the tree.
    let average = SMALL_FILE_AVERAGE.min(size / 4 / SMALL_FILES);
    let mut small_bytes = 0;
    let mut small_files = 0;
    let mut directories = 1; // `small`
    if average > 0 {
        for i in 0..SMALL_FILES {
            let (top, sub) = ((i % SMALL_DIRS) / 10, i % SMALL_DIRS % 10);
            let dir = root.join(format!("small/d{top:02}/s{sub:02}"));
            if i < SMALL_DIRS {
                fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                directories += if sub == 0 { 2 } else { 1 };
            }
            let len = text.next() % (2 * average + 1);
            text.fill(&mut buffer, len as usize);
            let path = dir.join(format!("f{i:04}.txt"));
            fs::write(&path, &buffer).with_context(|| format!("writing {}", path.display()))?;
            small_bytes += len;
            small_files += 1;
        }
    } else {
        fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        directories = 0;
    }
    let big = size - small_bytes;
    let path = root.join("big.txt");
    let mut file = BufWriter::with_capacity(1 << 20, File::create(&path)?);
    let mut left = big;
    while left > 0 {
        let n = left.min(1 << 20);
        text.fill(&mut buffer, n as usize);
        file.write_all(&buffer)?;
        left -= n;
    }
    file.into_inner().map_err(|e| e.into_error())?;
    Ok(Tree {
        bytes: size,
        files: small_files + 1,
        directories,
        big_file_bytes: big,
        small_files,
        small_files_bytes: small_bytes,
    })
}

/// Text-like bytes from a xorshift generator: words from a 2,048-word vocabulary (a quarter of
/// the picks from its first 64 words), one token in eight a decimal number or a hex id, lines of
/// about 12 tokens.
struct Text {
    state: u64,
    words: Vec<Vec<u8>>,
}

impl Text {
    fn new(seed: u64) -> Text {
        const LETTERS: &[u8] = b"etaoinshrdlcumwfgypbvkjxqz";
        let mut text = Text {
            state: seed | 1,
            words: Vec::new(),
        };
        for _ in 0..2048 {
            let len = 2 + (text.next() % 9) as usize;
            let word = (0..len)
                .map(|_| {
                    let r = text.next();
                    // The smaller of two picks: frequent letters come up more often.
                    LETTERS[(r % 26).min((r >> 8) % 26) as usize]
                })
                .collect();
            text.words.push(word);
        }
        text
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Replaces `out` with exactly `len` bytes of text.
    fn fill(&mut self, out: &mut Vec<u8>, len: usize) {
        out.clear();
        while out.len() < len {
            let r = self.next();
            match r % 16 {
                0 => {
                    let _ = write!(out, "{}", (r >> 8) % 1_000_000);
                }
                1 => {
                    let _ = write!(out, "{:08x}", (r >> 16) as u32);
                }
                _ => {
                    let word = if r & 0x100 != 0 {
                        (r >> 16) % 64
                    } else {
                        (r >> 16) % 2048
                    };
                    out.extend_from_slice(&self.words[word as usize]);
                }
            }
            out.push(if (r >> 40).is_multiple_of(12) { b'\n' } else { b' ' });
        }
        out.truncate(len);
    }
}

// ------------------------------------------------------------------------------------------------
// postgres

/// What the postgres benchmark measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Measure {
    /// The driver's backup against `pg_dump -Fc`.
    Backup,
    /// The driver's restore against `pg_restore --clean --if-exists --single-transaction`.
    Restore,
}

async fn postgres(args: &Args, measure: Measure) -> anyhow::Result<PostgresReport> {
    let skipped = |why: String| -> anyhow::Result<PostgresReport> {
        Ok(PostgresReport {
            skipped: Some(skip_or_fail(why)?),
            target_ratio_at_most: TARGET_POSTGRES_RATIO,
            ..PostgresReport::default()
        })
    };
    let base = engine::testing::postgres_base_url();
    for tool in ["pg_dump", "pg_restore", "psql"] {
        if let Err(why) = version(tool) {
            return skipped(why);
        }
    }
    if url_has_password(&base) {
        bail!(
            "STEWARD_TEST_POSTGRES_URL contains a password, which the postgres driver refuses; \
             give it in PGPASSWORD instead"
        );
    }
    let mut admin = match PgConnection::connect(&base).await {
        Ok(admin) => admin,
        Err(e) => return skipped(format!("PostgreSQL at {base} is unreachable: {e}")),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    drop_stale_databases(&mut admin, now).await;
    let name = format!(
        "{DATABASE_PREFIX}{now}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .with_context(|| format!("creating database {name}"))?;
    let url = database_url(&base, &name);

    let result = match measure {
        Measure::Backup => measure_postgres(args, &url).await,
        Measure::Restore => measure_postgres_restore(args, &url).await,
    };

    let dropped = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    if let Err(e) = dropped {
        eprintln!("postgres: could not drop database {name}: {e}");
    }
    let _ = admin.close().await;
    result
}

async fn measure_postgres(args: &Args, url: &str) -> anyhow::Result<PostgresReport> {
    let started = Instant::now();
    eprintln!("postgres: loading about {} MiB into {url}", args.pg_mib);
    let database = load_database(url, args.pg_mib).await?;
    eprintln!(
        "postgres: {} MiB ({} MiB tables, {} MiB indexes) loaded in {:.1} s",
        database.bytes >> 20,
        database.tables_bytes >> 20,
        database.indexes_bytes >> 20,
        started.elapsed().as_secs_f64()
    );

    let work = tempfile::Builder::new()
        .prefix("steward-bench-pg-")
        .tempdir()
        .context("creating a temporary directory")?;
    let quiet = Quiet::new(work.path())?;
    // A password for the driver only if the environment has one (the URL must not).
    let password = std::env::var_os("PGPASSWORD").map(|_| SecretSource::Env("PGPASSWORD".into()));
    let driver_out = work.path().join("driver-out");
    let reference_out = work.path().join("reference.dump");
    let (mut driver_s, mut driver_cpu) = (Vec::new(), Vec::new());
    let (mut reference_s, mut reference_cpu) = (Vec::new(), Vec::new());
    let mut fsync_s = Vec::new();
    let (mut driver_bytes, mut reference_bytes, mut driver_tool) = (0, 0, None);
    for run in 0..args.runs {
        for side in sides(run) {
            let took = if side == Side::Driver {
                fs::create_dir_all(&driver_out)?;
                let clock = Clock::start();
                let artifact: Artifact =
                    drivers::postgres::backup(url, password.as_ref(), &driver_out, &quiet.ctx("database"))
                        .await
                        .with_context(|| format!("postgres driver, run {}", run + 1))?;
                let (took, cpu) = clock.read();
                driver_s.push(took);
                driver_cpu.push(cpu);
                driver_bytes = artifact.size;
                driver_tool = artifact.tool.clone();
                fs::remove_dir_all(&driver_out)?;
                took
            } else {
                let clock = Clock::start();
                pg_dump(url, &reference_out)
                    .await
                    .with_context(|| format!("reference pg_dump, run {}", run + 1))?;
                let (took, cpu) = clock.read();
                reference_s.push(took);
                reference_cpu.push(cpu);
                fsync_s.push(fsync(&reference_out)?);
                reference_bytes = fs::metadata(&reference_out)?.len();
                fs::remove_file(&reference_out)?;
                took
            };
            eprintln!("postgres: run {}/{}: {} {took:.2} s", run + 1, args.runs, side.name());
        }
    }
    quiet.close().await;

    let driver = Timings::of(driver_s, driver_cpu, driver_bytes);
    let reference = Timings::of(reference_s, reference_cpu, reference_bytes);
    let with_fsync: Vec<f64> = reference.seconds.iter().zip(&fsync_s).map(|(r, f)| r + f).collect();
    let ratio_median = driver.median_s / reference.median_s;
    let pairs: Vec<f64> = driver
        .seconds
        .iter()
        .zip(&reference.seconds)
        .map(|(d, r)| d / r)
        .collect();
    Ok(PostgresReport {
        skipped: None,
        database: Some(database),
        ratio_median: Some(ratio_median),
        ratio_median_of_pairs: Some(median(&pairs)),
        ratio_pairs: pairs,
        ratio_best: Some(driver.best_s / reference.best_s),
        ratio_median_vs_reference_with_fsync: Some(driver.median_s / median(&with_fsync)),
        cpu_ratio_median: Some(driver.cpu_median_s / reference.cpu_median_s),
        target_ratio_at_most: TARGET_POSTGRES_RATIO,
        target_met: Some(ratio_median <= TARGET_POSTGRES_RATIO),
        driver: Some(driver),
        driver_tool,
        reference: Some(reference),
        reference_fsync_s: fsync_s,
    })
}

/// The restore: the database loaded as for the backup, dumped once (untimed), then restored
/// into itself `--runs` times by `engine::drivers::postgres::restore` and by the reference,
/// alternating. Each restore replaces everything the last one made, so every run starts from the
/// same database; a `CHECKPOINT` after each (untimed) keeps one side's writes out of the other's
/// time.
async fn measure_postgres_restore(args: &Args, url: &str) -> anyhow::Result<PostgresReport> {
    let started = Instant::now();
    eprintln!("postgres restore: loading about {} MiB into {url}", args.pg_mib);
    let database = load_database(url, args.pg_mib).await?;
    eprintln!(
        "postgres restore: {} MiB ({} MiB tables, {} MiB indexes) loaded in {:.1} s",
        database.bytes >> 20,
        database.tables_bytes >> 20,
        database.indexes_bytes >> 20,
        started.elapsed().as_secs_f64()
    );
    let work = tempfile::Builder::new()
        .prefix("steward-bench-pg-restore-")
        .tempdir()
        .context("creating a temporary directory")?;
    let dump = work.path().join("database.dump");
    pg_dump(url, &dump).await.context("dumping the benchmark database")?;
    let dump_bytes = fs::metadata(&dump)?.len();
    let quiet = Quiet::new(work.path())?;
    let password = std::env::var_os("PGPASSWORD").map(|_| SecretSource::Env("PGPASSWORD".into()));
    let mut admin = PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let (mut driver_s, mut driver_cpu) = (Vec::new(), Vec::new());
    let (mut reference_s, mut reference_cpu) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        for side in sides(run) {
            let clock = Clock::start();
            if side == Side::Driver {
                drivers::postgres::restore(url, password.as_ref(), &dump, &quiet.ctx("database"))
                    .await
                    .with_context(|| format!("postgres driver restore, run {}", run + 1))?;
            } else {
                pg_restore(url, &dump)
                    .await
                    .with_context(|| format!("reference pg_restore, run {}", run + 1))?;
            }
            let (took, cpu) = clock.read();
            if side == Side::Driver {
                driver_s.push(took);
                driver_cpu.push(cpu);
            } else {
                reference_s.push(took);
                reference_cpu.push(cpu);
            }
            eprintln!(
                "postgres restore: run {}/{}: {} {took:.2} s",
                run + 1,
                args.runs,
                side.name()
            );
            if let Err(e) = sqlx::raw_sql("CHECKPOINT").execute(&mut admin).await {
                eprintln!("postgres restore: CHECKPOINT failed ({e}); continuing");
            }
        }
    }
    quiet.close().await;
    let _ = admin.close().await;

    let driver = Timings::of(driver_s, driver_cpu, dump_bytes);
    let reference = Timings::of(reference_s, reference_cpu, dump_bytes);
    let ratio_median = driver.median_s / reference.median_s;
    let pairs: Vec<f64> = driver
        .seconds
        .iter()
        .zip(&reference.seconds)
        .map(|(d, r)| d / r)
        .collect();
    Ok(PostgresReport {
        skipped: None,
        database: Some(database),
        ratio_median: Some(ratio_median),
        ratio_median_of_pairs: Some(median(&pairs)),
        ratio_pairs: pairs,
        ratio_best: Some(driver.best_s / reference.best_s),
        ratio_median_vs_reference_with_fsync: None,
        cpu_ratio_median: Some(driver.cpu_median_s / reference.cpu_median_s),
        target_ratio_at_most: TARGET_POSTGRES_RATIO,
        target_met: Some(ratio_median <= TARGET_POSTGRES_RATIO),
        driver: Some(driver),
        driver_tool: version("pg_restore").ok(),
        reference: Some(reference),
        reference_fsync_s: Vec::new(),
    })
}

/// The restore's reference: plain `pg_restore` as the driver ran it before it emptied the
/// database first — `--clean --if-exists --single-transaction --exit-on-error --no-owner`.
async fn pg_restore(url: &str, dump: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("pg_restore")
        .args([
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--dbname",
            url,
        ])
        .arg(dump)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .context("running pg_restore")?;
    ensure!(
        output.status.success(),
        "pg_restore exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// The reference: plain `pg_dump -Fc --dbname URL -f OUT`.
async fn pg_dump(url: &str, out: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("pg_dump")
        .args(["-Fc", "--dbname", url, "-f"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .context("running pg_dump")?;
    ensure!(
        output.status.success(),
        "pg_dump exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// Fills the (empty) database at `url` with about `mib` MiB of tables and indexes: `customers`,
/// `orders` (numeric amounts, a mostly-NULL note, an index on the customer) and `events` (a
/// text payload with md5 hex, an index on the order). Rows are per "unit" n: n/10 customers,
/// n orders, 2n events, about 490 bytes of tables and indexes per unit.
async fn load_database(url: &str, mib: u64) -> anyhow::Result<Database> {
    let units = (mib << 20) / 490;
    let (customers, orders, events) = ((units / 10).max(1), units.max(1), (2 * units).max(1));
    let mut db = PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let statements = [
        "CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, email text NOT NULL, \
         city text NOT NULL, created_at timestamptz NOT NULL)"
            .to_string(),
        format!(
            "INSERT INTO customers SELECT g, 'Customer ' || g, 'customer' || g || '@example.com', \
             (ARRAY['Berlin','Lisbon','Oslo','Turin','Vienna','Zagreb'])[1 + g % 6], \
             timestamptz '2020-01-01' + g * interval '37 seconds' FROM generate_series(1, {customers}) g"
        ),
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer NOT NULL, placed_at timestamptz NOT NULL, \
         amount numeric(12,2) NOT NULL, status text NOT NULL, note text)"
            .to_string(),
        format!(
            "INSERT INTO orders SELECT g, 1 + (g::bigint * 7919) % {customers}, timestamptz '2021-01-01' + g * interval '13 seconds', \
             round(((g::bigint * 2654435761) % 1000000) / 100.0, 2), \
             (ARRAY['new','paid','shipped','delivered','returned'])[1 + g % 5], \
             CASE WHEN g % 3 = 0 THEN 'gift wrap, deliver after ' || (g % 24) || ':00' END \
             FROM generate_series(1, {orders}) g"
        ),
        "CREATE INDEX orders_customer ON orders (customer_id)".to_string(),
        "CREATE TABLE events (id bigint PRIMARY KEY, order_id bigint NOT NULL, at timestamptz NOT NULL, \
         kind text NOT NULL, payload text NOT NULL)"
            .to_string(),
        format!(
            "INSERT INTO events SELECT g, 1 + g / 2, timestamptz '2021-01-01' + g * interval '5 seconds', \
             (ARRAY['created','paid','packed','shipped','delivered','note'])[1 + g % 6], \
             'order ' || (1 + g / 2) || ' ' || md5(g::text) || ' by ' || substr(md5((g % 977)::text), 1, 12) \
             || ' value ' || (g % 10007) * 1.5 FROM generate_series(1, {events}) g"
        ),
        "CREATE INDEX events_order ON events (order_id)".to_string(),
        // Hint bits set and statistics taken now, so that the first dump does not write pages.
        "VACUUM (FREEZE, ANALYZE)".to_string(),
    ];
    for statement in &statements {
        sqlx::raw_sql(statement)
            .execute(&mut db)
            .await
            .with_context(|| format!("loading the benchmark database: {statement}"))?;
    }
    // Dirty buffers written now rather than by a checkpoint during a timed dump (needs
    // superuser or pg_checkpoint; without, the next timed checkpoint does it).
    if let Err(e) = sqlx::raw_sql("CHECKPOINT").execute(&mut db).await {
        eprintln!("postgres: CHECKPOINT failed ({e}); continuing");
    }
    let (server_version, bytes, tables_bytes, indexes_bytes): (String, i64, i64, i64) = sqlx::query_as(
        "SELECT current_setting('server_version'), pg_database_size(current_database()), \
         (SELECT sum(pg_table_size(c.oid))::bigint FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'), \
         (SELECT sum(pg_relation_size(c.oid))::bigint FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'i')",
    )
    .fetch_one(&mut db)
    .await
    .context("reading the database's size")?;
    let _ = db.close().await;
    Ok(Database {
        server_version,
        bytes,
        rows: BTreeMap::from([
            ("customers", customers as i64),
            ("orders", orders as i64),
            ("events", events as i64),
        ]),
        tables_bytes,
        indexes_bytes,
    })
}

/// Drops `steward_bench_<secs>_…` databases older than an hour: leftovers of killed runs.
async fn drop_stale_databases(admin: &mut PgConnection, now_secs: u64) {
    let Ok(names) =
        sqlx::query_scalar::<_, String>("SELECT datname FROM pg_database WHERE datname LIKE 'steward\\_bench\\_%'")
            .fetch_all(&mut *admin)
            .await
    else {
        return;
    };
    for name in names {
        let created = name
            .strip_prefix(DATABASE_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|created| created + STALE_DATABASE_SECS < now_secs) {
            eprintln!("postgres: dropping {name}, left over by an earlier run");
            let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// `base` with its database replaced by `name`: `postgres://u@h:5432/test?x=y` →
/// `postgres://u@h:5432/NAME?x=y`.
fn database_url(base: &str, name: &str) -> String {
    let (head, query) = base.split_once('?').map_or((base, None), |(h, q)| (h, Some(q)));
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let authority_end = head[authority_start..]
        .find('/')
        .map_or(head.len(), |i| authority_start + i);
    let mut url = format!("{}/{name}", &head[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Whether the URL's user information has a `:password` (or its query a `password=`).
fn url_has_password(url: &str) -> bool {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let rest = head.split_once("://").map_or(head, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let userinfo_has_password = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    userinfo_has_password || query.split('&').any(|pair| pair.starts_with("password="))
}

// ------------------------------------------------------------------------------------------------
// shared

fn definitions() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "directory.driver",
            "engine::drivers::directory::backup of the generated tree into a fresh output directory (walk, tar, \
             zstd level 3 on all cores, SHA-256, fsync of the artifact); wall clock",
        ),
        (
            "directory.reference",
            "sh -c 'tar -cf - -C TREE . | zstd -T0 -3 -q -o OUT' on the same tree; wall clock, no fsync",
        ),
        (
            "directory.*_mib_per_s_*",
            "tree.bytes (the files' bytes, MiB) / seconds, of the median or the best run",
        ),
        (
            "directory.ratio_median",
            "driver MiB/s / reference MiB/s of the medians (= reference median_s / driver median_s); target >= 0.9",
        ),
        (
            "postgres.driver",
            "engine::drivers::postgres::backup (pg_dump --format=custom to a pipe, SHA-256, fsync of the artifact); \
             wall clock",
        ),
        (
            "postgres.reference",
            "pg_dump -Fc --dbname URL -f OUT; wall clock; pg_dump fsyncs its output file itself (its default \
             since PostgreSQL 10, --no-sync turns it off), so the fsync timed after it finds nothing left to do",
        ),
        (
            "postgres.ratio_median",
            "driver median_s / reference median_s; target <= 1.05",
        ),
        (
            "postgres_restore.driver",
            "engine::drivers::postgres::restore into the same database: pg_restore --file=- piped into one psql \
             transaction that first drops every schema",
        ),
        (
            "postgres_restore.reference",
            "pg_restore --clean --if-exists --single-transaction --exit-on-error --no-owner --dbname URL DUMP \
             (what the driver ran before it dropped objects made after the backup)",
        ),
        (
            "postgres_restore.ratio_median",
            "driver median_s / reference median_s; target <= 1.05; a CHECKPOINT after every run is not timed",
        ),
        (
            "reference_fsync_s",
            "fsync of the reference's output right after each reference run, timed apart from it; \
             ratio_median_vs_reference_with_fsync uses reference + fsync per run",
        ),
        (
            "cpu_seconds",
            "user + system CPU of this process's threads and of the programs it started and waited for \
             (/proc/self/stat, 10 ms ticks); for postgres the server's own CPU is not included. \
             cpu_ratio_median = driver cpu_median_s / reference cpu_median_s",
        ),
        (
            "ratio_pairs",
            "per run, the same ratio of that run's driver and reference (run one right after the other, so \
             under about the same load); ratio_median_of_pairs is their median",
        ),
        (
            "runs",
            "runs of each side; driver and reference alternate, driver first in odd-numbered runs (1, 3, …), \
             reference first in the others",
        ),
    ])
}

fn print_summary(directory: Option<&DirectoryReport>, postgres: Option<&PostgresReport>, runs: usize) {
    let met = |met: Option<bool>| if met == Some(true) { "met" } else { "NOT met" };
    if let Some(report) = directory {
        println!("\nDirectory driver vs `tar | zstd -T0 -3` ({runs} runs each, alternating; MiB/s of input)\n");
        match (&report.tree, &report.driver, &report.reference) {
            (Some(tree), Some(driver), Some(reference)) => {
                println!(
                    "  tree: {} MiB, {} files in {} directories (big file {} MiB, {} small files {} MiB)",
                    tree.bytes >> 20,
                    tree.files,
                    tree.directories,
                    tree.big_file_bytes >> 20,
                    tree.small_files,
                    tree.small_files_bytes >> 20
                );
                println!(
                    "  {:<10} {:>9} {:>9} {:>11} {:>11} {:>12} {:>11}",
                    "", "median", "best", "MiB/s med", "MiB/s best", "output", "CPU median"
                );
                for (name, t) in [("driver", driver), ("reference", reference)] {
                    let mib = tree.bytes as f64 / MIB;
                    println!(
                        "  {:<10} {:>7.2} s {:>7.2} s {:>11.0} {:>11.0} {:>8.1} MiB {:>9.2} s",
                        name,
                        t.median_s,
                        t.best_s,
                        mib / t.median_s,
                        mib / t.best_s,
                        t.output_bytes as f64 / MIB,
                        t.cpu_median_s
                    );
                }
                println!(
                    "  driver/reference throughput: median {:.3}, best {:.3}, median of run pairs {:.3}; \
                     against reference + fsync {:.3} (reference fsync median {:.2} s); CPU driver/reference {:.2}",
                    report.ratio_median.unwrap_or(f64::NAN),
                    report.ratio_best.unwrap_or(f64::NAN),
                    report.ratio_median_of_pairs.unwrap_or(f64::NAN),
                    report.ratio_median_vs_reference_with_fsync.unwrap_or(f64::NAN),
                    median(&report.reference_fsync_s),
                    report.cpu_ratio_median.unwrap_or(f64::NAN),
                );
                println!("  target ≥ {TARGET_DIRECTORY_RATIO}: {}", met(report.target_met));
            }
            _ => println!("  skipped: {}", report.skipped.as_deref().unwrap_or("not measured")),
        }
    }
    if let Some(report) = postgres {
        println!("\nPostgres driver vs plain `pg_dump -Fc` ({runs} runs each, alternating; seconds)\n");
        match (&report.database, &report.driver, &report.reference) {
            (Some(db), Some(driver), Some(reference)) => {
                println!(
                    "  database: {} MiB ({} MiB tables, {} MiB indexes), PostgreSQL {}",
                    db.bytes >> 20,
                    db.tables_bytes >> 20,
                    db.indexes_bytes >> 20,
                    db.server_version
                );
                println!(
                    "  {:<10} {:>9} {:>9} {:>12} {:>11}",
                    "", "median", "best", "output", "CPU median"
                );
                for (name, t) in [("driver", driver), ("reference", reference)] {
                    println!(
                        "  {:<10} {:>7.2} s {:>7.2} s {:>8.1} MiB {:>9.2} s",
                        name,
                        t.median_s,
                        t.best_s,
                        t.output_bytes as f64 / MIB,
                        t.cpu_median_s
                    );
                }
                println!(
                    "  driver/reference time: median {:.3}, best {:.3}, median of run pairs {:.3}; \
                     against reference + fsync {:.3} (reference fsync median {:.2} s); CPU driver/reference {:.2} \
                     (pg_dump's side only)",
                    report.ratio_median.unwrap_or(f64::NAN),
                    report.ratio_best.unwrap_or(f64::NAN),
                    report.ratio_median_of_pairs.unwrap_or(f64::NAN),
                    report.ratio_median_vs_reference_with_fsync.unwrap_or(f64::NAN),
                    median(&report.reference_fsync_s),
                    report.cpu_ratio_median.unwrap_or(f64::NAN),
                );
                println!("  target ≤ {TARGET_POSTGRES_RATIO}: {}", met(report.target_met));
            }
            _ => println!("  skipped: {}", report.skipped.as_deref().unwrap_or("not measured")),
        }
    }
}

fn print_restore_summary(report: Option<&PostgresReport>, runs: usize) {
    let Some(report) = report else {
        return;
    };
    println!(
        "\nPostgres driver restore vs plain `pg_restore --clean --if-exists --single-transaction` ({runs} runs each, alternating; seconds)\n"
    );
    match (&report.database, &report.driver, &report.reference) {
        (Some(db), Some(driver), Some(reference)) => {
            println!(
                "  database: {} MiB ({} MiB tables, {} MiB indexes), dump {:.1} MiB, PostgreSQL {}",
                db.bytes >> 20,
                db.tables_bytes >> 20,
                db.indexes_bytes >> 20,
                driver.output_bytes as f64 / MIB,
                db.server_version
            );
            println!("  {:<10} {:>9} {:>9} {:>11}", "", "median", "best", "CPU median");
            for (name, t) in [("driver", driver), ("reference", reference)] {
                println!(
                    "  {:<10} {:>7.2} s {:>7.2} s {:>9.2} s",
                    name, t.median_s, t.best_s, t.cpu_median_s
                );
            }
            println!(
                "  driver/reference time: median {:.3}, best {:.3}, median of run pairs {:.3}; CPU driver/reference {:.2} \
                 (the client side only)",
                report.ratio_median.unwrap_or(f64::NAN),
                report.ratio_best.unwrap_or(f64::NAN),
                report.ratio_median_of_pairs.unwrap_or(f64::NAN),
                report.cpu_ratio_median.unwrap_or(f64::NAN),
            );
            let met = if report.target_met == Some(true) {
                "met"
            } else {
                "NOT met"
            };
            println!("  target ≤ {TARGET_POSTGRES_RATIO}: {met}");
        }
        _ => println!("  skipped: {}", report.skipped.as_deref().unwrap_or("not measured")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_replaces_only_the_database() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/test", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            database_url("postgres://h/test?sslmode=disable", "b"),
            "postgres://h/b?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h", "b"), "postgres://h/b");
        assert!(url_has_password("postgres://u:pw@h/db"));
        assert!(url_has_password("postgres://u@h/db?password=x"));
        assert!(!url_has_password("postgres://postgres@127.0.0.1:5432/test"));
    }

    #[test]
    fn the_tree_has_the_size_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let tree = generate_tree(dir.path(), 4 << 20).unwrap();
        assert_eq!(tree.bytes, 4 << 20);
        assert_eq!(tree.small_files, SMALL_FILES);
        assert_eq!(tree.directories, 1 + 20 + SMALL_DIRS);
        let big = fs::metadata(dir.path().join("big.txt")).unwrap().len();
        assert_eq!(big + tree.small_files_bytes, tree.bytes);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
