//! The audit page at a million events: each filter's first page (and a deep page), timed on
//! SQLite and PostgreSQL, with the query plan that explains the figure; the chain's verification
//! over all of them; and the memory of a real `steward serve` streaming a 200,000-row CSV
//! export.
//!
//! ```text
//! cargo run --release -p bench --bin audit-filters [-- --backend sqlite|postgres|both --events 1000000]
//! ```
//!
//! **Seeding**: `--events` events in id order over one year, with a valid hash chain (computed
//! here with the engine's own `Sealed::hash`, written in multi-row INSERTs — recording a million
//! events one by one would measure the seeding, not the filters). The mix is a busy installation's:
//! 50 people and `steward` itself, 10 environments, job / backup / restore / maintenance /
//! schedule / sign-in actions, 90% ok, 7% refused, 3% failed, a detail object on every event.
//!
//! **Timing**: each filter runs `--runs` times with values drawn at random from its pool (another
//! person, another day …), through `engine::audit::filter::page` — the function the audit page
//! calls — for 101 rows (a page and the "older" probe). Reported: p50, p95, max, and the plan.
//!
//! **Export memory** (SQLite, needs the release build `target/release/steward`): the seeded file
//! is served by a real `steward serve`; a signed-in viewer downloads `/api/audit/export.csv` for
//! one action, `job.request` (a fifth of the events: 200,000 of a million), while this program samples
//! the server's VmRSS from /proc every 20 ms. Reported: RSS before, peak during, rows, bytes.

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bench::{Summary, ms};
use clap::{Parser, ValueEnum};
use engine::{
    audit::{
        Filter, Outcome,
        chain::{GENESIS, Sealed},
        filter,
    },
    db::{Backend, Db},
    testing::TestDb,
};
use serde::Serialize;

/// The issue's target for every filter's p95.
const TARGET_P95_MS: f64 = 50.0;
const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;
const START_MS: i64 = 1_767_225_600_000; // 2026-01-01 UTC
const ROWS_PER_INSERT: usize = 500;
const ENVIRONMENTS: [&str; 10] = [
    "prod", "test", "dev", "staging", "shop", "crm", "wiki", "mail", "intranet", "archive",
];
/// Actions with their weight in the mix (per 1,000 events).
const ACTIONS: [(&str, u32); 16] = [
    ("job.request", 200),
    ("job.finish", 200),
    ("backup.create", 150),
    ("backup.verify", 100),
    ("backup.remove", 60),
    ("schedule.run", 80),
    ("login", 100),
    ("logout", 40),
    ("restore.request", 15),
    ("restore.start", 12),
    ("restore.step", 20),
    ("restore.finish", 12),
    ("maintenance.on", 4),
    ("maintenance.off", 4),
    ("backup.pin", 2),
    ("user.password.reset", 1),
];

#[derive(Parser)]
#[command(about = "Audit filters at a million events, on SQLite and PostgreSQL")]
struct Args {
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Timed runs per filter.
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// The release binary for the export's memory (skipped when missing).
    #[arg(long, default_value = "target/release/steward")]
    steward: PathBuf,
    #[arg(long, default_value = "bench/results/audit-filters.json")]
    out: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Serialize)]
struct BackendReport {
    backend: String,
    events: usize,
    seed_seconds: f64,
    verify_seconds: f64,
    filters: Vec<FilterReport>,
    export: Option<ExportReport>,
}

#[derive(Serialize)]
struct FilterReport {
    name: &'static str,
    summary: Summary,
    /// Rows the first run returned (of 101 asked).
    rows: usize,
    plan: String,
}

#[derive(Serialize)]
struct ExportReport {
    rows: usize,
    bytes: u64,
    seconds: f64,
    rss_before_mib: f64,
    rss_peak_mib: f64,
}

/// A small deterministic generator (xorshift64*): the same events on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn person(n: u64) -> String {
    format!("person{n:02}")
}

