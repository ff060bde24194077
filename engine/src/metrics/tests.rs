//! The metrics as Prometheus reads them: a real Prometheus recorder (set for the test's thread
//! only), rendered to text, over real SQLite and PostgreSQL.

use std::collections::BTreeMap;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use super::*;
use crate::{
    Config, Engine,
    accounts::Actor,
    config::{Action, Environment, Resource},
    db::{
        Db,
        backups::{BackupRow, TestRestoreRow},
        maintenance::MaintenanceRow,
        now_ms,
    },
    db::{backups as backup_rows, maintenance as maintenance_rows},
    jobs::{JobRequest, JobSpec},
    kinds::command::Command,
};

fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix(DURATION_SUFFIX.into()), DURATION_BUCKETS)
        .unwrap()
        .build_recorder()
}

/// The value of the sample `name` whose labels include every `labels` pair; `None` when there
/// is no such line.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let wanted = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        (metric == name && wanted).then(|| value.parse().ok()).flatten()
    })
}

/// `prod` has something to back up (a directory nobody reads here) and a slow action; `empty`
/// has nothing.
fn engine(db: &Db) -> Engine {
    let mut prod = Environment {
        name: "prod".into(),
        label: "Production".into(),
        colour: "#c62828".into(),
        backup_expected_within_hours: Some(24),
        ..Default::default()
    };
    prod.resources.insert(
        "files".into(),
        Resource::Directory {
            path: "/nonexistent".into(),
            include: vec![],
            exclude: vec![],
        },
    );
    prod.actions.insert(
        "slow".into(),
        Action {
            label: "Sleep".into(),
            command: vec!["sleep".into(), "600".into()],
            workdir: None,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            timeout_seconds: 60,
            exclusive: true,
        },
    );
    let empty = Environment {
        name: "empty".into(),
        label: "Empty".into(),
        colour: "#2e7d32".into(),
        ..Default::default()
    };
    Engine::new(
        Config {
            environments: vec![prod, empty],
            ..Config::default()
        },
        db.clone(),
    )
}

fn backup(id: &str, created_at: i64, size: i64) -> BackupRow {
    BackupRow {
        id: id.into(),
        environment: "prod".into(),
        created_at,
        finished_at: created_at + 1000,
        trigger_type: "manual".into(),
        requested_by: "alice".into(),
        description: String::new(),
        total_size: size,
        resources: "files".into(),
        pinned: 0,
        verified_at: None,
        verify_ok: None,
        verify_error: None,
        job_id: None,
        manifest: "{}".into(),
        test_restore_at: None,
        test_restore_ok: None,
        test_restore_checked: None,
        test_restore_error: None,
        test_restore_job: None,
    }
}

#[test]
fn job_durations_are_histograms_by_kind_and_outcome_and_deliveries_count() {
    let recorder = recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        describe();
        job_finished("backup", "succeeded", Duration::from_secs(42));
        job_finished("backup", "succeeded", Duration::from_millis(300));
        job_finished("backup", "failed", Duration::from_secs(2));
        backup_stored("prod", 12_345, Duration::from_secs(7));
        notification_delivery("ops", true);
        notification_delivery("ops", false);
    });
    let text = handle.render();
    assert!(text.contains("# TYPE steward_job_duration_seconds histogram"), "{text}");
    let ok = [("kind", "backup"), ("outcome", "succeeded")];
    assert_eq!(sample(&text, "steward_job_duration_seconds_count", &ok), Some(2.0));
    assert_eq!(sample(&text, "steward_job_duration_seconds_sum", &ok), Some(42.3));
    let le_1 = [("kind", "backup"), ("outcome", "succeeded"), ("le", "1")];
    assert_eq!(sample(&text, "steward_job_duration_seconds_bucket", &le_1), Some(1.0));
    let failed = [("kind", "backup"), ("outcome", "failed")];
    assert_eq!(sample(&text, "steward_job_duration_seconds_count", &failed), Some(1.0));

    let prod = [("environment", "prod")];
    assert_eq!(sample(&text, "steward_backup_size_bytes", &prod), Some(12_345.0));
    assert_eq!(sample(&text, "steward_backup_duration_seconds_count", &prod), Some(1.0));
    let ops = [("target", "ops")];
    assert_eq!(sample(&text, "steward_notification_deliveries_total", &ops), Some(2.0));
    assert_eq!(sample(&text, "steward_notification_failures_total", &ops), Some(1.0));
    assert!(
        text.contains("# HELP steward_job_duration_seconds How long jobs ran"),
        "{text}"
    );
}

