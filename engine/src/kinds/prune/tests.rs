//! Retention applied to a real catalog and real storage: the preview, the prune job, and the
//! backups that are never removed.

use std::{path::Path, time::Duration};

use super::*;
use crate::{
    Config,
    backups::row_of,
    config::{JobsConfig, StorageConfig},
    db::{Db, backups::upsert, jobs as rows},
    jobs::JobState,
    manifest::{Manifest, ManifestArtifact},
    retention::Policy,
    storage::LocalStorage,
    testing::{log_text, wait_until_finished},
};

const HOUR: i64 = 3_600_000;

fn engine(db: &Db, root: &Path, policy: Option<Policy>) -> Engine {
    let config = Config {
        environments: vec![Environment {
            name: "prod".into(),
            label: "Production".into(),
            colour: "#c62828".into(),
            timezone: "Europe/Berlin".into(),
            retention: policy,
            ..Default::default()
        }],
        jobs: JobsConfig {
            workers: 1,
            lease_seconds: 30,
            cancel_grace_seconds: 1,
            shutdown_grace_seconds: 1,
        },
        storage: StorageConfig {
            path: Some(root.join("backups")),
            ..Default::default()
        },
        data_dir: root.to_path_buf(),
        ..Config::default()
    };
    Engine::new(config, db.clone())
}

/// Publishes a backup taken at `at_ms` in storage and adds it to the catalog.
async fn add_backup(engine: &Engine, id: &str, at_ms: i64, trigger: Trigger) {
    let storage = LocalStorage::new(engine.config().backup_root());
    let path = BackupPath::new("prod", id).unwrap();
    let staged = storage.stage(&path).await.unwrap();
    std::fs::write(staged.join("data.txt"), id).unwrap();
    let (size, sha256) = crate::drivers::sha256_of(&staged.join("data.txt")).await.unwrap();
    let manifest = Manifest {
        version: 1,
        id: id.into(),
        environment: "prod".into(),
        started_at_ms: at_ms,
        finished_at_ms: at_ms + 1_000,
        trigger: trigger.as_str().into(),
        requested_by: "schedule:nightly".into(),
        description: String::new(),
        artifacts: vec![ManifestArtifact {
            resource: "files".into(),
            driver: "directory".into(),
            file: "data.txt".into(),
            size,
            sha256,
            tool: None,
            details: serde_json::Value::Null,
            tree: false,
        }],
        facts: Default::default(),
        steward_version: "test".into(),
        stored: crate::manifest::Stored::Files,
    };
    let json = manifest.to_json().unwrap();
    storage.publish(&path, &json).await.unwrap();
    upsert(engine.db().pool(), &row_of(&manifest, &json, None, None))
        .await
        .unwrap();
}

fn alice() -> Actor {
    Actor {
        username: Some("alice".into()),
        client_ip: None,
    }
}

/// Backups every 6 hours for 10 days before `now`, ids `b000` (oldest) … `b039`.
async fn catalog(engine: &Engine, now: i64) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..40 {
        let id = format!("b{n:03}");
        add_backup(engine, &id, now - (40 - n) * 6 * HOUR, Trigger::Scheduled).await;
        ids.push(id);
    }
    ids
}

fn policy() -> Policy {
    Policy {
        keep_last: Some(2),
        keep_daily: Some(3),
        ..Policy::default()
    }
}

/// `prod` with one directory resource, `site`, and the retention rule keep-last 1.
fn engine_with_site(db: &Db, root: &Path) -> Engine {
    let mut engine_config = engine(
        db,
        root,
        Some(Policy {
            keep_last: Some(1),
            ..Policy::default()
        }),
    )
    .config()
    .clone();
    engine_config.environments[0].resources.insert(
        "site".into(),
        crate::config::Resource::Directory {
            path: root.join("site"),
            include: Vec::new(),
            exclude: Vec::new(),
        },
    );
    Engine::new(engine_config, db.clone())
}

/// Fills `dir/data.bin` with `len` bytes that do not compress or deduplicate (`seed`).
fn random_file(dir: &Path, seed: u64, len: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(dir.join("data.bin"), bytes).unwrap();
}

