use std::{collections::BTreeMap, time::Duration};

use super::*;
use crate::{
    Config,
    config::{Action, Environment, JobsConfig, Resource},
    db::Db,
    jobs::{JobRequest, JobSpec},
    kinds::command::Command,
    testing::{Receiver, wait_until_finished},
};

fn notifications(receivers: &[(&str, &Receiver)]) -> NotificationsConfig {
    NotificationsConfig {
        targets: receivers
            .iter()
            .map(|(name, receiver)| {
                let target = Target::Webhook {
                    url: receiver.url.clone(),
                    secret_header: None,
                };
                (name.to_string(), target)
            })
            .collect(),
        retry_seconds: 1,
        timeout_seconds: 5,
        ..Default::default()
    }
}

/// An engine over `db` with environment `prod` (an action `flaky` that fails until `ok_file`
/// exists), notifying `receivers`.
fn engine(db: &Db, receivers: &[(&str, &Receiver)], ok_file: &std::path::Path) -> Engine {
    let script = format!("test -e {} || {{ echo 'disk full' >&2; exit 3; }}", ok_file.display());
    let flaky = Action {
        label: "Flaky".into(),
        command: vec!["sh".into(), "-c".into(), script],
        workdir: None,
        env: BTreeMap::new(),
        secret_env: BTreeMap::new(),
        timeout_seconds: 60,
        exclusive: false,
    };
    let config = Config {
        environments: vec![Environment {
            name: "prod".into(),
            label: "Production".into(),
            colour: "#c62828".into(),
            actions: BTreeMap::from([("flaky".to_string(), flaky)]),
            ..Default::default()
        }],
        jobs: JobsConfig {
            workers: 1,
            lease_seconds: 30,
            cancel_grace_seconds: 1,
            shutdown_grace_seconds: 1,
        },
        notifications: notifications(receivers),
        ..Config::default()
    };
    Engine::new(config, db.clone())
}

fn alert(summary: &str) -> Alert {
    Alert {
        kind: Kind::BackupFailed,
        environment: Some("prod".into()),
        severity: Severity::Critical,
        summary: summary.into(),
        detail: None,
        link: "/jobs/1".into(),
        job_id: None,
    }
}

fn recovery(_: &rows::ConditionRow) -> Alert {
    Alert {
        kind: Kind::Recovered,
        ..alert("prod: backup succeeded again")
    }
}

async fn summaries(engine: &Engine) -> Vec<String> {
    let mut all = engine
        .notification_history(&HistoryFilter::default(), None, 100)
        .await
        .unwrap();
    all.reverse();
    all.into_iter().map(|n| n.summary).collect()
}

const MINUTE: i64 = 60_000;