crate::db_tests! {
    async fn the_gauges_follow_the_catalog_the_queue_and_maintenance(db) {
        let engine = engine(db);
        let recorder = recorder();
        let handle = recorder.handle();
        // The test's runtime has one thread: the recorder is there across every await.
        let _local = metrics::set_default_local_recorder(&recorder);
        let prod = [("environment", "prod")];
        let queued = [("state", "queued"), ("kind", "command")];
        let running = [("state", "running"), ("kind", "command")];

        engine.refresh_metrics().await.unwrap();
        let text = handle.render();
        assert_eq!(sample(&text, LAST_BACKUP, &prod), Some(0.0), "never is 0:\n{text}");
        assert_eq!(sample(&text, LAST_TEST_RESTORE, &prod), Some(0.0), "{text}");
        assert_eq!(
            sample(&text, LAST_BACKUP, &[("environment", "empty")]),
            None,
            "nothing to back up, no age to alert on:\n{text}"
        );
        assert_eq!(sample(&text, STORAGE_USED, &prod), Some(0.0));
        assert_eq!(sample(&text, BACKUPS, &prod), Some(0.0));
        assert_eq!(sample(&text, MAINTENANCE, &prod), Some(0.0));
        assert_eq!(sample(&text, BACKUP_EXPECTED_WITHIN, &prod), Some(86_400.0));
        assert_eq!(sample(&text, BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
        assert_eq!(sample(&text, JOBS, &queued), Some(0.0), "every known kind reads 0:\n{text}");
        assert_eq!(sample(&text, JOBS, &running), Some(0.0));

        // No workers: the job stays queued.
        let request = JobRequest {
            environment: "prod".into(),
            spec: JobSpec::new(Command { action: "slow".into() }),
            reason: String::new(),
            parent_id: None,
        };
        let job = engine.request_job(&Actor::cli(), request).await.unwrap();
        let now = now_ms();
        backup_rows::upsert(db.pool(), &backup("prod-old", now - 7_200_000, 1_000)).await.unwrap();
        backup_rows::upsert(db.pool(), &backup("prod-new", now - 60_000, 3_000_000_000)).await.unwrap();
        backup_rows::record_test_restore(
            db.pool(),
            &TestRestoreRow {
                backup_id: "prod-old".into(),
                job_id: None,
                at: now - 3_600_000,
                ok: 1,
                checked: "files".into(),
                error: None,
            },
        )
        .await
        .unwrap();
        maintenance_rows::insert(
            db.pool(),
            &MaintenanceRow {
                environment: "prod".into(),
                since: now,
                entered_by: "alice".into(),
                reason: "upgrade".into(),
                hook_state: "null".into(),
                job_id: None,
            },
        )
        .await
        .unwrap();

        engine.refresh_metrics().await.unwrap();
        let text = handle.render();
        assert_eq!(sample(&text, LAST_BACKUP, &prod), Some(seconds(now - 60_000)), "{text}");
        assert_eq!(sample(&text, LAST_TEST_RESTORE, &prod), Some(seconds(now - 3_600_000)));
        // Past 2^31: PostgreSQL's sum is cast back to BIGINT, not truncated.
        assert_eq!(sample(&text, STORAGE_USED, &prod), Some(3_000_001_000.0));
        assert_eq!(sample(&text, BACKUP_SIZE, &prod), Some(3_000_000_000.0));
        assert_eq!(sample(&text, BACKUPS, &prod), Some(2.0));
        assert_eq!(sample(&text, MAINTENANCE, &prod), Some(1.0));
        assert_eq!(sample(&text, JOBS, &queued), Some(1.0), "{text}");

        // Gone from the queue: back to 0, not left at its last count.
        engine.cancel_job(&Actor::cli(), job.id).await.unwrap();
        engine.refresh_metrics().await.unwrap();
        let text = handle.render();
        assert_eq!(sample(&text, JOBS, &queued), Some(0.0), "{text}");
    }
}
