//! A PostgreSQL database backed up night after night into the repository, against one plain
//! dump and against restic fed the same dumps:
//!
//! ```text
//! cargo run --release -p bench --bin repository-postgres [-- --rows 4000000 --nights 5]
//! ```
//!
//! A fresh database (`steward_bench_pg_<random>` on 127.0.0.1:5432, or `STEWARD_TEST_POSTGRES_URL`'s
//! server) gets an `orders` table of `--rows` rows (customer, amount, status, a time, a 64-hex
//! reference and a note: data that compresses about as much as an application's; 4,000,000 rows
//! are about 750 MB with the indexes). A night is a day of an application: 0.5% new orders and
//! 0.1% of the orders updated, among the newest 5% (an order changes while it is recent). Each
//! night — the first backup, then `--nights` more after such a day — the database is dumped as the postgres
//! driver dumps it, `pg_dump -Fc -Z0` (uncompressed, so unchanged rows give unchanged bytes and
//! the repository's chunks deduplicate them; the repository compresses), and the dump is stored
//! as one Steward backup with the previous night's as parent, and given to `restic backup`.
//!
//! Reported: the repository's size after all nights against **one** `pg_dump -Fc` (its default
//! compression) of the final database — the issue's target is ≤ 1.5× — and against restic's
//! repository after the same dumps; each night's time to store the dump (Steward, restic).
//! The database is dropped at the end, also when a run fails.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, ensure};
use clap::Parser;
use engine::repository;
use serde::Serialize;

const PASSWORD: &str = "bench password";
const MB: f64 = 1_000_000.0;
/// The issue's target: the repository after all nights ÷ one compressed dump.
const TARGET_RATIO: f64 = 1.5;

#[derive(Parser)]
#[command(about = "A PostgreSQL database's nightly dumps in the repository against one dump and restic")]
struct Args {
    /// Orders in the table at the start.
    #[arg(long, default_value_t = 4_000_000)]
    rows: u64,
    /// Backups after the first one.
    #[arg(long, default_value_t = 5)]
    nights: usize,
    #[arg(long, default_value = "bench/results/repository-postgres.json")]
    out: PathBuf,
}

#[derive(Serialize)]
struct Report {
    benchmark: &'static str,
    run_at_unix_ms: u128,
    rows: u64,
    nights: usize,
    database_bytes: u64,
    one_dump_compressed_bytes: u64,
    uncompressed_dump_bytes: u64,
    steward_repository_bytes: u64,
    restic_repository_bytes: u64,
    steward_seconds: Vec<f64>,
    restic_seconds: Vec<f64>,
    ratio_vs_one_dump: f64,
    ratio_vs_restic: f64,
    target_ratio_vs_one_dump: f64,
}

/// The database, dropped when this goes out of scope.
struct Database {
    server: String,
    name: String,
}

