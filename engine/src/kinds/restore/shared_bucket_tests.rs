//! Two Steward instances on one database and one S3 bucket (a real `moto_server` process):
//! a backup taken by one is listed, verified and restored by the other; retention prunes the
//! bucket; the catalog is rebuilt from the bucket alone; and Debian's `restic` reads it.

use std::{collections::BTreeMap, path::Path, time::Duration};

use crate::{
    Config, Engine,
    accounts::Actor,
    backups::Order,
    config::{Environment, JobsConfig, Resource, SecretSource, StorageConfig, storage::S3Config},
    db::Db,
    drivers::testing::tree_state,
    jobs::{JobState, Trigger},
    restores::RestoreRequest,
    retention::Policy,
    testing::{log_text, s3_server::S3Server, wait_until_finished},
};

const PASSWORD: &str = "shared by every instance";

/// An instance with its own data directory (staging, cache) under `root`, the shared `db`, and
/// the repository at `shared` in the bucket. `dev` has one directory, `files`.
fn instance(db: &Db, root: &Path, files: &Path, server: &S3Server) -> Engine {
    let secret = |name: &str, value: &str| {
        let path = root.join(name);
        std::fs::write(&path, value).unwrap();
        SecretSource::File(path)
    };
    let location = server.location("shared");
    std::fs::create_dir_all(root).unwrap();
    let mut resources = BTreeMap::new();
    resources.insert(
        "files".to_string(),
        Resource::Directory {
            path: files.to_path_buf(),
            include: vec![],
            exclude: vec!["*.tmp".into()],
        },
    );
    let config = Config {
        environments: vec![Environment {
            name: "dev".into(),
            label: "Development".into(),
            colour: "#1f6feb".into(),
            resources,
            retention: Some(Policy {
                keep_last: Some(1),
                ..Policy::default()
            }),
            ..Default::default()
        }],
        jobs: JobsConfig {
            workers: 1,
            lease_seconds: 5,
            cancel_grace_seconds: 1,
            shutdown_grace_seconds: 1,
        },
        storage: StorageConfig {
            path: Some(root.join("backups")),
            s3: Some(S3Config {
                endpoint: location.endpoint.clone(),
                bucket: location.bucket.clone(),
                region: location.region.clone(),
                prefix: location.prefix.clone(),
                access_key_id: secret("key-id", &location.access_key_id),
                secret_access_key: secret("key", &location.secret_access_key),
            }),
            password: Some(secret("password", PASSWORD)),
            repository: None,
            upload_limit_mib: None,
        },
        data_dir: root.to_path_buf(),
        ..Config::default()
    };
    Engine::new(config, db.clone())
}

fn alice() -> Actor {
    Actor {
        username: Some("alice".into()),
        client_ip: Some("10.0.0.7".into()),
    }
}