/// Event `id` of the seeded log (without chain columns).
fn event(rng: &mut Rng, id: i64, events: usize) -> Sealed {
    let at = START_MS + (id as i128 * YEAR_MS as i128 / events as i128) as i64;
    let mut pick = rng.below(1000) as u32;
    let action = ACTIONS
        .iter()
        .find(|(_, weight)| {
            if pick < *weight {
                true
            } else {
                pick -= weight;
                false
            }
        })
        .map_or("job.request", |(a, _)| a);
    let environment = ENVIRONMENTS[rng.below(ENVIRONMENTS.len() as u64) as usize];
    let outcome = match rng.below(100) {
        0..=89 => "ok",
        90..=96 => "refused",
        _ => "failed",
    };
    let scheduled = action.starts_with("schedule.") || rng.below(3) == 0;
    let actor = if scheduled {
        "steward".to_string()
    } else {
        person(rng.below(50))
    };
    let job = id / 3 + 1;
    let (target, detail) = match action.split('.').next().unwrap_or_default() {
        "job" | "restore" => (
            job.to_string(),
            serde_json::json!({"environment": environment, "kind": "backup", "reason": if outcome == "refused" { "busy: another job holds the environment" } else { "nightly" }}),
        ),
        "backup" => (
            format!("{environment}-{id:07}"),
            serde_json::json!({"environment": environment, "bytes": rng.below(1 << 30), "job": job}),
        ),
        "schedule" => (format!("{environment}/nightly"), serde_json::json!({"job": job})),
        "maintenance" => (environment.to_string(), serde_json::json!({"reason": "release 4.2"})),
        _ => (actor.clone(), serde_json::json!({})),
    };
    let environment = (!matches!(action, "login" | "logout" | "user.password.reset")).then(|| environment.to_string());
    Sealed {
        id,
        prev_id: id - 1,
        at,
        actor: Some(actor),
        client_ip: Some(format!("10.0.{}.{}", rng.below(4), rng.below(250))),
        action: action.to_string(),
        target: Some(target),
        environment,
        outcome: outcome.to_string(),
        detail: detail.to_string(),
    }
}

