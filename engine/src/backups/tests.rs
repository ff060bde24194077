//! The backup job end to end: real directories, a real SQLite file, real scripts, a worker.

use std::{collections::BTreeMap, path::Path, time::Duration};

use super::*;
use crate::{
    Config,
    config::{Environment, JobsConfig, Resource, StorageConfig},
    db::Db,
    jobs::{JobState, Trigger},
    testing::{log_text, wait_until_finished},
};

/// An engine over `db` whose `dev` environment has a directory, a SQLite file and a script,
/// and a `bad` environment whose second resource fails. Backups go to `root/backups`.
async fn engine(db: &Db, root: &Path) -> Engine {
    let files = root.join("files");
    std::fs::create_dir_all(files.join("nested/empty")).unwrap();
    std::fs::write(files.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(files.join("nested/data.bin"), vec![7u8; 100_000]).unwrap();
    let sqlite = root.join("app.sqlite");
    sample_sqlite(&sqlite).await;

    let mut resources = BTreeMap::new();
    resources.insert(
        "files".to_string(),
        Resource::Directory {
            path: files.clone(),
            include: vec![],
            exclude: vec![],
        },
    );
    resources.insert("app-db".to_string(), Resource::Sqlite { path: sqlite });
    resources.insert(
        "exported".to_string(),
        script("echo exporting; echo \"$STEWARD_BACKUP_ID\" > \"$STEWARD_OUTPUT_DIR/id.txt\""),
    );
    let mut bad = BTreeMap::new();
    bad.insert(
        "a-files".to_string(),
        Resource::Directory {
            path: files,
            include: vec![],
            exclude: vec![],
        },
    );
    bad.insert(
        "b-broken".to_string(),
        script("echo 'pg_dump: error: connection refused' >&2; exit 2"),
    );
    let mut slow = BTreeMap::new();
    slow.insert("slow".to_string(), script("echo started; sleep 600"));
    // A script whose output is mostly the same every night: 3 MB that do not compress, and
    // the backup's id.
    let blob = root.join("blob.bin");
    let noise: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&blob, noise).unwrap();
    let mut scripted = BTreeMap::new();
    let mut export = script(&format!(
        "cp '{}' \"$STEWARD_OUTPUT_DIR/big.bin\"; mkdir \"$STEWARD_OUTPUT_DIR/meta\"; echo \"$STEWARD_BACKUP_ID\" > \"$STEWARD_OUTPUT_DIR/meta/id.txt\"",
        blob.display()
    ));
    if let Resource::Command { verify, .. } = &mut export {
        *verify = Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "cmp \"$STEWARD_INPUT_DIR/big.bin\" '{}' && grep -qx \"$STEWARD_BACKUP_ID\" \"$STEWARD_INPUT_DIR/meta/id.txt\"",
                blob.display()
            ),
        ]);
    }
    scripted.insert("export".to_string(), export);

    let environment = |name: &str, resources: BTreeMap<String, Resource>| Environment {
        name: name.into(),
        label: name.into(),
        colour: "#1f6feb".into(),
        production: false,
        actions: Default::default(),
        resources,
        facts: Default::default(),
        backup_expected_within_hours: Some(24),
        maintenance: Default::default(),
        smoke_checks: Default::default(),
        ..Default::default()
    };
    let mut dev = environment("dev", resources);
    dev.facts.insert("release".into(), vec!["echo".into(), "v2.4.1".into()]);
    dev.facts.insert("broken".into(), vec!["no-such-program-xyz".into()]);
    let config = Config {
        environments: vec![
            dev,
            environment("bad", bad),
            environment("slow", slow),
            environment("empty", BTreeMap::new()),
            environment("scripted", scripted),
        ],
        jobs: JobsConfig {
            workers: 2,
            lease_seconds: 3,
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

/// A small SQLite database with a table.
async fn sample_sqlite(path: &Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes (body) VALUES ('first'), ('second')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

fn script(body: &str) -> Resource {
    Resource::Command {
        backup: vec!["sh".into(), "-c".into(), body.into()],
        restore: None,
        verify: None,
        env: BTreeMap::new(),
        secret_env: BTreeMap::new(),
        timeout_seconds: 60,
    }
}

fn alice() -> Actor {
    Actor {
        username: Some("alice".into()),
        client_ip: Some("10.0.0.7".into()),
    }
}

fn staging_entries(root: &Path) -> usize {
    std::fs::read_dir(root.join("backups/.staging")).map_or(0, |entries| entries.count())
}

crate::db_tests! {
    async fn a_scripts_output_is_stored_as_a_tree_that_deduplicates_and_test_restores(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path()).await;
        let workers = engine.start_workers().await.unwrap();
        let mut ids = Vec::new();
        for night in ["first", "second"] {
            let job = engine.request_backup(&alice(), "scripted", night, Trigger::Manual).await.unwrap();
            let job = wait_until_finished(&engine, job.id).await;
            assert_eq!(job.state, JobState::Succeeded, "{}", log_text(&engine, job.id).await);
            ids.push(job.spec.as_ref().and_then(|s| s.backup_id()).unwrap().to_string());
        }
        let backup = engine.backup(&ids[1]).await.unwrap().unwrap();
        let manifest = engine.stored_manifest(&backup).await.unwrap();
        let artifact = &manifest.artifacts[0];
        assert!(artifact.tree, "{artifact:?}");
        assert_eq!((artifact.file.as_str(), artifact.size), ("export", 3_000_000 + ids[1].len() as u64 + 1));

        // The second backup added its changed file, not the 3 MB again.
        let usage = engine.storage_usage().await.unwrap();
        let scripted = usage.environments.iter().find(|e| e.environment == "scripted").unwrap();
        assert_eq!(scripted.backups, 2);
        assert!(scripted.full_bytes >= 6_000_000, "{scripted:?}");
        assert!(scripted.stored_bytes < 3_300_000, "stored twice: {scripted:?}");

        // The verify script gets the tree as its input.
        let verify = engine.request_verify(&alice(), &ids[1]).await.unwrap();
        let verify = wait_until_finished(&engine, verify.id).await;
        let log = log_text(&engine, verify.id).await;
        assert_eq!(verify.state, JobState::Succeeded, "{log}");
        assert!(log.contains("export: passed — 2 files unpacked; the verify script sh passed"), "{log}");
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn test_restores_are_a_history_whose_newest_is_the_badge_and_go_with_their_backup(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path()).await;
        let manifest = |id: &str, at_ms: i64| Manifest {
            version: crate::manifest::MANIFEST_VERSION,
            id: id.into(),
            environment: "dev".into(),
            started_at_ms: at_ms,
            finished_at_ms: at_ms,
            trigger: "manual".into(),
            requested_by: "alice".into(),
            description: String::new(),
            artifacts: Vec::new(),
            facts: BTreeMap::new(),
            steward_version: "test".into(),
            stored: crate::manifest::Stored::Files,
        };
        for (id, at) in [("dev-20261201-0100-aaaa", 1_000), ("dev-20261201-0200-bbbb", 2_000), ("dev-20261201-0300-cccc", 3_000)] {
            let manifest = manifest(id, at);
            rows::upsert(db.pool(), &row_of(&manifest, &manifest.to_json().unwrap(), None, None)).await.unwrap();
        }
        let [old, middle, newest] = ["dev-20261201-0100-aaaa", "dev-20261201-0200-bbbb", "dev-20261201-0300-cccc"];
        assert_eq!(engine.newest_proven("dev").await.unwrap(), None);

        engine.record_test_restore(&alice(), old, None, "db: restored", None).await.unwrap();
        engine.record_test_restore(&alice(), middle, None, "db: restored", None).await.unwrap();
        engine.record_test_restore(&alice(), newest, None, "db: restored", Some("db (postgres): role x does not exist")).await.unwrap();
        // The newest passing one is the middle: the newest backup failed.
        assert_eq!(engine.newest_proven("dev").await.unwrap().as_deref(), Some(middle));
        let (id, at) = rows::newest_proven_at(db.pool(), "dev").await.unwrap().unwrap();
        assert_eq!(id, middle);
        assert!(matches!(engine.backup(middle).await.unwrap().unwrap().test_restore, TestRestore::Passed { at_ms, .. } if at_ms == at));
        // A later failure of the middle one takes its badge away: the newest result counts.
        engine.record_test_restore(&alice(), middle, None, "checksums", Some("damaged")).await.unwrap();
        assert_eq!(engine.newest_proven("dev").await.unwrap().as_deref(), Some(old));
        let backup = engine.backup(middle).await.unwrap().unwrap();
        assert!(matches!(&backup.test_restore, TestRestore::Failed { error, .. } if error == "damaged"), "{:?}", backup.test_restore);
        let history = engine.test_restores(middle, 10).await.unwrap();
        assert!(matches!(history[..], [TestRestore::Failed { .. }, TestRestore::Passed { .. }]), "{history:?}");
        let (listed, _) = engine.backups("dev", Order::NewestFirst, 0, 10).await.unwrap();
        assert!(matches!(listed[0].test_restore, TestRestore::Failed { .. }));
        assert!(matches!(listed[2].test_restore, TestRestore::Passed { .. }));
        assert!(engine.record_test_restore(&alice(), "dev-20200101-0000-none", None, "", None).await.is_err());

        // A backup removed from the catalog takes its history with it.
        assert!(rows::delete(db.pool(), old).await.unwrap());
        assert!(engine.test_restores(old, 10).await.unwrap().is_empty());
        assert_eq!(engine.newest_proven("dev").await.unwrap(), None);
        let actions: Vec<(String, Outcome)> = audit::recent(db.pool(), None, 100).await.unwrap().into_iter().map(|e| (e.action, e.outcome)).collect();
        assert_eq!(actions.iter().filter(|a| a.0 == "backup.test_restore").count(), 4, "{actions:?}");
    }

    async fn a_backup_captures_every_resource_verifies_and_is_catalogued(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path()).await;
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_backup(&alice(), "dev", "before the upgrade", Trigger::Manual).await.unwrap();
        let backup_id = job.spec.as_ref().and_then(|s| s.backup_id()).unwrap().to_string();
        assert!(backup_id.starts_with("dev-"), "{backup_id}");
        assert_eq!(job.steps.len(), 6, "facts, three resources, verify, publish: {:?}", job.steps);
        let job = wait_until_finished(&engine, job.id).await;
        let log = log_text(&engine, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{log}");
        assert_eq!(job.steps_done, 6);

        let backup = engine.backup(&backup_id).await.unwrap().expect("catalogued");
        assert_eq!(backup.environment, "dev");
        assert_eq!(backup.requested_by, "alice");
        assert_eq!(backup.description, "before the upgrade");
        assert_eq!(backup.trigger, "manual");
        assert_eq!(backup.job_id, Some(job.id));
        assert_eq!(backup.resources, vec!["app-db", "exported", "files"]);
        assert!(matches!(backup.verification, Verification::Passed { .. }));
        assert_eq!(backup.manifest.facts["release"], "v2.4.1");
        assert!(backup.manifest.facts["broken"].starts_with("unavailable: "), "{:?}", backup.manifest.facts);
        assert!(log.contains("Fact broken is unavailable"), "{log}");
        let sizes: u64 = backup.manifest.artifacts.iter().map(|a| a.size).sum();
        assert_eq!(backup.total_size, sizes);
        assert!(sizes > 0);

        // The repository holds each file artifact as the manifest says, the tree as a tree.
        assert_eq!(backup.manifest.stored, crate::manifest::Stored::Repository);
        for artifact in backup.manifest.artifacts.iter().filter(|a| !a.tree) {
            let (id, path) = (backup_id.clone(), format!("/{}", artifact.file));
            let bytes = engine
                .with_repository(false, move |repo| {
                    let mut out = Vec::new();
                    repo.read_file(&id, &path, &mut out).map(|()| out)
                })
                .await
                .unwrap();
            let (size, sha) = drivers::sha256_of_reader(&bytes[..]).await.unwrap();
            assert_eq!((size, sha.as_str()), (artifact.size, artifact.sha256.as_str()), "{}", artifact.file);
        }
        let tree = backup.manifest.artifacts.iter().find(|a| a.resource == "files").unwrap();
        assert!(tree.tree && tree.size > 0, "{tree:?}");
        assert_eq!(staging_entries(root.path()), 0, "nothing left in staging");
        let (page, total) = engine.backups("dev", Order::NewestFirst, 0, 10).await.unwrap();
        assert_eq!((page.len(), total), (1, 1));
        assert_eq!(engine.latest_backup("dev").await.unwrap().unwrap().id, backup_id);

        // Verify: intact, then damage in the repository's data is found and named.
        assert!(engine.verify_backup(&alice(), &backup_id).await.unwrap().ok());
        crate::backups::testing::damage_packs(&root.path().join("repository"));
        let report = engine.verify_backup(&alice(), &backup_id).await.unwrap();
        assert!(!report.ok());
        assert!(report.summary().contains("cannot be read back from the repository"), "{}", report.summary());
        assert!(report.summary().contains(&backup_id), "{}", report.summary());
        let backup = engine.backup(&backup_id).await.unwrap().unwrap();
        assert!(matches!(backup.verification, Verification::Failed { .. }), "{:?}", backup.verification);
        // The same as a read-only job (the console's Verify button): fails, naming the file.
        let verify = engine.request_verify(&alice(), &backup_id).await.unwrap();
        assert!(!verify.exclusive);
        let verify = wait_until_finished(&engine, verify.id).await;
        assert_eq!(verify.state, JobState::Failed);
        let verify_log = log_text(&engine, verify.id).await;
        assert!(verify_log.contains("cannot be read back from the repository"), "{verify_log}");
        assert!(engine.request_verify(&alice(), "dev-20260101-0000-none").await.is_err());
        let audit: Vec<(String, Outcome)> = audit::recent(db.pool(), None, 100).await.unwrap().into_iter().map(|e| (e.action, e.outcome)).collect();
        assert!(audit.contains(&("backup.create".to_string(), Outcome::Ok)), "{audit:?}");
        assert!(audit.contains(&("backup.verify".to_string(), Outcome::Failed)), "{audit:?}");
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_failing_resource_fails_the_backup_and_leaves_nothing(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path()).await;
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_backup(&alice(), "bad", "", Trigger::Manual).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        let log = log_text(&engine, job.id).await;
        assert_eq!(job.state, JobState::Failed, "{log}");
        let error = job.error.unwrap_or_default();
        assert!(error.contains("bad / b-broken (command)"), "{error}");
        // The tool's own words, in the error and the log.
        assert!(error.contains("pg_dump: error: connection refused"), "{error}");
        assert!(log.contains("pg_dump: error: connection refused"), "{log}");
        assert!(log.contains("Removed what this backup had written so far."), "{log}");
        assert_eq!(staging_entries(root.path()), 0);
        assert!(engine.storage().list("bad").await.unwrap().is_empty());
        assert_eq!(engine.backups("bad", Order::NewestFirst, 0, 10).await.unwrap().1, 0);
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_backup_and_another_change_never_run_together(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path()).await;
        engine.request_backup(&alice(), "slow", "", Trigger::Manual).await.unwrap();
        let refused = engine.request_backup(&alice(), "slow", "", Trigger::Manual).await.unwrap_err();
        assert!(refused.to_string().starts_with("slow is busy: backup #"), "{refused}");
        let nothing = engine.request_backup(&alice(), "empty", "", Trigger::Manual).await.unwrap_err();
        assert!(nothing.to_string().starts_with("empty has nothing to back up"), "{nothing}");
    }

    async fn a_cancelled_backup_leaves_nothing_and_a_retry_gets_a_new_id(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path()).await;
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_backup(&alice(), "slow", "", Trigger::Manual).await.unwrap();
        for _ in 0..200 {
            if log_text(&engine, job.id).await.contains("started") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(staging_entries(root.path()), 1, "being written");
        // Cleaning at start spares a running backup.
        assert_eq!(engine.clean_backup_staging().await.unwrap(), 0);
        engine.cancel_job(&alice(), job.id).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        assert_eq!(job.state, JobState::Cancelled);
        assert_eq!(staging_entries(root.path()), 0);
        let retry = engine.retry_job(&alice(), job.id, "").await.unwrap();
        let (old, new) = (job.spec.unwrap(), retry.spec.clone().unwrap());
        assert_ne!(old.backup_id(), new.backup_id());
        engine.cancel_job(&alice(), retry.id).await.unwrap();
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn the_catalog_is_rebuilt_from_storage(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path()).await;
        let workers = engine.start_workers().await.unwrap();
        let mut ids = Vec::new();
        for description in ["one", "two"] {
            let job = engine.request_backup(&alice(), "dev", description, Trigger::Manual).await.unwrap();
            assert_eq!(wait_until_finished(&engine, job.id).await.state, JobState::Succeeded);
            ids.push(job.spec.unwrap().backup_id().unwrap().to_string());
        }
        workers.shutdown(Duration::from_secs(1)).await;
        let (before, _) = engine.backups("dev", Order::NewestFirst, 0, 10).await.unwrap();

        // The database loses its catalog; a stray directory without a manifest is ignored.
        sqlx::query("DELETE FROM backup").execute(db.pool()).await.unwrap();
        std::fs::create_dir_all(root.path().join("backups/dev/dev-20260101-0000-dead")).unwrap();
        let report = engine.reindex_backups(&alice()).await.unwrap();
        assert_eq!((report.indexed, report.removed), (2, 0), "{report:?}");
        let (after, total) = engine.backups("dev", Order::NewestFirst, 0, 10).await.unwrap();
        assert_eq!(total, 2);
        let strip = |b: &Backup| (b.id.clone(), b.created_at_ms, b.total_size, b.description.clone(), b.manifest.clone());
        assert_eq!(after.iter().map(strip).collect::<Vec<_>>(), before.iter().map(strip).collect::<Vec<_>>());

        // A backup removed from the repository leaves the catalog at the next reindex.
        let gone = ids[0].clone();
        engine.with_repository(false, move |repo| repo.forget(&[&gone])).await.unwrap();
        let report = engine.reindex_backups(&alice()).await.unwrap();
        assert_eq!((report.indexed, report.removed), (1, 1));
        assert!(engine.backup(&ids[0]).await.unwrap().is_none());

        // Sorting and paging.
        let (largest, _) = engine.backups("dev", Order::OldestFirst, 0, 1).await.unwrap();
        assert_eq!(largest[0].id, ids[1]);
        let (none, total) = engine.backups("dev", Order::NewestFirst, 5, 10).await.unwrap();
        assert_eq!((none.len(), total), (0, 1));
    }
}

#[test]
fn the_badge_names_the_resources_restored_not_the_checksums_or_those_skipped() {
    let checked = "checksums: all 3 artifacts match their checksums; db: restored into a scratch database (4 tables); \
                   cms: skipped, the remote system keeps and restores its own backup; files: 12 files, 3 directories, \
                   0 symbolic links (1.2 MiB) unpacked and compared with the manifest";
    assert_eq!(checked_resources(checked), ["db", "files"]);
    assert!(checked_resources("checksums").is_empty());
}
