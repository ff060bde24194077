use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::{
    Config,
    config::{Action, Environment, JobsConfig},
    db::Db,
};

fn action(script: &str, exclusive: bool) -> Action {
    Action {
        label: script.into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        workdir: None,
        env: BTreeMap::new(),
        secret_env: BTreeMap::new(),
        timeout_seconds: 60,
        exclusive,
    }
}

fn schedule(what: &str, cron: &str, busy_wait_minutes: u32) -> Schedule {
    Schedule {
        what: what.into(),
        cron: cron.into(),
        description: None,
        count: None,
        busy_wait_minutes,
        prune_after: true,
    }
}

/// An engine over `db` with environment `prod` (in `timezone`) and `schedules`. No workers
/// run: the jobs the scheduler queues stay queued, where the tests count them.
fn engine(db: &Db, timezone: &str, schedules: &[(&str, Schedule)]) -> Engine {
    let actions = BTreeMap::from([
        ("check".to_string(), action("echo fine", false)),
        ("hello".to_string(), action("echo hello", true)),
        ("slow".to_string(), action("sleep 600", true)),
    ]);
    let config = Config {
        environments: vec![Environment {
            name: "prod".into(),
            label: "Production".into(),
            colour: "#c62828".into(),
            actions,
            timezone: timezone.into(),
            schedules: schedules
                .iter()
                .map(|(name, schedule)| (name.to_string(), schedule.clone()))
                .collect(),
            ..Default::default()
        }],
        jobs: JobsConfig {
            workers: 1,
            lease_seconds: 30,
            cancel_grace_seconds: 1,
            shutdown_grace_seconds: 1,
        },
        ..Config::default()
    };
    Engine::new(config, db.clone())
}

/// Unix milliseconds of a UTC date and time.
fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|date| date.and_hms_opt(h, min, s))
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

async fn scheduled_jobs(engine: &Engine) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT slot_key, id FROM job WHERE slot_key IS NOT NULL ORDER BY id")
        .fetch_all(engine.db().pool())
        .await
        .unwrap()
}

async fn slots(engine: &Engine, name: &str) -> Vec<Slot> {
    let all = engine.schedules(Some("prod")).await.unwrap();
    all.into_iter().find(|s| s.name == name).unwrap().recent
}

async fn audit_actions(engine: &Engine) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_event ORDER BY id")
        .fetch_all(engine.db().pool())
        .await
        .unwrap()
}

/// Queues alice's `slow` action, which holds prod (no worker runs it: it stays queued).
async fn hold_environment(engine: &Engine) -> Job {
    engine
        .request_job(
            &alice(),
            JobRequest {
                environment: "prod".into(),
                spec: JobSpec::new(Command { action: "slow".into() }),
                reason: String::new(),
                parent_id: None,
            },
        )
        .await
        .unwrap()
}

fn alice() -> Actor {
    Actor {
        username: Some("alice".into()),
        client_ip: Some("10.0.0.7".into()),
    }
}