impl Database {
    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("dropdb")
            .args([
                "--if-exists",
                "--force",
                "--maintenance-db",
                &format!("{}/postgres", self.server),
                &self.name,
            ])
            .status();
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = std::env::var("STEWARD_TEST_POSTGRES_URL")
        .ok()
        .and_then(|url| url.rsplit_once('/').map(|(server, _)| server.to_string()))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_string());
    let db = Database {
        server,
        name: format!("steward_bench_pg_{}", uuid::Uuid::new_v4().simple()),
    };
    run(
        "createdb",
        &["--maintenance-db", &format!("{}/postgres", db.server), &db.name],
    )?;
    eprintln!("filling {} with {} orders …", db.name, args.rows);
    psql(
        &db,
        &format!(
            "create table orders (id bigserial primary key, customer int not null, amount numeric(12,2) not null,
               status text not null, placed_at timestamptz not null, reference text not null, note text);
             create index on orders (customer); create index on orders (placed_at);
             insert into orders (customer, amount, status, placed_at, reference, note)
               select (random() * 200000)::int, round((random() * 1000)::numeric, 2), 'delivered',
                      now() - interval '3 years' + g * interval '20 seconds',
                      md5(g::text) || md5((g * 7)::text), 'order ' || g || ' for customer ' || (g % 997)
               from generate_series(1, {}) g;",
            args.rows
        ),
    )?;
    psql(&db, "vacuum analyze orders")?;

    let work = tempfile::Builder::new().prefix("steward-pg-bench-").tempdir()?;
    let root = work.path();
    let steward_repo = repository::Location::Local(root.join("repo-steward"));
    let cache = root.join("steward-cache");
    repository::open(&steward_repo, PASSWORD, Some(&cache), true).map_err(|e| anyhow::anyhow!("{e}"))?;
    let restic_repo = root.join("repo-restic");
    restic(&restic_repo, root, &["init"])?;

    let dump_dir = root.join("dump");
    fs::create_dir_all(&dump_dir)?;
    let manifest = root.join("manifest.json");
    let (mut steward_seconds, mut restic_seconds) = (Vec::new(), Vec::new());
    let mut uncompressed_dump_bytes = 0;
    for night in 0..=args.nights {
        if night > 0 {
            a_day(&db, args.rows)?;
        }
        let dump = dump_dir.join("database.dump");
        run(
            "pg_dump",
            &["-Fc", "-Z0", "--dbname", &db.url(), "-f", &dump.display().to_string()],
        )?;
        uncompressed_dump_bytes = fs::metadata(&dump)?.len();
        let started = Instant::now();
        let mut repo =
            repository::open(&steward_repo, PASSWORD, Some(&cache), false).map_err(|e| anyhow::anyhow!("{e}"))?;
        let part = repository::Part {
            name: "db".into(),
            source: dump_dir.clone(),
            keep: None,
        };
        let written = bench::run::store_night(&mut repo, night, part, &manifest)?;
        sync();
        steward_seconds.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        restic(&restic_repo, root, &["backup", &dump_dir.display().to_string()])?;
        sync();
        restic_seconds.push(started.elapsed().as_secs_f64());
        eprintln!(
            "night {night}: dump {:.0} MB, {:.1} MB new in Steward's repository ({:.1} s; restic {:.1} s)",
            uncompressed_dump_bytes as f64 / MB,
            written.added_bytes as f64 / MB,
            steward_seconds[night],
            restic_seconds[night]
        );
    }

    let compressed = root.join("one.dump");
    run(
        "pg_dump",
        &["-Fc", "--dbname", &db.url(), "-f", &compressed.display().to_string()],
    )?;
    let database_bytes = database_size(&db)?;
    let one_dump_compressed_bytes = fs::metadata(&compressed)?.len();
    let steward_repository_bytes = du(&root.join("repo-steward"))?;
    let restic_repository_bytes = du(&restic_repo)?;
    let report = Report {
        benchmark: "repository-postgres",
        run_at_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
        rows: args.rows,
        nights: args.nights,
        database_bytes,
        one_dump_compressed_bytes,
        uncompressed_dump_bytes,
        steward_repository_bytes,
        restic_repository_bytes,
        steward_seconds,
        restic_seconds,
        ratio_vs_one_dump: steward_repository_bytes as f64 / one_dump_compressed_bytes as f64,
        ratio_vs_restic: steward_repository_bytes as f64 / restic_repository_bytes as f64,
        target_ratio_vs_one_dump: TARGET_RATIO,
    };
    println!(
        "database {:.0} MB; one pg_dump -Fc {:.0} MB; after {} backups: Steward's repository {:.0} MB ({:.2}× one dump, target ≤ {TARGET_RATIO}), restic's {:.0} MB ({:.2}×)",
        report.database_bytes as f64 / MB,
        report.one_dump_compressed_bytes as f64 / MB,
        args.nights + 1,
        report.steward_repository_bytes as f64 / MB,
        report.ratio_vs_one_dump,
        report.restic_repository_bytes as f64 / MB,
        report.ratio_vs_restic,
    );
    if let Some(parent) = args.out.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&args.out, serde_json::to_string_pretty(&report)? + "\n")?;
    eprintln!("written to {}", args.out.display());
    Ok(())
}

/// Runs a program to its end; fails with its standard error.
fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .with_context(|| format!("{program} cannot be run"))?;
    ensure!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn restic(repo: &Path, root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .arg("--quiet")
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", root.join("restic-cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .context("restic cannot be run")?;
    ensure!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A day of the application: 0.5% new orders, 0.1% of the orders updated among the newest 5%.
fn a_day(db: &Database, rows: u64) -> anyhow::Result<()> {
    let (new, updated, recent) = (rows / 200, rows / 1000, rows / 20);
    psql(
        db,
        &format!(
            "insert into orders (customer, amount, status, placed_at, reference, note)
               select (random() * 200000)::int, round((random() * 1000)::numeric, 2), 'new', now(),
                      md5(random()::text) || md5(random()::text), 'a new order'
               from generate_series(1, {new});
             update orders set status = 'shipped', amount = amount + 1
               where id in (select id from orders where id > (select max(id) - {recent} from orders)
                            order by random() limit {updated});"
        ),
    )
}

fn psql(db: &Database, sql: &str) -> anyhow::Result<()> {
    run("psql", &["-q", "-v", "ON_ERROR_STOP=1", &db.url(), "-c", sql])
}

fn database_size(db: &Database) -> anyhow::Result<u64> {
    let out = Command::new("psql")
        .args(["-tA", &db.url(), "-c", "select pg_database_size(current_database())"])
        .output()?;
    ensure!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

fn du(dir: &Path) -> anyhow::Result<u64> {
    let out = Command::new("du").arg("-sb").arg(dir).output()?;
    ensure!(out.status.success(), "du {}", dir.display());
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("0")
        .parse()?)
}

/// Writes what is buffered, so one step's writeback is not charged to the next.
fn sync() {
    let _ = Command::new("sync").status();
}