crate::db_tests! {
    async fn a_flapping_condition_notifies_once_per_window_and_its_unnotified_recoveries_not_at_all(db) {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &[("hook", &receiver)], &dir.path().join("ok"));
        let config = &engine.config().notifications;
        let t0 = 1_800_000_000_000;
        let step = |at: i64, fail: bool| {
            let engine = engine.clone();
            async move {
                let mut tx = engine.db().begin_write().await.unwrap();
                let config = &engine.config().notifications;
                if fail {
                    raise(&mut tx, config, "backup:prod", alert("prod: backup failed"), Repeat::Each, at).await.unwrap();
                } else {
                    resolve(&mut tx, config, "backup:prod", recovery, at).await.unwrap();
                }
                tx.commit().await.unwrap();
            }
        };
        // Fails, recovers, and flaps three more times within the hour's window.
        step(t0, true).await;
        step(t0 + MINUTE, false).await;
        for i in 0..3 {
            step(t0 + (2 + 2 * i) * MINUTE, true).await;
            step(t0 + (3 + 2 * i) * MINUTE, false).await;
        }
        assert_eq!(summaries(&engine).await, ["prod: backup failed", "prod: backup succeeded again"]);
        // Past the window, the next failure is told, with how often it came back unseen.
        step(t0 + 70 * MINUTE, true).await;
        let told = summaries(&engine).await;
        assert_eq!(told.len(), 3, "{told:?}");
        assert_eq!(told[2], "prod: backup failed (it came back 3 more times since the last notification)");
        // A second failure while it is still failing, within the window: counted, not told.
        step(t0 + 75 * MINUTE, true).await;
        assert_eq!(summaries(&engine).await.len(), 3);
        let condition = rows::condition(engine.db().pool(), "backup:prod").await.unwrap().unwrap();
        assert_eq!((condition.firing, condition.occurrences), (1, 2));
        assert_eq!(config.flap_window_minutes, 60);
    }

    async fn a_state_seen_by_every_check_notifies_when_it_begins_only(db) {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &[("hook", &receiver)], &dir.path().join("ok"));
        let config = &engine.config().notifications;
        let t0 = 1_800_000_000_000;
        for i in 0..5 {
            let mut tx = engine.db().begin_write().await.unwrap();
            raise(&mut tx, config, "maintenance:prod", alert("prod: in maintenance too long"), Repeat::Once, t0 + i * 24 * 60 * MINUTE)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(summaries(&engine).await, ["prod: in maintenance too long"]);
    }

    async fn a_failing_job_notifies_each_target_with_the_tools_words_and_its_success_the_recovery(db) {
        let (mail, chat) = (Receiver::start().await, Receiver::start().await);
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        let engine = engine(db, &[("mail", &mail), ("chat", &chat)], &ok);
        let workers = engine.start_workers().await.unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let sender = tokio::spawn({
            let (engine, stop) = (engine.clone(), stop.clone());
            async move { engine.run_notifier("a".into(), stop).await }
        });
        let run = |engine: Engine| async move {
            let request = JobRequest {
                environment: "prod".into(),
                spec: JobSpec::new(Command { action: "flaky".into() }),
                reason: "test".into(),
                parent_id: None,
            };
            let job = engine.request_job(&Actor::cli(), request).await.unwrap();
            wait_until_finished(&engine, job.id).await
        };
        let failed = run(engine.clone()).await;
        let started = std::time::Instant::now();
        let (to_mail, to_chat) = (mail.wait_for(1, 10).await, chat.wait_for(1, 10).await);
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert_eq!((to_mail.len(), to_chat.len()), (1, 1));
        let body = &to_mail[0];
        assert_eq!(body["kind"], "job_failed");
        assert_eq!(body["environment"], "prod");
        assert_eq!(body["severity"], "warning");
        assert_eq!(body["summary"], format!("prod: flaky #{} failed", failed.id));
        assert!(body["detail"].as_str().unwrap().contains("disk full"), "{body}");
        assert!(body["url"].as_str().unwrap().ends_with(&format!("/jobs/{}", failed.id)), "{body}");

        std::fs::write(&ok, "").unwrap();
        let succeeded = run(engine.clone()).await;
        let to_mail = mail.wait_for(2, 10).await;
        assert_eq!(to_mail.len(), 2);
        assert_eq!(to_mail[1]["kind"], "recovered");
        let summary = to_mail[1]["summary"].as_str().unwrap();
        assert!(summary.starts_with(&format!("prod: it succeeded again (flaky #{}), after a failure since", succeeded.id)), "{summary}");
        // A third success is no news.
        run(engine.clone()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!((mail.accepted().len(), chat.accepted().len()), (2, 2));
        stop.cancel();
        sender.await.unwrap();
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_target_down_for_three_attempts_gets_it_once_when_it_is_up_with_every_attempt_recorded(db) {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &[("hook", &receiver)], &dir.path().join("ok"));
        receiver.fail_next(3);
        let mut tx = engine.db().begin_write().await.unwrap();
        let id = raise(&mut tx, &engine.config().notifications, "backup:prod", alert("prod: backup failed"), Repeat::Each, now_ms())
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
        // Backoff 1 s, 2 s, 4 s: up within 10 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while receiver.accepted().is_empty() && std::time::Instant::now() < deadline {
            engine.deliver_due("a").await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for _ in 0..10 {
            engine.deliver_due("a").await.unwrap();
        }
        assert_eq!(receiver.accepted().len(), 1);
        assert_eq!(receiver.received().len(), 4);
        let attempts = engine.delivery_attempts(id, "hook").await.unwrap();
        let outcomes: Vec<bool> = attempts.iter().map(|a| a.ok != 0).collect();
        assert_eq!(outcomes, [false, false, false, true]);
        assert!(attempts[0].error.as_deref().unwrap().contains("503"), "{:?}", attempts[0].error);
        let waits: Vec<i64> = attempts.windows(2).map(|w| w[1].at - w[0].at).collect();
        assert!(waits[0] >= 1_000 && waits[1] >= 2_000 && waits[2] >= 4_000, "{waits:?}");
        let history = engine.notification_history(&HistoryFilter::default(), None, 10).await.unwrap();
        let delivery = &history[0].deliveries[0];
        assert_eq!((delivery.state.as_str(), delivery.attempts), ("delivered", 4));
    }

    async fn two_instances_deliver_each_notification_once(db) {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            engine(db, &[("hook", &receiver)], &dir.path().join("ok")),
            engine(db, &[("hook", &receiver)], &dir.path().join("ok")),
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let senders = [("a", &a), ("b", &b)].map(|(name, engine)| {
            let (engine, stop) = (engine.clone(), stop.clone());
            tokio::spawn(async move { engine.run_notifier(name.into(), stop).await })
        });
        for i in 0..40 {
            let mut tx = a.db().begin_write().await.unwrap();
            write(&mut tx, &a.config().notifications, &alert(&format!("event {i}")), None, None, now_ms())
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        receiver.wait_for(40, 20).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        stop.cancel();
        for sender in senders {
            sender.await.unwrap();
        }
        let mut ids: Vec<i64> = receiver.accepted().iter().map(|b| b["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.len(), 40);
        ids.dedup();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40, "a notification was delivered twice");
    }

    async fn a_test_notification_is_tried_once_and_shows_in_the_history(db) {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &[("hook", &receiver)], &dir.path().join("ok"));
        let admin = Actor { username: Some("alice".into()), client_ip: Some("10.0.0.1".into()) };
        let ok = engine.send_test_notification(&admin, "hook").await.unwrap();
        assert_eq!(ok.error, None);
        assert_eq!(receiver.accepted()[0]["kind"], "test");
        receiver.fail_next(1);
        let failed = engine.send_test_notification(&admin, "hook").await.unwrap();
        assert!(failed.error.as_deref().unwrap().contains("503"), "{:?}", failed.error);
        engine.deliver_due("a").await.unwrap();
        assert_eq!(receiver.received().len(), 2, "a failed test is not tried again");
        let failed_only = HistoryFilter { state: "failed".into(), ..Default::default() };
        let history = engine.notification_history(&failed_only, None, 10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].id, failed.notification_id);
        assert!(matches!(
            engine.send_test_notification(&admin, "pager").await,
            Err(NotifyError::UnknownTarget(_))
        ));
        let events = crate::audit::recent(engine.db().pool(), None, 10).await.unwrap();
        assert_eq!(events.iter().filter(|e| e.action == "notification.test").count(), 2);
    }
}