crate::db_tests! {
    async fn each_slot_runs_once_with_two_instances(db) {
        let every_5s = [("often", schedule("action:check", "*/5 * * * * *", 60))];
        let (a, b) = (engine(db, "UTC", &every_5s), engine(db, "UTC", &every_5s));
        let t0 = utc(2026, 12, 1, 10, 0, 0);
        // First sight: fire times up to now are not run.
        a.schedule_tick("a", t0 + 1_000).await.unwrap();
        for slot in 1..=20 {
            let now = t0 + slot * 5_000 + 300;
            let (ra, rb) = tokio::join!(a.schedule_tick("a", now), b.schedule_tick("b", now));
            ra.unwrap();
            rb.unwrap();
        }
        let jobs = scheduled_jobs(&a).await;
        let expected: Vec<String> = (1..=20).map(|slot| format!("prod/often/{}", t0 + slot * 5_000)).collect();
        let keys: Vec<String> = jobs.iter().map(|(key, _)| key.clone()).collect();
        assert_eq!(keys, expected, "each of the 20 slots ran exactly once");
        let requested_by: Vec<String> = sqlx::query_scalar("SELECT DISTINCT requested_by FROM job")
            .fetch_all(a.db().pool())
            .await
            .unwrap();
        assert_eq!(requested_by, ["schedule:often"]);
        let recent = slots(&a, "often").await;
        assert!(recent.iter().all(|slot| slot.state == SlotState::Started && slot.missed == 0));
        assert_eq!(recent[0].summary(Tz::UTC), format!("Ran as job #{} (queued)", jobs[19].1));
    }

    async fn after_downtime_a_schedule_runs_once_and_records_the_miss(db) {
        let every_5s = [("often", schedule("action:check", "*/5 * * * * *", 60))];
        let engine = engine(db, "UTC", &every_5s);
        let t0 = utc(2026, 12, 1, 10, 0, 0);
        engine.schedule_tick("a", t0 + 1_000).await.unwrap();
        engine.schedule_tick("a", t0 + 5_500).await.unwrap();
        // Down while 10 s, 15 s and 20 s passed; back at 25.5 s.
        engine.schedule_tick("a", t0 + 25_500).await.unwrap();
        engine.schedule_tick("a", t0 + 26_000).await.unwrap();
        let jobs = scheduled_jobs(&engine).await;
        assert_eq!(
            jobs.iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>(),
            [format!("prod/often/{}", t0 + 5_000), format!("prod/often/{}", t0 + 25_000)],
            "one catch-up run, not one per missed slot"
        );
        let latest = &slots(&engine, "often").await[0];
        assert_eq!((latest.missed, latest.missed_first_ms), (3, Some(t0 + 10_000)));
        assert_eq!(
            latest.summary(Tz::UTC),
            format!("Missed 3 runs from 10:00 while Steward was not running; ran once at 10:00 as job #{} (queued)", jobs[1].1)
        );
        assert!(audit_actions(&engine).await.contains(&"schedule.missed".to_string()));
    }

    async fn a_nightly_slot_missed_while_down_runs_late_once_and_says_so(db) {
        let nightly = [("nightly", schedule("action:check", "0 2 * * *", 60))];
        let engine = engine(db, "Europe/Berlin", &nightly);
        // Seen at 00:30 Berlin (23:30 UTC), then down until 07:14 Berlin (06:14 UTC).
        engine.schedule_tick("a", utc(2026, 11, 30, 23, 30, 0)).await.unwrap();
        engine.schedule_tick("a", utc(2026, 12, 1, 6, 14, 0)).await.unwrap();
        engine.schedule_tick("a", utc(2026, 12, 1, 6, 14, 1)).await.unwrap();
        let jobs = scheduled_jobs(&engine).await;
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].0, format!("prod/nightly/{}", utc(2026, 12, 1, 1, 0, 0)), "02:00 Berlin");
        let slot = &slots(&engine, "nightly").await[0];
        assert_eq!(
            slot.summary("Europe/Berlin".parse().unwrap()),
            format!("Missed 02:00 while Steward was not running; ran at 07:14 as job #{} (queued)", jobs[0].1)
        );
    }

    async fn a_slot_that_finds_the_environment_busy_waits_then_is_skipped_naming_the_job(db) {
        let hourly = [("hourly", schedule("action:hello", "0 * * * *", 2))];
        let engine = engine(db, "UTC", &hourly);
        let t0 = utc(2026, 12, 1, 10, 0, 0);
        engine.schedule_tick("a", t0 - 60_000).await.unwrap();
        let slow = hold_environment(&engine).await;
        engine.schedule_tick("a", t0 + 1_000).await.unwrap();
        let slot = &slots(&engine, "hourly").await[0];
        assert_eq!((slot.state, slot.blocked_by), (SlotState::Waiting, Some(slow.id)));
        assert_eq!(slot.summary(Tz::UTC), format!("Waiting for job #{} to end", slow.id));
        let refusals_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_event WHERE outcome = 'refused'")
            .fetch_one(engine.db().pool())
            .await
            .unwrap();
        for second in 2..60 {
            engine.schedule_tick("a", t0 + second * 1_000).await.unwrap();
        }
        let refusals_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_event WHERE outcome = 'refused'")
            .fetch_one(engine.db().pool())
            .await
            .unwrap();
        assert_eq!(refusals_before, refusals_after, "waiting does not flood the audit log with refusals");
        // Two minutes after the fire time it gives up.
        engine.schedule_tick("a", t0 + 120_000).await.unwrap();
        let slot = &slots(&engine, "hourly").await[0];
        assert_eq!(slot.state, SlotState::Skipped);
        let summary = slot.summary(Tz::UTC);
        assert!(summary.starts_with("Skipped: prod was busy with"), "{summary}");
        assert!(summary.contains(&format!("slow #{} (requested by alice)", slow.id)), "{summary}");
        assert!(scheduled_jobs(&engine).await.is_empty());
        assert!(audit_actions(&engine).await.contains(&"schedule.skip".to_string()));
    }

    async fn a_slot_that_meets_a_running_restore_waits_then_is_skipped_naming_it(db) {
        let hourly = [("hourly", schedule("action:hello", "0 * * * *", 1))];
        let engine = engine(db, "UTC", &hourly);
        let t0 = utc(2026, 12, 1, 10, 0, 0);
        engine.schedule_tick("a", t0 - 60_000).await.unwrap();
        let restore = job_rows::insert(
            engine.db().pool(),
            &job_rows::NewJobRow {
                kind: "restore",
                environment: "prod",
                input: r#"{"kind":"restore","backup_id":"prod-1","safety_backup_id":"prod-2"}"#,
                exclusive_key: Some("prod"),
                requested_by: "bob",
                reason: "roll back the release",
                created_at: t0 - 120_000,
                attempt: 1,
                parent_id: None,
                retry_of: None,
                steps: "[]",
                slot_key: None,
            },
        )
        .await
        .unwrap();
        sqlx::query("UPDATE job SET state = 'running', started_at = $1 WHERE id = $2")
            .bind(t0 - 100_000)
            .bind(restore.id)
            .execute(engine.db().pool())
            .await
            .unwrap();
        engine.schedule_tick("a", t0 + 1_000).await.unwrap();
        assert_eq!(slots(&engine, "hourly").await[0].blocked_by, Some(restore.id));
        engine.schedule_tick("a", t0 + 61_000).await.unwrap();
        let slot = &slots(&engine, "hourly").await[0];
        assert_eq!(
            slot.summary(Tz::UTC),
            format!("Skipped: prod was busy with restore #{} (requested by bob) for 1 minute", restore.id)
        );
        assert!(scheduled_jobs(&engine).await.is_empty());
    }

    async fn a_waiting_slot_runs_when_the_environment_frees_up(db) {
        let hourly = [("hourly", schedule("action:hello", "0 * * * *", 30))];
        let engine = engine(db, "UTC", &hourly);
        let t0 = utc(2026, 12, 1, 10, 0, 0);
        engine.schedule_tick("a", t0 - 60_000).await.unwrap();
        let slow = hold_environment(&engine).await;
        engine.schedule_tick("a", t0 + 1_000).await.unwrap();
        assert!(scheduled_jobs(&engine).await.is_empty());
        engine.cancel_job(&alice(), slow.id).await.unwrap();
        // Another instance picks the waiting slot up.
        engine.schedule_tick("b", t0 + 2_000).await.unwrap();
        assert_eq!(scheduled_jobs(&engine).await.len(), 1);
        assert_eq!(slots(&engine, "hourly").await[0].state, SlotState::Started);
    }

    async fn a_paused_schedule_does_not_run_and_does_not_catch_up_when_resumed(db) {
        let every_5s = [("often", schedule("action:check", "*/5 * * * * *", 60))];
        let engine = engine(db, "UTC", &every_5s);
        let t0 = utc(2026, 12, 1, 10, 0, 0);
        engine.schedule_tick("a", t0 + 1_000).await.unwrap();
        assert!(matches!(
            engine.pause_schedule(&alice(), "prod", "often", " ").await,
            Err(ScheduleError::ReasonRequired)
        ));
        assert!(matches!(
            engine.pause_schedule(&alice(), "prod", "nope", "x").await,
            Err(ScheduleError::Unknown { .. })
        ));
        engine.pause_schedule(&alice(), "prod", "often", "migration tonight").await.unwrap();
        assert!(matches!(
            engine.pause_schedule(&alice(), "prod", "often", "again").await,
            Err(ScheduleError::AlreadyPaused { .. })
        ));
        let status = engine.schedules(Some("prod")).await.unwrap();
        assert_eq!(status[0].paused.as_ref().map(|p| p.reason.as_str()), Some("migration tonight"));
        assert!(status[0].next.is_empty(), "a paused schedule has no next run");
        engine.schedule_tick("a", t0 + 5_500).await.unwrap();
        engine.schedule_tick("a", t0 + 10_500).await.unwrap();
        assert!(scheduled_jobs(&engine).await.is_empty());
        engine.resume_schedule(&alice(), "prod", "often", "done").await.unwrap();
        // Resumed (now, in real time) long after t0: what it skipped is not caught up.
        engine.schedule_tick("a", t0 + 15_500).await.unwrap();
        assert!(scheduled_jobs(&engine).await.is_empty());
        let actions = audit_actions(&engine).await;
        assert!(actions.contains(&"schedule.pause".to_string()) && actions.contains(&"schedule.resume".to_string()));
    }

    async fn run_now_queues_the_schedules_job_requested_by_the_admin(db) {
        let nightly = [("nightly", schedule("action:check", "0 2 * * *", 60))];
        let engine = engine(db, "UTC", &nightly);
        let job = engine.run_schedule_now(&alice(), "prod", "nightly").await.unwrap();
        assert_eq!((job.kind.as_str(), job.requested_by.as_str()), ("command", "alice"));
        assert_eq!(job.reason, "run now: schedule nightly");
        assert!(audit_actions(&engine).await.contains(&"schedule.run".to_string()));
    }

    async fn a_scheduled_verification_chooses_its_backups_when_it_runs(db) {
        let weekly = [("weekly", Schedule { count: Some(2), ..schedule("verify", "0 3 * * 0", 60) })];
        let engine = engine(db, "UTC", &weekly);
        // Nothing to verify yet: the run is refused with the reason.
        let refused = engine.run_schedule_now(&alice(), "prod", "weekly").await.unwrap_err();
        assert!(refused.to_string().contains("prod has no backups to verify"), "{refused}");
        for (id, at) in [("prod-20261101-0300-aaaa", 1_000), ("prod-20261102-0300-bbbb", 2_000), ("prod-20261103-0300-cccc", 3_000)] {
            let manifest = crate::manifest::Manifest {
                version: 1,
                id: id.into(),
                environment: "prod".into(),
                started_at_ms: at,
                finished_at_ms: at,
                trigger: "scheduled".into(),
                requested_by: "schedule:nightly".into(),
                description: String::new(),
                artifacts: Vec::new(),
                facts: BTreeMap::new(),
                steward_version: "test".into(),
                stored: crate::manifest::Stored::Files,
            };
            let json = manifest.to_json().unwrap();
            crate::db::backups::upsert(engine.db().pool(), &crate::backups::row_of(&manifest, &json, None, None)).await.unwrap();
        }
        // The oldest has been test-restored: the two never verified are chosen.
        engine.record_test_restore(&alice(), "prod-20261101-0300-aaaa", None, "db: restored", None).await.unwrap();
        let job = engine.run_schedule_now(&alice(), "prod", "weekly").await.unwrap();
        assert_eq!(job.kind, "verify");
        let mut chosen = job.spec.as_ref().and_then(|s| s.get::<crate::kinds::verify::Verify>()).unwrap().targets();
        chosen.sort();
        assert_eq!(chosen, ["prod-20261102-0300-bbbb", "prod-20261103-0300-cccc"]);
    }
}