async fn back_up(engine: &Engine) -> String {
    let job = engine
        .request_backup(&alice(), "prod", "", Trigger::Manual)
        .await
        .unwrap();
    let id = job.spec.as_ref().and_then(|s| s.backup_id()).unwrap().to_string();
    let job = wait_until_finished(engine, job.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{}", log_text(engine, job.id).await);
    id
}

crate::db_tests! {
    async fn backups_in_the_repository_are_forgotten_and_their_space_reclaimed(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine_with_site(db, root.path());
        let workers = engine.start_workers().await.unwrap();
        let mut ids = Vec::new();
        for seed in 1..=3 {
            random_file(&root.path().join("site"), seed, 300_000);
            ids.push(back_up(&engine).await);
        }
        let before = engine.with_repository(false, |repo| repo.usage()).await.unwrap();

        let job = engine.request_prune(&alice(), "prod", false).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        let log = log_text(&engine, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{log}");
        assert!(log.contains("freed (") && log.contains("packs deleted"), "{log}");
        let (left, _) = engine.backups("prod", Order::NewestFirst, 0, 10).await.unwrap();
        assert_eq!(left.iter().map(|b| b.id.clone()).collect::<Vec<_>>(), [ids[2].clone()]);
        let in_repository = engine.repository_backups().await.unwrap();
        assert_eq!(in_repository.iter().map(|b| b.backup_id.clone()).collect::<Vec<_>>(), [ids[2].clone()]);
        let after = engine.with_repository(false, |repo| repo.usage()).await.unwrap();
        // Two of three incompressible 300 kB files are gone.
        assert!(after.bytes + 500_000 < before.bytes, "{} → {}", before.bytes, after.bytes);
        engine.with_repository(false, |repo| repo.check(true)).await.unwrap();
        assert!(engine.verify_backup(&alice(), &ids[2]).await.unwrap().ok());
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_prune_waits_while_another_job_uses_the_repository(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine_with_site(db, root.path());
        let workers = engine.start_workers().await.unwrap();
        for seed in 1..=2 {
            random_file(&root.path().join("site"), seed, 50_000);
            back_up(&engine).await;
        }
        // A backup of another environment (as another instance would run it) is writing.
        let writer = rows::insert(
            engine.db().pool(),
            &rows::NewJobRow {
                kind: "backup",
                environment: "elsewhere",
                input: "{}",
                exclusive_key: None,
                requested_by: "bob",
                reason: "",
                created_at: now_ms(),
                attempt: 1,
                parent_id: None,
                retry_of: None,
                steps: "[]",
                slot_key: None,
            },
        )
        .await
        .unwrap();
        sqlx::query("UPDATE job SET state = 'running' WHERE id = $1").bind(writer.id).execute(engine.db().pool()).await.unwrap();
        sqlx::query("INSERT INTO repository_use (job_id, mode, since) VALUES ($1, 'use', $2)")
            .bind(writer.id)
            .bind(now_ms())
            .execute(engine.db().pool())
            .await
            .unwrap();

        let job = engine.request_prune(&alice(), "prod", false).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !log_text(&engine, job.id).await.contains("Waiting for the repository") {
            assert!(std::time::Instant::now() < deadline, "{}", log_text(&engine, job.id).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let waiting = engine.job(job.id).await.unwrap().unwrap();
        assert_eq!(waiting.state, JobState::Running, "the prune waits for the writer");
        assert!(!log_text(&engine, job.id).await.contains("Pruning the repository"));

        // The writer finishes: the prune goes on.
        sqlx::query("UPDATE job SET state = 'succeeded' WHERE id = $1").bind(writer.id).execute(engine.db().pool()).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        let log = log_text(&engine, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{log}");
        assert!(log.contains("Pruning the repository"), "{log}");
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_prune_removes_exactly_what_the_preview_said_from_storage_and_catalog(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path(), Some(policy()));
        let now = now_ms();
        let ids = catalog(&engine, now).await;
        // Never removed whatever the rules say:
        engine.set_backup_pinned(&alice(), "b001", true, "before the migration").await.unwrap();
        add_backup(&engine, "old-safety", now - 30 * 24 * HOUR, Trigger::PreRestore).await;
        add_backup(&engine, "young-safety", now - 24 * HOUR, Trigger::PreRestore).await;
        add_backup(&engine, "failed-safety", now - 30 * 24 * HOUR, Trigger::PreRestore).await;
        let failed = rows::insert(
            engine.db().pool(),
            &rows::NewJobRow {
                kind: "restore",
                environment: "prod",
                input: r#"{"kind":"restore","backup_id":"b002","safety_backup_id":"failed-safety"}"#,
                exclusive_key: None,
                requested_by: "bob",
                reason: "",
                created_at: now,
                attempt: 1,
                parent_id: None,
                retry_of: None,
                steps: "[]",
                slot_key: None,
            },
        )
        .await
        .unwrap();
        sqlx::query("UPDATE job SET state = 'failed', finished_at = $1 WHERE id = $2")
            .bind(now)
            .bind(failed.id)
            .execute(engine.db().pool())
            .await
            .unwrap();

        let preview = engine.retention_preview("prod").await.unwrap();
        let verdict = |id: &str| {
            preview
                .backups
                .iter()
                .find(|(b, _)| b.id == id)
                .map(|(_, v)| v.to_string())
                .unwrap()
        };
        assert_eq!(verdict("b001"), "keep — pinned by alice: before the migration");
        assert_eq!(verdict("b039"), "keep — last 1 of 2");
        assert_eq!(verdict("old-safety"), "remove");
        assert_eq!(verdict("young-safety"), "keep — safety backup, younger than 14 days");
        assert!(verdict("failed-safety").starts_with(&format!("keep — safety backup of failed restore #{}", failed.id)));
        assert_eq!(preview.rules.len(), 4, "{:?}", preview.rules);
        let remove: Vec<String> = preview.removals().map(|b| b.id.clone()).collect();
        let keep: Vec<String> = preview
            .backups
            .iter()
            .filter(|(_, v)| v.is_keep())
            .map(|(b, _)| b.id.clone())
            .collect();
        // last 2 + daily 3 (today's newest is already kept) + the pin + two safety backups.
        assert_eq!(keep.len(), 2 + 3 + 1 + 2, "{keep:?}");
        assert_eq!(remove.len(), ids.len() + 3 - keep.len());

        let workers = engine.start_workers().await.unwrap();
        let dry = engine.request_prune(&alice(), "prod", true).await.unwrap();
        assert_eq!(wait_until_finished(&engine, dry.id).await.state, JobState::Succeeded);
        assert!(log_text(&engine, dry.id).await.contains(&format!("Dry run: {} backups", remove.len())));
        assert_eq!(engine.backups("prod", Order::NewestFirst, 0, 1000).await.unwrap().1, 43);

        let job = engine.request_prune(&alice(), "prod", false).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        workers.shutdown(Duration::from_secs(1)).await;

        let (left, _) = engine.backups("prod", Order::NewestFirst, 0, 1000).await.unwrap();
        let mut left: Vec<String> = left.into_iter().map(|b| b.id).collect();
        let mut expected = keep.clone();
        left.sort();
        expected.sort();
        assert_eq!(left, expected, "the catalog holds exactly what the preview kept");
        let mut stored = engine.storage().list("prod").await.unwrap();
        stored.sort();
        assert_eq!(stored, expected, "storage holds exactly what the preview kept");
        assert!(engine.storage().withdrawn().await.unwrap().is_empty());
        let mut audited: Vec<String> = sqlx::query_scalar(
            "SELECT target FROM audit_event WHERE action = 'backup.remove' AND outcome = 'ok'",
        )
        .fetch_all(engine.db().pool())
        .await
        .unwrap();
        audited.sort();
        let mut removed = remove.clone();
        removed.sort();
        assert_eq!(audited, removed, "one audit event per removed backup");
        // Storage use over time: the last sample is what is left.
        let (bytes, count): (i64, i64) = sqlx::query_as(
            "SELECT bytes, backups FROM storage_sample WHERE environment = 'prod' ORDER BY at DESC, bytes ASC LIMIT 1",
        )
        .fetch_one(engine.db().pool())
        .await
        .unwrap();
        let (kept_backups, _) = engine.backups("prod", Order::NewestFirst, 0, 1000).await.unwrap();
        assert_eq!(count, kept_backups.len() as i64);
        assert_eq!(bytes, kept_backups.iter().map(|b| b.total_size as i64).sum::<i64>());
    }

    async fn the_newest_proven_backup_and_those_a_verification_reads_are_never_removed(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path(), Some(policy()));
        catalog(&engine, now_ms()).await;
        // b010 passed its test restore; b020, newer, failed its own: b010 is the one to keep.
        for (id, error) in [("b005", None), ("b010", None), ("b020", Some("orders (postgres): role x does not exist"))] {
            engine.record_test_restore(&alice(), id, None, "orders: restored", error).await.unwrap();
        }
        // A verification of two backups, queued: each of them is read.
        let verify = crate::kinds::verify::Verify::of(vec!["b007".into(), "b008".into()]);
        let job = engine
            .request_job(&alice(), JobRequest { environment: "prod".into(), spec: JobSpec::new(verify), reason: String::new(), parent_id: None })
            .await
            .unwrap();
        let preview = engine.retention_preview("prod").await.unwrap();
        let verdict = |id: &str| preview.backups.iter().find(|(b, _)| b.id == id).map(|(_, v)| v.to_string()).unwrap();
        assert_eq!(verdict("b010"), "keep — newest backup proven restorable");
        assert_eq!(verdict("b005"), "remove");
        assert_eq!(verdict("b020"), "remove");
        assert_eq!(verdict("b007"), format!("keep — read by queued job #{} (verify)", job.id));
        assert_eq!(verdict("b008"), format!("keep — read by queued job #{} (verify)", job.id));
    }

    async fn without_retention_rules_nothing_is_removed(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path(), None);
        let ids = catalog(&engine, now_ms()).await;
        add_backup(&engine, "old-safety", now_ms() - 300 * 24 * HOUR, Trigger::PreRestore).await;
        let preview = engine.retention_preview("prod").await.unwrap();
        assert!(preview.rules.is_empty());
        assert!(matches!(
            engine.request_prune(&alice(), "prod", false).await,
            Err(JobError::Refused(why)) if why.contains("no retention rules")
        ));
        assert_eq!(preview.removals().count(), 0);
        assert_eq!(preview.backups.len(), ids.len() + 1);
    }

    async fn pins_need_a_reason_and_are_audited(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path(), Some(policy()));
        add_backup(&engine, "b1", now_ms(), Trigger::Manual).await;
        assert!(matches!(
            engine.set_backup_pinned(&alice(), "b1", true, "  ").await,
            Err(BackupError::Job(JobError::ReasonRequired(_)))
        ));
        assert!(matches!(
            engine.set_backup_pinned(&alice(), "nope", true, "x").await,
            Err(BackupError::NotFound(_))
        ));
        engine.set_backup_pinned(&alice(), "b1", true, "keep for audit").await.unwrap();
        let pin = engine.pin_of("b1").await.unwrap().unwrap();
        assert_eq!((pin.by.as_str(), pin.reason.as_str()), ("alice", "keep for audit"));
        assert!(engine.backup("b1").await.unwrap().unwrap().pinned);
        assert!(matches!(
            engine.set_backup_pinned(&alice(), "b1", true, "again").await,
            Err(BackupError::Job(JobError::Refused(_)))
        ));
        engine.set_backup_pinned(&alice(), "b1", false, "audit closed").await.unwrap();
        assert_eq!(engine.pin_of("b1").await.unwrap(), None);
        let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_event WHERE target = 'b1' ORDER BY id")
            .fetch_all(engine.db().pool())
            .await
            .unwrap();
        assert_eq!(actions, ["backup.pin", "backup.unpin"]);
    }

    async fn a_removal_a_crash_interrupted_is_finished_or_undone_at_start(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path(), Some(policy()));
        add_backup(&engine, "in-catalog", now_ms(), Trigger::Manual).await;
        add_backup(&engine, "gone-from-catalog", now_ms(), Trigger::Manual).await;
        let storage = engine.storage();
        for id in ["in-catalog", "gone-from-catalog"] {
            storage.withdraw(&BackupPath::new("prod", id).unwrap()).await.unwrap();
        }
        crate::db::backups::delete(engine.db().pool(), "gone-from-catalog").await.unwrap();
        Prune::recover(&engine).await;
        assert_eq!(storage.list("prod").await.unwrap(), ["in-catalog"]);
        assert!(storage.withdrawn().await.unwrap().is_empty());
    }
}
