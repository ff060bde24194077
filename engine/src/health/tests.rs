//! The dashboard's status on a real catalog and a real worker, on both databases.

use std::collections::BTreeMap;

use super::*;
use crate::{
    Config,
    accounts::Actor,
    config::{Environment, Resource, Schedule, StorageConfig},
    db::Db,
    manifest::Trigger,
    testing::wait_until_finished,
};

fn engine(db: &Db, root: &std::path::Path) -> Engine {
    std::fs::create_dir_all(root.join("files")).unwrap();
    std::fs::write(root.join("files/a.txt"), "hello").unwrap();
    let config = Config {
        environments: vec![Environment {
            name: "shop".into(),
            label: "Shop".into(),
            colour: "#6a1b9a".into(),
            backup_expected_within_hours: Some(24),
            timezone: "Europe/Berlin".into(),
            resources: BTreeMap::from([(
                "files".to_string(),
                Resource::Directory {
                    path: root.join("files"),
                    include: vec![],
                    exclude: vec![],
                },
            )]),
            schedules: BTreeMap::from([(
                "nightly".to_string(),
                Schedule {
                    what: "backup".into(),
                    cron: "0 2 * * *".into(),
                    description: None,
                    count: None,
                    busy_wait_minutes: 60,
                    prune_after: true,
                },
            )]),
            ..Default::default()
        }],
        storage: StorageConfig {
            path: Some(root.join("backups")),
            ..Default::default()
        },
        data_dir: root.to_path_buf(),
        ..Config::default()
    };
    Engine::new(config, db.clone())
}

crate::db_tests! {
    async fn the_dashboard_says_overdue_then_ok_then_in_maintenance(db) {
        let root = tempfile::tempdir().unwrap();
        let engine = engine(db, root.path());
        let alice = Actor {
            username: Some("alice".into()),
            client_ip: None,
        };

        let health = engine.health("shop").await.unwrap();
        assert_eq!(health.status, Status::BackupOverdue);
        assert_eq!(health.why.as_deref(), Some("no backup yet; one is expected every 24 hours"));
        assert_eq!((health.stored_bytes, health.backup_count), (0, 0));
        let (next_at, what) = health.next_run.clone().unwrap();
        assert_eq!(what, "backup");
        assert_eq!(crate::schedules::local(next_at, "Europe/Berlin".parse().unwrap(), "%H:%M"), "02:00");
        assert!(matches!(engine.health("nope").await, Err(HealthError::UnknownEnvironment(_))));

        let workers = engine.start_workers().await.unwrap();
        let job = engine.request_backup(&alice, "shop", "", Trigger::Manual).await.unwrap();
        wait_until_finished(&engine, job.id).await;
        let health = engine.health("shop").await.unwrap();
        assert_eq!((health.status, health.why), (Status::Ok, None));
        assert_eq!(health.backup_count, 1);
        assert!(health.stored_bytes > 0);
        assert!(health.last_backup.is_some());
        assert_eq!(health.last_proven, None);

        let job = engine.switch_maintenance(&alice, "shop", true, "disk swap").await.unwrap();
        wait_until_finished(&engine, job.id).await;
        let health = engine.health("shop").await.unwrap();
        assert_eq!(health.status, Status::InMaintenance);
        assert!(health.why.unwrap().ends_with("by alice"));
        workers.shutdown(std::time::Duration::from_secs(1)).await;
    }
}