async fn back_up(engine: &Engine) -> String {
    let job = engine
        .request_backup(&alice(), "dev", "nightly", Trigger::Manual)
        .await
        .unwrap();
    let id = job.spec.as_ref().and_then(|s| s.backup_id()).unwrap().to_string();
    let job = wait_until_finished(engine, job.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{}", log_text(engine, job.id).await);
    id
}

crate::db_tests! {
    async fn two_instances_share_one_bucket(db) {
        let server = S3Server::start().await;
        let root = tempfile::tempdir().unwrap();
        let files = root.path().join("files");
        std::fs::create_dir_all(files.join("docs")).unwrap();
        std::fs::write(files.join("docs/readme.txt"), "version 1\n").unwrap();
        std::fs::write(files.join("scratch.tmp"), "never backed up").unwrap();
        let one = instance(db, &root.path().join("one"), &files, &server);
        let two = instance(db, &root.path().join("two"), &files, &server);

        // Instance one takes two backups.
        let workers = one.start_workers().await.unwrap();
        let first = back_up(&one).await;
        let backed_up = tree_state(&files);
        std::fs::write(files.join("docs/readme.txt"), "version 2, changed\n").unwrap();
        let second = back_up(&one).await;
        workers.shutdown(Duration::from_secs(1)).await;

        // Instance two lists them (catalog and bucket), verifies and restores the first.
        let (listed, _) = two.backups("dev", Order::OldestFirst, 0, 10).await.unwrap();
        assert_eq!(listed.iter().map(|b| b.id.clone()).collect::<Vec<_>>(), [first.clone(), second.clone()]);
        let in_bucket: Vec<String> = two.repository_backups().await.unwrap().into_iter().map(|b| b.backup_id).collect();
        assert_eq!(in_bucket, [first.clone(), second.clone()], "{}", server.log());
        assert!(two.verify_backup(&alice(), &first).await.unwrap().ok());
        let workers = two.start_workers().await.unwrap();
        let job = two
            .request_restore(
                &alice(),
                &RestoreRequest {
                    backup_id: first.clone(),
                    reason: "the second night broke it".into(),
                    confirm_environment: "dev".into(),
                    confirm_production: false,
                },
            )
            .await
            .unwrap();
        let job = wait_until_finished(&two, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{}", log_text(&two, job.id).await);
        // The tree is as it was; what the globs left out stayed where it was.
        assert_eq!(tree_state(&files), backed_up);
        assert_eq!(std::fs::read_to_string(files.join("scratch.tmp")).unwrap(), "never backed up");

        // Retention keeps the newest backup and the restore's safety backup, and prunes the
        // bucket of the first.
        let job = two.request_prune(&alice(), "dev", false).await.unwrap();
        let job = wait_until_finished(&two, job.id).await;
        let log = log_text(&two, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{log}");
        assert!(log.contains("Pruning the repository"), "{log}");
        workers.shutdown(Duration::from_secs(1)).await;
        let kept: Vec<String> = one.repository_backups().await.unwrap().into_iter().map(|b| b.backup_id).collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept.contains(&second) && !kept.contains(&first), "{kept:?} first {first} second {second}: {log}");
        one.with_repository(false, |repo| repo.check(true)).await.unwrap();

        // The catalog is rebuilt from the bucket alone.
        sqlx::query("DELETE FROM backup").execute(db.pool()).await.unwrap();
        let report = one.reindex_backups(&alice()).await.unwrap();
        assert_eq!((report.indexed, report.removed), (2, 0), "{report:?}");
        let (listed, _) = one.backups("dev", Order::OldestFirst, 0, 10).await.unwrap();
        assert_eq!(listed.iter().map(|b| b.id.clone()).collect::<Vec<_>>(), kept);

        // restic reads the bucket with the same password.
        let output = std::process::Command::new("restic")
            .args(["--no-cache", "-r", &server.location("shared").describe(), "snapshots", "--json"])
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("AWS_ACCESS_KEY_ID", server.location("shared").access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", server.location("shared").secret_access_key)
            .output()
            .expect("Debian's restic: run scripts/setup.sh");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let snapshots: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(snapshots.as_array().unwrap().len(), 2, "{snapshots}");
    }

    async fn an_unreachable_bucket_fails_the_backup_naming_it_and_leaves_nothing(db) {
        let root = tempfile::tempdir().unwrap();
        let files = root.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("a.txt"), "a").unwrap();
        let server = S3Server::start().await;
        let engine = instance(db, &root.path().join("one"), &files, &server);
        drop(server);
        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_backup(&alice(), "dev", "", Trigger::Manual).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        let error = job.error.clone().unwrap_or_default();
        assert_eq!(job.state, JobState::Failed, "{error}");
        assert!(error.contains("could not reach") && error.contains("s3:http://127.0.0.1:"), "{error}");
        let (listed, total) = engine.backups("dev", Order::NewestFirst, 0, 10).await.unwrap();
        assert_eq!((listed.len(), total), (0, 0));
        workers.shutdown(Duration::from_secs(1)).await;
    }
}
