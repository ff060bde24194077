//! Schedules as they run in production: two `steward serve` processes on one PostgreSQL
//! database, a schedule firing every 5 seconds, and both instances killed (SIGKILL) for a few
//! slots. Every fire time either ran exactly once or is recorded as missed; after the restart
//! one catch-up run, not one per missed slot.

#[path = "support/steward_cli.rs"]
mod steward_cli;

use std::{
    thread,
    time::{Duration, Instant},
};

use engine::testing::TestDb;
use steward_cli::*;

const EVERY_MS: i64 = 5_000;

/// A configuration on the PostgreSQL database at `url` with a `prod` environment whose `often`
/// schedule runs a read-only action every 5 s.
fn configured(url: &str) -> Steward {
    let steward = Steward::new("");
    let body = format!(
        r##"
data_dir = "state"
[server]
listen = "127.0.0.1:0"
[database]
url = "{url}"
[access]
allow = ["127.0.0.1/32"]
[jobs]
workers = 2
lease_seconds = 5
cancel_grace_seconds = 1
shutdown_grace_seconds = 1
[[environments]]
name = "prod"
label = "Production"
colour = "#c62828"
[environments.actions.tick]
label = "Tick"
command = ["sh", "-c", "echo tick"]
exclusive = false
[environments.schedules.often]
what = "action:tick"
cron = "*/5 * * * * *"
"##
    );
    std::fs::write(&steward.config, body).expect("write config");
    steward
}

/// (fire time, missed, job state) of every slot, oldest first.
async fn slots(db: &engine::Db) -> Vec<(i64, i64, Option<String>)> {
    sqlx::query_as(
        "SELECT s.fire_at, s.missed, j.state FROM schedule_slot s LEFT JOIN job j ON j.id = s.job_id
         WHERE s.schedule = 'often' ORDER BY s.fire_at",
    )
    .fetch_all(db.pool())
    .await
    .expect("slots")
}

async fn jobs_per_slot(db: &engine::Db) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT slot_key, COUNT(*) FROM job WHERE slot_key IS NOT NULL GROUP BY slot_key ORDER BY slot_key")
        .fetch_all(db.pool())
        .await
        .expect("jobs")
}

async fn wait_for_slots(db: &engine::Db, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while slots(db).await.len() < count {
        assert!(Instant::now() < deadline, "fewer than {count} slots after 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_instances_run_each_slot_once_and_a_restart_catches_up_once() {
    let Some(test) = TestDb::postgres().await else { return };
    let steward = configured(&test.url);
    let (a, b) = (steward.serve(), steward.serve());
    wait_for_slots(&test.db, 14).await;
    // Both killed: nothing runs for at least three fire times.
    a.crash();
    b.crash();
    let down = Instant::now();
    thread::sleep(Duration::from_millis((3 * EVERY_MS + 2_000) as u64));
    let before_restart = slots(&test.db).await.len();
    let (a, b) = (steward.serve(), steward.serve());
    let down_for = down.elapsed();
    wait_for_slots(&test.db, before_restart + 7).await;
    drop((a, b));

    let slots = slots(&test.db).await;
    let per_slot = jobs_per_slot(&test.db).await;
    assert!(
        per_slot.iter().all(|(_, jobs)| *jobs == 1),
        "a slot ran twice: {per_slot:?}"
    );
    assert_eq!(per_slot.len(), slots.len(), "every claimed slot has its one job");
    // Every fire time from the first to the last either has its slot or is counted as missed.
    let (first, last) = (slots[0].0, slots[slots.len() - 1].0);
    let fire_times = (last - first) / EVERY_MS + 1;
    let missed: i64 = slots.iter().map(|(_, missed, _)| missed).sum();
    assert_eq!(
        slots.len() as i64 + missed,
        fire_times,
        "fire times not accounted for: {slots:?}"
    );
    let catch_ups: Vec<_> = slots.iter().filter(|(_, missed, _)| *missed > 0).collect();
    assert_eq!(catch_ups.len(), 1, "one catch-up run after the restart: {slots:?}");
    assert!(
        catch_ups[0].1 >= 2,
        "down for {down_for:?}, yet only {} fire times were missed",
        catch_ups[0].1
    );
    assert!(slots.len() >= 20, "over 20 slots: {slots:?}");
    eprintln!(
        "{} slots ran once each over {fire_times} fire times; {missed} missed while both were down for {down_for:?}",
        slots.len()
    );

    let listed = steward.cli(&["schedule", "list", "prod"]);
    assert!(listed.stdout.contains("prod/often  action:tick"), "{listed:?}");
    assert!(
        listed.stdout.contains(&format!("missed {} runs from", catch_ups[0].1))
            || listed.stdout.contains("while Steward was not running"),
        "{listed:?}"
    );
    test.cleanup().await;
}

#[test]
fn schedules_are_paused_resumed_and_run_from_the_cli() {
    let steward = Steward::new(
        r#"
[environments.actions.tick]
label = "Tick"
command = ["sh", "-c", "echo tick"]
[environments.schedules.nightly]
what = "action:tick"
cron = "0 2 * * *"
"#,
    );
    let listed = steward.cli(&["schedule", "list"]);
    assert!(
        listed.stdout.contains("prod/nightly  action:tick  \"0 2 * * *\" (UTC)"),
        "{listed:?}"
    );
    assert!(listed.stdout.contains("next: "), "{listed:?}");
    let refused = steward.cli(&["schedule", "pause", "nightly", "--reason", " "]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("a reason is required"), "{refused:?}");
    let paused = steward.cli(&["schedule", "pause", "nightly", "--reason", "db migration"]);
    assert_eq!(paused.code, Some(0), "{paused:?}");
    let listed = steward.cli(&["schedule", "list", "prod"]);
    assert!(listed.stdout.contains("paused by cli at"), "{listed:?}");
    assert!(listed.stdout.contains("db migration"), "{listed:?}");
    let unknown = steward.cli(&["schedule", "resume", "prod/weekly", "--reason", "x"]);
    assert!(
        unknown.stderr.contains("prod has no schedule \"weekly\""),
        "{unknown:?}"
    );
    assert_eq!(
        steward
            .cli(&["schedule", "resume", "prod/nightly", "--reason", "done"])
            .code,
        Some(0)
    );
    let serve = steward.serve();
    let run = steward.cli(&["schedule", "run", "nightly", "--follow"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("tick"), "{run:?}");
    drop(serve);
}