async fn seed(db: &Db, events: usize) -> anyhow::Result<()> {
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let mut prev_hash = GENESIS.to_string();
    let mut id = 1_i64;
    while (id as usize) <= events {
        let mut tx = db.begin_write().await?;
        for _ in 0..100 {
            let n = ROWS_PER_INSERT.min(events + 1 - id as usize);
            if n == 0 {
                break;
            }
            let mut sql = String::from(
                "INSERT INTO audit_event (id, prev_id, at, actor, client_ip, action, target, environment, outcome, detail, hash) VALUES ",
            );
            let mut rows = Vec::with_capacity(n);
            for i in 0..n {
                let event = event(&mut rng, id, events);
                let hash = event.hash(&prev_hash);
                prev_hash.clone_from(&hash);
                let base = i * 11;
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                sql.push_str(&(1..=11).map(|k| format!("${}", base + k)).collect::<Vec<_>>().join(","));
                sql.push(')');
                rows.push((event, hash));
                id += 1;
            }
            let mut query = sqlx::query(&sql);
            for (e, hash) in rows {
                query = query
                    .bind(e.id)
                    .bind(e.prev_id)
                    .bind(e.at)
                    .bind(e.actor)
                    .bind(e.client_ip)
                    .bind(e.action)
                    .bind(e.target)
                    .bind(e.environment)
                    .bind(e.outcome)
                    .bind(e.detail)
                    .bind(hash);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let analyse = match db.backend() {
        Backend::Sqlite => "ANALYZE",
        Backend::Postgres => "ANALYZE audit_event",
    };
    sqlx::query(analyse).execute(db.pool()).await?;
    Ok(())
}

/// A named filter whose values vary per run.
struct Case {
    name: &'static str,
    make: fn(&mut Rng, usize) -> (Filter, Option<i64>),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "no filter",
            make: |_, _| (Filter::default(), None),
        },
        Case {
            name: "actor (one of 50 people)",
            make: |r, _| {
                (
                    Filter {
                        actor: Some(person(r.below(50))),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "action job.request",
            make: |_, _| {
                (
                    Filter {
                        action: Some("job.request".into()),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "rare action user.password.reset",
            make: |_, _| {
                (
                    Filter {
                        action: Some("user.password.reset".into()),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "family restore.*",
            make: |_, _| {
                (
                    Filter {
                        action: Some("restore.*".into()),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "environment",
            make: |r, _| {
                (
                    Filter {
                        environment: Some(ENVIRONMENTS[r.below(10) as usize].into()),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "outcome failed",
            make: |_, _| {
                (
                    Filter {
                        outcome: Some(Outcome::Failed),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "about a job (target)",
            make: |r, events| {
                (
                    Filter {
                        target: Some((r.below(events as u64 / 3) + 1).to_string()),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "one day",
            make: |r, _| {
                let day = START_MS + r.below(364) as i64 * 86_400_000;
                (
                    Filter {
                        from_ms: Some(day),
                        until_ms: Some(day + 86_400_000),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "text, common (busy)",
            make: |_, _| {
                (
                    Filter {
                        text: Some("busy".into()),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "text, rare (a backup id)",
            make: |r, events| {
                let id = r.below(events as u64) + 1;
                (
                    Filter {
                        text: Some(format!("-{id:07}")),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "environment + restore.* + failed",
            make: |r, _| {
                (
                    Filter {
                        environment: Some(ENVIRONMENTS[r.below(10) as usize].into()),
                        action: Some("restore.*".into()),
                        outcome: Some(Outcome::Failed),
                        ..Filter::default()
                    },
                    None,
                )
            },
        },
        Case {
            name: "actor, a page deep in the past",
            make: |r, events| {
                (
                    Filter {
                        actor: Some(person(r.below(50))),
                        ..Filter::default()
                    },
                    Some(r.below(events as u64 / 2) as i64 + 1000),
                )
            },
        },
    ]
}

async fn plan(db: &Db, filter: &Filter, before: Option<i64>) -> String {
    // The same statement `page` runs, with its values inlined by the database's EXPLAIN.
    match filter::explain(db, filter, before, 101).await {
        Ok(lines) => lines.join(" | "),
        Err(e) => format!("(no plan: {e})"),
    }
}

async fn measure(db: &Db, events: usize, runs: usize) -> anyhow::Result<Vec<FilterReport>> {
    let mut reports = Vec::new();
    for case in cases() {
        let mut rng = Rng(0xfeed_0000_0000_0001 ^ case.name.len() as u64);
        let (first, first_before) = (case.make)(&mut rng, events);
        let rows = filter::page(db, &first, first_before, 101).await?.events.len();
        let plan = plan(db, &first, first_before).await;
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let (f, before) = (case.make)(&mut rng, events);
            let started = Instant::now();
            filter::page(db, &f, before, 101).await?;
            samples.push(started.elapsed());
        }
        let summary = Summary::of(&samples).context("no samples")?;
        println!(
            "  {:<36} p50 {:>9}  p95 {:>9}  max {:>9}  rows {rows:>3}  {}",
            case.name,
            ms(summary.p50_ms),
            ms(summary.p95_ms),
            ms(summary.max_ms),
            if summary.p95_ms < TARGET_P95_MS {
                ""
            } else {
                "ABOVE TARGET"
            }
        );
        reports.push(FilterReport {
            name: case.name,
            summary,
            rows,
            plan,
        });
    }
    Ok(reports)
}

/// VmRSS of process `pid` in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn export_memory(steward: &std::path::Path, sqlite_file: &std::path::Path) -> anyhow::Result<ExportReport> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = dir.path().join("steward.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"state\"\n[database]\nurl = \"sqlite://{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n[access]\nallow = [\"127.0.0.1/32\"]\n{}",
            sqlite_file.display(),
            ENVIRONMENTS
                .iter()
                .map(|e| format!("[[environments]]\nname = \"{e}\"\nlabel = \"{e}\"\ncolour = \"#336699\"\n"))
                .collect::<String>()
        ),
    )?;
    let mut add = Command::new(steward)
        .args([
            "user",
            "add",
            "bench",
            "--role",
            "viewer",
            "--password-stdin",
            "--config",
        ])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    add.stdin.take().context("stdin")?.write_all(b"bench password 1234\n")?;
    if !add.wait()?.success() {
        bail!("steward user add failed");
    }
    let mut serve = Command::new(steward)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let pid = serve.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let mut ready = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = async {
        anyhow::ensure!(ready, "steward serve did not answer");
        let login = client
            .post(format!("{base}/api/auth/login"))
            .header("accept", "application/json")
            .form(&[("username", "bench"), ("password", "bench password 1234")])
            .send()
            .await?;
        anyhow::ensure!(login.status().is_success(), "sign-in failed: {}", login.status());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_mib(pid).context("no RSS")?;
        let peak = std::sync::Arc::new(std::sync::Mutex::new(before));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(now) = rss_mib(pid) {
                        let mut p = peak.lock().unwrap();
                        *p = p.max(now);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let started = Instant::now();
        let mut response = client
            .get(format!("{base}/api/audit/export.csv?action=job.request"))
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "export: {}", response.status());
        let (mut bytes, mut newlines) = (0_u64, 0_usize);
        while let Some(chunk) = response.chunk().await? {
            bytes += chunk.len() as u64;
            newlines += chunk.iter().filter(|b| **b == b'\n').count();
        }
        let seconds = started.elapsed().as_secs_f64();
        sampler.abort();
        let peak = *peak.lock().unwrap();
        Ok(ExportReport {
            rows: newlines.saturating_sub(1),
            bytes,
            seconds,
            rss_before_mib: before,
            rss_peak_mib: peak,
        })
    }
    .await;
    let _ = serve.kill();
    let _ = serve.wait();
    result
}

async fn run(test: TestDb, args: &Args) -> anyhow::Result<BackendReport> {
    let db = &test.db;
    let backend = match db.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    println!("{backend}: seeding {} events …", args.events);
    let started = Instant::now();
    seed(db, args.events).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    println!("  seeded in {seed_seconds:.0} s");
    let started = Instant::now();
    let report = engine::audit::chain::verify(db).await?;
    let verify_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.problem.is_none(),
        "the seeded chain does not verify: {:?}",
        report.problem
    );
    println!("  chain of {} events verified in {verify_seconds:.1} s", report.checked);
    let filters = measure(db, args.events, args.runs).await?;
    let export = match (test.sqlite_file(), args.steward.is_file()) {
        (Some(file), true) => {
            db.close().await;
            let export = export_memory(&args.steward, &file).await?;
            println!(
                "  CSV export of {} rows ({:.0} MiB) in {:.1} s: server RSS {:.0} MiB before, {:.0} MiB peak",
                export.rows,
                export.bytes as f64 / 1048576.0,
                export.seconds,
                export.rss_before_mib,
                export.rss_peak_mib
            );
            Some(export)
        }
        (Some(_), false) => {
            println!(
                "  export memory skipped: {} is missing (cargo leptos build --release)",
                args.steward.display()
            );
            None
        }
        (None, _) => None,
    };
    let result = BackendReport {
        backend: backend.into(),
        events: args.events,
        seed_seconds,
        verify_seconds,
        filters,
        export,
    };
    test.cleanup().await;
    Ok(result)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut reports = Vec::new();
    if args.backend != Which::Postgres {
        reports.push(run(TestDb::sqlite().await, &args).await?);
    }
    if args.backend != Which::Sqlite {
        match TestDb::postgres().await {
            Some(test) => reports.push(run(test, &args).await?),
            None => println!("postgres: skipped (unreachable)"),
        }
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&reports)?)?;
    println!("written to {}", args.out.display());
    Ok(())
}