crate::db_tests! {
    async fn the_checks_tell_an_overdue_backup_and_a_long_maintenance_once_and_the_end_of_maintenance(db) {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut engine = engine(db, &[("hook", &receiver)], &dir.path().join("ok"));
        let mut config = engine.config().clone();
        config.environments[0].backup_expected_within_hours = Some(1);
        config.environments[0].resources = BTreeMap::from([(
            "files".to_string(),
            Resource::Directory { path: dir.path().to_path_buf(), include: vec![], exclude: vec![] },
        )]);
        config.notifications.maintenance_alert_minutes = 30;
        engine = Engine::new(config, db.clone());
        let t0 = 1_800_000_000_000;
        // No backup yet: the clock starts at the first look.
        engine.check_conditions(t0).await.unwrap();
        engine.check_conditions(t0 + 50 * MINUTE).await.unwrap();
        assert!(summaries(&engine).await.is_empty());
        for hours in [2, 3, 30] {
            engine.check_conditions(t0 + hours * 60 * MINUTE).await.unwrap();
        }
        let told = summaries(&engine).await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].starts_with("prod: backup overdue: no backup since Steward began watching at"), "{told:?}");

        let entered = t0 + 40 * 60 * MINUTE;
        crate::db::maintenance::insert(
            engine.db().pool(),
            &crate::db::maintenance::MaintenanceRow {
                environment: "prod".into(),
                since: entered,
                entered_by: "bob".into(),
                reason: "disk swap".into(),
                hook_state: "null".into(),
                job_id: None,
            },
        )
        .await
        .unwrap();
        engine.check_conditions(entered + 20 * MINUTE).await.unwrap();
        engine.check_conditions(entered + 31 * MINUTE).await.unwrap();
        engine.check_conditions(entered + 90 * MINUTE).await.unwrap();
        crate::db::maintenance::delete(engine.db().pool(), "prod").await.unwrap();
        engine.check_conditions(entered + 95 * MINUTE).await.unwrap();
        engine.check_conditions(entered + 96 * MINUTE).await.unwrap();
        let told = summaries(&engine).await;
        assert_eq!(told.len(), 3, "{told:?}");
        assert!(told[1].starts_with("prod has been in maintenance since"), "{told:?}");
        assert!(told[1].ends_with("(31 minutes), entered by bob: disk swap"), "{told:?}");
        assert!(told[2].starts_with("prod is out of maintenance"), "{told:?}");
    }

    async fn a_locked_out_user_is_told_and_so_is_the_unlock(db) {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &[("hook", &receiver)], &dir.path().join("ok"));
        engine
            .create_user(&Actor::cli(), "alice", "correct horse battery", crate::users::Role::Operator)
            .await
            .unwrap();
        for _ in 0..engine.config().login.max_failures {
            let _ = engine.login("alice", "wrong password!!", "10.0.0.7").await;
        }
        let told = summaries(&engine).await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].starts_with("alice was locked out after 5 failed sign-ins (the last from 10.0.0.7)"), "{told:?}");
        let history = engine.notification_history(&HistoryFilter::default(), None, 1).await.unwrap();
        assert_eq!((history[0].kind.as_str(), history[0].severity.as_str(), history[0].environment.as_deref()), ("user_locked", "warning", None));
        let admin = Actor { username: Some("root".into()), client_ip: None };
        engine.unlock(&admin, "alice").await.unwrap();
        let told = summaries(&engine).await;
        assert_eq!(told[1], "alice is no longer locked out: root unlocked them");
    }
}