crate::db_tests! {
    async fn a_scheduled_backup_is_followed_by_a_prune_when_retention_is_configured(db) {
        use crate::{
            backups::Order,
            config::{Resource, StorageConfig},
            jobs::JobState,
            retention::Policy,
            testing::wait_until_finished,
        };
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("files")).unwrap();
        std::fs::write(root.path().join("files/a.txt"), "a").unwrap();
        let config = Config {
            environments: vec![Environment {
                name: "prod".into(),
                label: "Production".into(),
                colour: "#c62828".into(),
                resources: BTreeMap::from([(
                    "files".to_string(),
                    Resource::Directory {
                        path: root.path().join("files"),
                        include: vec![],
                        exclude: vec![],
                    },
                )]),
                schedules: BTreeMap::from([("nightly".to_string(), schedule("backup", "*/5 * * * * *", 60))]),
                retention: Some(Policy {
                    keep_last: Some(1),
                    ..Policy::default()
                }),
                ..Default::default()
            }],
            storage: StorageConfig {
                path: Some(root.path().join("backups")),
                ..Default::default()
            },
            data_dir: root.path().to_path_buf(),
            ..Config::default()
        };
        let engine = Engine::new(config, db.clone());
        let workers = engine.start_workers().await.unwrap();
        let manual = engine.request_backup(&alice(), "prod", "by hand", Trigger::Manual).await.unwrap();
        assert_eq!(wait_until_finished(&engine, manual.id).await.state, JobState::Succeeded);
        let t0 = utc(2026, 12, 1, 10, 0, 0);
        engine.schedule_tick("a", t0 + 1_000).await.unwrap();
        engine.schedule_tick("a", t0 + 5_500).await.unwrap();
        let (_, backup_job) = scheduled_jobs(&engine).await.remove(0);
        assert_eq!(wait_until_finished(&engine, backup_job).await.state, JobState::Succeeded);
        engine.schedule_tick("a", t0 + 6_000).await.unwrap();
        engine.schedule_tick("b", t0 + 6_500).await.unwrap();
        let prunes: Vec<(String, i64)> = sqlx::query_as("SELECT slot_key, id FROM job WHERE kind = 'prune'")
            .fetch_all(engine.db().pool())
            .await
            .unwrap();
        assert_eq!(prunes.len(), 1, "one prune, whichever instance ticks");
        assert_eq!(prunes[0].0, format!("prod/nightly/{}/prune", t0 + 5_000));
        assert_eq!(wait_until_finished(&engine, prunes[0].1).await.state, JobState::Succeeded);
        workers.shutdown(std::time::Duration::from_secs(1)).await;
        let (left, total) = engine.backups("prod", Order::NewestFirst, 0, 10).await.unwrap();
        assert_eq!(total, 1);
        assert_eq!(left[0].trigger, "scheduled", "the scheduled backup is kept, the older one removed");
    }
}

