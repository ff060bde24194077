//! Export on one instance, import on another (separate databases and repositories), restore
//! there; the export read with `tar` and `zstd` alone; a tampered export refused whole.

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use super::*;
use crate::{
    Config,
    config::{Environment, JobsConfig, Resource, StorageConfig},
    db::Db,
    drivers::testing::tree_state,
    jobs::{JobState, Trigger},
    restores::RestoreRequest,
    testing::{TestDb, log_text, wait_until_finished},
};

fn alice() -> Actor {
    Actor {
        username: Some("alice".into()),
        client_ip: Some("10.0.0.7".into()),
    }
}

/// An instance under `root` whose environment `name` has a directory `files` at `files`.
fn instance(db: &Db, root: &Path, name: &str, files: &Path) -> Engine {
    let mut resources = BTreeMap::new();
    resources.insert(
        "files".to_string(),
        Resource::Directory {
            path: files.to_path_buf(),
            include: vec![],
            exclude: vec![],
        },
    );
    resources.insert(
        "notes".to_string(),
        Resource::Command {
            backup: vec![
                "sh".into(),
                "-c".into(),
                "echo 'the notes' > \"$STEWARD_OUTPUT_DIR/notes.txt\"".into(),
            ],
            restore: Some(vec!["true".into()]),
            verify: None,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            timeout_seconds: 60,
        },
    );
    let config = Config {
        environments: vec![Environment {
            name: name.into(),
            label: name.into(),
            colour: "#1f6feb".into(),
            resources,
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
            ..Default::default()
        },
        data_dir: root.to_path_buf(),
        ..Config::default()
    };
    Engine::new(config, db.clone())
}

fn sh(script: &str) {
    let status = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
}

crate::db_tests! {
    async fn a_backup_exported_here_is_imported_and_restored_there(db) {
        let root = tempfile::tempdir().unwrap();
        let files = root.path().join("site");
        std::fs::create_dir_all(files.join("pages")).unwrap();
        std::fs::write(files.join("pages/index.html"), "<h1>Shop</h1>\n").unwrap();
        std::fs::write(files.join("data.bin"), vec![42u8; 70_000]).unwrap();
        std::os::unix::fs::symlink("pages/index.html", files.join("home")).unwrap();
        let here = instance(db, &root.path().join("here"), "prod", &files);
        let workers = here.start_workers().await.unwrap();
        let job = here.request_backup(&alice(), "prod", "to move", Trigger::Manual).await.unwrap();
        let id = job.spec.as_ref().and_then(|s| s.backup_id()).unwrap().to_string();
        let job = wait_until_finished(&here, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{}", log_text(&here, job.id).await);
        workers.shutdown(Duration::from_secs(1)).await;
        let backed_up = tree_state(&files);

        let file = root.path().join("moved.tar");
        let exported = here.export_backup(&alice(), &id, &file).await.unwrap();
        assert_eq!(exported.artifacts, 2);
        assert!(file.is_file() && !root.path().join("moved.partial").exists());

        // Readable with tar and zstd alone.
        let by_hand = root.path().join("by-hand");
        std::fs::create_dir_all(by_hand.join("tree")).unwrap();
        sh(&format!(
            "cd '{dir}' && tar -xf '{file}' && zstd -dcq '{id}/files/files.tar.zst' | tar -xf - -C tree",
            dir = by_hand.display(),
            file = file.display()
        ));
        assert_eq!(tree_state(&by_hand.join("tree")), backed_up);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(by_hand.join(&id).join("manifest.json")).unwrap()).unwrap();
        for artifact in manifest["artifacts"].as_array().unwrap() {
            let path = by_hand.join(&id).join(artifact["file"].as_str().unwrap());
            let (size, sha256) = crate::drivers::sha256_of(&path).await.unwrap();
            assert_eq!(size, artifact["size"].as_u64().unwrap());
            assert_eq!(sha256, artifact["sha256"].as_str().unwrap());
        }

        // Another instance: its own database, repository and environment name.
        let other_db = TestDb::sqlite().await;
        let restored_files = root.path().join("there-site");
        std::fs::create_dir_all(&restored_files).unwrap();
        std::fs::write(restored_files.join("old.txt"), "staging's own, before the restore").unwrap();
        let there = instance(&other_db.db, &root.path().join("there"), "staging", &restored_files);
        let refused = there.import_backup(&alice(), &file, None).await.unwrap_err().to_string();
        assert!(refused.contains("there is no environment \"prod\" here"), "{refused}");

        // A tampered copy is refused whole.
        let tampered_dir = root.path().join("tampered");
        std::fs::create_dir_all(&tampered_dir).unwrap();
        sh(&format!("cd '{}' && tar -xf '{}'", tampered_dir.display(), file.display()));
        let notes = tampered_dir.join(&id).join("notes/output.tar.zst");
        let mut bytes = std::fs::read(&notes).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&notes, bytes).unwrap();
        let tampered = root.path().join("tampered.tar");
        sh(&format!("cd '{}' && tar -cf '{}' '{id}'", tampered_dir.display(), tampered.display()));
        let refused = there.import_backup(&alice(), &tampered, Some("staging")).await.unwrap_err().to_string();
        assert!(refused.contains("does not match its manifest") && refused.contains("notes/output.tar.zst"), "{refused}");
        assert!(there.repository_backups().await.unwrap().is_empty(), "nothing was stored");
        assert!(there.backup(&id).await.unwrap().is_none(), "nothing was catalogued");

        // The real one is imported, catalogued, audited, and restores there.
        let imported = there.import_backup(&alice(), &file, Some("staging")).await.unwrap();
        assert_eq!(imported.environment, "staging");
        let listed = there.backup(&id).await.unwrap().expect("catalogued");
        assert_eq!(listed.environment, "staging");
        assert!(there.verify_backup(&alice(), &id).await.unwrap().ok());
        let again = there.import_backup(&alice(), &file, Some("staging")).await.unwrap_err().to_string();
        assert!(again.contains("already in this catalog"), "{again}");
        let workers = there.start_workers().await.unwrap();
        let job = there
            .request_restore(
                &alice(),
                &RestoreRequest {
                    backup_id: id.clone(),
                    reason: "moved from production".into(),
                    confirm_environment: "staging".into(),
                    confirm_production: false,
                },
            )
            .await
            .unwrap();
        let job = wait_until_finished(&there, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{}", log_text(&there, job.id).await);
        workers.shutdown(Duration::from_secs(1)).await;
        assert_eq!(tree_state(&restored_files), backed_up);
        let actions: Vec<String> = crate::audit::recent(other_db.db.pool(), None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(actions.contains(&"backup.import".to_string()), "{actions:?}");
        let actions: Vec<String> =
            crate::audit::recent(db.pool(), None, 100).await.unwrap().into_iter().map(|e| e.action).collect();
        assert!(actions.contains(&"backup.export".to_string()), "{actions:?}");
    }
}