crate::db_tests! {
    async fn a_sender_whose_lease_ran_out_and_was_taken_over_does_not_send(db) {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(db, &[("hook", &receiver)], &dir.path().join("ok"));
        let mut tx = engine.db().begin_write().await.unwrap();
        let id = write(&mut tx, &engine.config().notifications, &alert("prod: backup failed"), None, None, 0).await.unwrap();
        tx.commit().await.unwrap();
        let pool = engine.db().pool();
        assert!(rows::claim(pool, id, "hook", "a", 0, 10).await.unwrap());
        assert!(!rows::claim(pool, id, "hook", "b", 5, 50).await.unwrap(), "a holds the lease");
        // a waited behind slow deliveries past its lease; b took it over.
        assert!(rows::claim(pool, id, "hook", "b", 20, 50).await.unwrap());
        assert!(!rows::renew(pool, id, "hook", "a", 100).await.unwrap());
        assert!(rows::renew(pool, id, "hook", "b", 100).await.unwrap());
    }
}

/// A backup of `resource` fails (`words` must be in what the targets are told, within 5 s),
/// `fix` mends it, the next backup succeeds and each target is told once that it is over.
async fn told_of_a_failing_backup_and_its_recovery(resource: Resource, words: &str, fix: impl AsyncFnOnce()) {
    let test = crate::testing::TestDb::sqlite().await;
    let (mail, chat) = (Receiver::start().await, Receiver::start().await);
    let storage = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: storage.path().to_path_buf(),
        environments: vec![Environment {
            name: "prod".into(),
            label: "Production".into(),
            colour: "#c62828".into(),
            resources: BTreeMap::from([("orders".to_string(), resource)]),
            ..Default::default()
        }],
        notifications: notifications(&[("mail", &mail), ("chat", &chat)]),
        ..Config::default()
    };
    let engine = Engine::new(config, test.db.clone());
    let workers = engine.start_workers().await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let sender = tokio::spawn({
        let (engine, stop) = (engine.clone(), stop.clone());
        async move { engine.run_notifier("a".into(), stop).await }
    });
    let backup = |engine: Engine| async move {
        let job = engine
            .request_backup(&Actor::cli(), "prod", "nightly", crate::manifest::Trigger::Manual)
            .await
            .unwrap();
        wait_until_finished(&engine, job.id).await
    };

    let failed = backup(engine.clone()).await;
    assert_eq!(failed.state, crate::jobs::JobState::Failed);
    let finished = std::time::Instant::now();
    let (to_mail, to_chat) = (mail.wait_for(1, 10).await, chat.wait_for(1, 10).await);
    assert!(
        finished.elapsed() < Duration::from_secs(5),
        "took {:?}",
        finished.elapsed()
    );
    assert_eq!((to_mail.len(), to_chat.len()), (1, 1));
    assert_eq!(to_mail[0]["kind"], "backup_failed");
    assert_eq!(to_mail[0]["severity"], "critical");
    let detail = to_mail[0]["detail"].as_str().unwrap();
    assert!(detail.contains(words), "{detail}");

    fix().await;
    let succeeded = backup(engine.clone()).await;
    assert_eq!(
        succeeded.state,
        crate::jobs::JobState::Succeeded,
        "{:?}",
        succeeded.error
    );
    let (to_mail, to_chat) = (mail.wait_for(2, 10).await, chat.wait_for(2, 10).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!((mail.accepted().len(), chat.accepted().len()), (2, 2));
    assert_eq!(
        (to_mail[1]["kind"].as_str(), to_chat[1]["kind"].as_str()),
        (Some("recovered"), Some("recovered"))
    );
    let summary = to_mail[1]["summary"].as_str().unwrap();
    assert!(summary.starts_with("prod: a backup succeeded again"), "{summary}");

    stop.cancel();
    sender.await.unwrap();
    workers.shutdown(Duration::from_secs(1)).await;
}