#[test]
fn fire_times_follow_the_environments_time_zone_across_daylight_saving_changes() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    // 02:30 does not exist on 2026-03-29 in Berlin (02:00 → 03:00): it runs at 03:00 local.
    let spring = schedule("backup", "30 2 * * *", 60);
    let next = next_fire_times(&spring, berlin, utc(2026, 3, 28, 12, 0, 0), 2);
    assert_eq!(
        next.iter()
            .map(|&ms| local(ms, berlin, "%Y-%m-%d %H:%M %Z"))
            .collect::<Vec<_>>(),
        ["2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST"]
    );
    // 02:30 happens twice on 2026-10-25 (03:00 → 02:00): it runs once, the first time.
    let next = next_fire_times(&spring, berlin, utc(2026, 10, 24, 12, 0, 0), 2);
    assert_eq!(
        next.iter()
            .map(|&ms| local(ms, berlin, "%Y-%m-%d %H:%M %Z"))
            .collect::<Vec<_>>(),
        ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]
    );
}

#[test]
fn cron_expressions_are_checked_with_clear_words() {
    assert!(schedule("backup", "0 2 * * *", 1).cron().is_ok());
    assert!(schedule("backup", "*/5 * * * * *", 1).cron().is_ok());
    let four = schedule("backup", "0 2 * *", 1).cron().unwrap_err();
    assert!(four.contains("has 4 fields"), "{four}");
    let bad = schedule("backup", "0 25 * * *", 1).cron().unwrap_err();
    assert!(
        bad.starts_with("\"0 25 * * *\" is not a valid cron expression"),
        "{bad}"
    );
    assert!(schedule("nightly", "0 2 * * *", 1).work().is_err());
}