/// The real PostgreSQL here trusts local connections (any password is accepted), so the failure
/// is a database that does not exist yet; the fix creates it.
#[tokio::test]
async fn a_failing_postgres_backup_is_told_in_pg_dumps_words_and_its_recovery_once() {
    // Skipped (or failed in CI) like every PostgreSQL test when the server is not there.
    let Some(reachable) = crate::testing::TestDb::postgres().await else {
        return;
    };
    reachable.cleanup().await;
    let name = format!("steward_notify_{}", std::process::id());
    let admin = sqlx::AnyPool::connect(&crate::testing::postgres_base_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&crate::testing::postgres_base_url()).unwrap();
    url.set_path(&format!("/{name}"));
    url.set_query(None);
    let resource = Resource::Postgres {
        url: url.to_string(),
        password: None,
        verify_sql: vec![],
    };
    let words = format!("database \"{name}\" does not exist");
    told_of_a_failing_backup_and_its_recovery(resource, &words, async || {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
    })
    .await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await
        .unwrap();
}

/// MariaDB checks passwords: a wrong one, then the right one.
#[tokio::test]
async fn a_backup_with_a_wrong_mariadb_password_is_told_in_mysqldumps_words_and_its_recovery_once() {
    use crate::drivers::testing::mysql;
    if !mysql::available().await {
        return;
    }
    let database = mysql::TempDatabase::create().await;
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("password");
    std::fs::write(&password_file, "not the password").unwrap();
    let resource = Resource::Mysql {
        url: mysql::url_of(&database.name, &database.name),
        password: Some(crate::config::SecretSource::File(password_file.clone())),
        verify_sql: vec![],
    };
    let words = format!("Access denied for user '{}'", database.name);
    told_of_a_failing_backup_and_its_recovery(resource, &words, async || {
        std::fs::write(&password_file, mysql::PASSWORD).unwrap();
    })
    .await;
}

#[test]
fn destinations_show_no_secret() {
    let target = Target::Webhook {
        url: "https://user:pw@hooks.example.com/in?token=abc".into(),
        secret_header: None,
    };
    let shown = destination(&target);
    assert!(!shown.contains("pw") && !shown.contains("abc"), "{shown}");
}

#[test]
fn backoff_doubles_from_retry_seconds_up_to_an_hour() {
    let waits: Vec<i64> = (1..=9).map(|n| sender::backoff_ms(30, n) / 1000).collect();
    assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
}
