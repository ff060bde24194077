//! Restores end to end, on real systems: a directory, the local PostgreSQL and MariaDB, a
//! SQLite file, real hook and smoke-check scripts, a worker — with the catalog on SQLite and on
//! PostgreSQL.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    Config, Engine,
    accounts::Actor,
    audit::Outcome,
    config::{Environment, Hook, JobsConfig, MaintenanceConfig, Resource, SecretSource, StorageConfig},
    db::Db,
    drivers::testing::{mysql, postgres},
    jobs::{JobError, JobSpec, JobState, Trigger},
    kinds::restore::Restore,
    restores::{RestoreError, RestoreRequest},
    testing::{log_text, pid_in, processes_in_group, wait_until_finished},
};

fn sh(body: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), body.into()]
}

fn hook(body: &str) -> Hook {
    Hook::Command {
        command: sh(body),
        env: BTreeMap::new(),
        secret_env: BTreeMap::new(),
        timeout_seconds: 30,
    }
}

fn alice() -> Actor {
    Actor {
        username: Some("alice".into()),
        client_ip: Some("10.0.0.7".into()),
    }
}

/// The place a test works in: the managed system's files, Steward's data, the hook calls.
struct Site {
    root: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let site = Site {
            root: tempfile::tempdir().unwrap(),
        };
        let files = site.files();
        std::fs::create_dir_all(files.join("pages/old")).unwrap();
        std::fs::write(files.join("index.html"), "<h1>Shop</h1>\n").unwrap();
        std::fs::write(files.join("pages/about.html"), "about us\n").unwrap();
        std::fs::write(files.join("pages/old/retired.html"), "retired\n").unwrap();
        site
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    fn files(&self) -> PathBuf {
        self.path().join("files")
    }

    fn sqlite(&self) -> PathBuf {
        self.path().join("shop.sqlite")
    }

    fn calls(&self) -> PathBuf {
        self.path().join("hook-calls.txt")
    }

    /// What the hooks were called with, one line per call.
    fn hook_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.calls())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The smoke check passes while this file exists.
    fn healthy_marker(&self) -> PathBuf {
        self.path().join("healthy")
    }

    /// The smoke check hangs (ignoring SIGTERM) while this file exists, having written its
    /// process id into the same name with `.pid`.
    fn stuck_marker(&self) -> PathBuf {
        self.path().join("stuck")
    }

    /// Every file under the directory resource with its content, and every directory.
    fn tree(&self) -> BTreeMap<String, String> {
        fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.strip_prefix(base).unwrap().display().to_string();
                if path.is_dir() {
                    out.insert(format!("{name}/"), String::new());
                    walk(&path, base, out);
                } else {
                    out.insert(name, std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.files(), &self.files(), &mut out);
        out
    }

    /// An environment `shop` with the given resources beside the directory and SQLite file,
    /// maintenance hooks that record their calls, and a smoke check that passes while
    /// [`Site::healthy_marker`] exists.
    fn engine(&self, db: &Db, extra: BTreeMap<String, Resource>) -> Engine {
        let calls = self.calls().display().to_string();
        let mut resources = extra;
        resources.insert(
            "files".into(),
            Resource::Directory {
                path: self.files(),
                include: vec![],
                exclude: vec![],
            },
        );
        resources.insert("shop-db".into(), Resource::Sqlite { path: self.sqlite() });
        let mut smoke_checks = BTreeMap::new();
        smoke_checks.insert(
            "home".to_string(),
            hook(&format!(
                "if test -f '{stuck}'; then echo $$ > '{stuck}.pid'; trap '' TERM; sleep 600; fi; \
                 test -f '{}' || {{ echo 'home page answers 502' >&2; exit 1; }}",
                self.healthy_marker().display(),
                stuck = self.stuck_marker().display(),
            )),
        );
        let shop = Environment {
            name: "shop".into(),
            label: "Shop".into(),
            colour: "#b71c1c".into(),
            production: true,
            actions: BTreeMap::new(),
            resources,
            facts: BTreeMap::new(),
            backup_expected_within_hours: None,
            maintenance: MaintenanceConfig {
                enter: Some(hook(&format!(
                    "echo enter >> '{calls}'; echo '{{\"stopped\": [\"web\", \"worker\"]}}'"
                ))),
                leave: Some(hook(&format!("echo \"leave $STEWARD_MAINTENANCE_STATE\" >> '{calls}'"))),
                leave_on_restore_failure: false,
            },
            smoke_checks,
            ..Default::default()
        };
        let config = Config {
            environments: vec![shop],
            jobs: JobsConfig {
                workers: 2,
                lease_seconds: 30,
                cancel_grace_seconds: 1,
                shutdown_grace_seconds: 1,
            },
            storage: StorageConfig {
                path: Some(self.path().join("backups")),
                ..Default::default()
            },
            data_dir: self.path().join("steward"),
            ..Config::default()
        };
        std::fs::write(self.healthy_marker(), "").unwrap();
        Engine::new(config, db.clone())
    }
}

async fn sqlite_exec(path: &Path, statements: &str) {
    use sqlx::{Connection, Executor};
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    conn.execute(statements).await.unwrap();
    conn.close().await.unwrap();
}

async fn sqlite_rows(path: &Path) -> Vec<(i64, String)> {
    use sqlx::Connection;
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows = sqlx::query_as("SELECT id, name FROM products ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows
}

/// Backs up `shop` and waits for it; returns the backup's id.
async fn back_up(engine: &Engine) -> String {
    let job = engine
        .request_backup(&alice(), "shop", "before the change", Trigger::Manual)
        .await
        .unwrap();
    let job = wait_until_finished(engine, job.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    job.spec.unwrap().backup_id().unwrap().to_string()
}

fn request(backup_id: &str) -> RestoreRequest {
    RestoreRequest {
        backup_id: backup_id.to_string(),
        reason: "the import broke the catalogue".into(),
        confirm_environment: "shop".into(),
        confirm_production: true,
    }
}

/// Restores `backup_id` and waits for the job to end.
async fn restore(engine: &Engine, backup_id: &str) -> crate::jobs::Job {
    let job = engine.request_restore(&alice(), &request(backup_id)).await.unwrap();
    wait_until_finished(engine, job.id).await
}

/// The directory and SQLite resources as a test changes them: a file added, one modified, one
/// deleted; a row added, one modified, one deleted.
async fn change_files_and_sqlite(site: &Site) {
    std::fs::write(site.files().join("new.html"), "added later\n").unwrap();
    std::fs::write(site.files().join("index.html"), "<h1>Shop, changed</h1>\n").unwrap();
    std::fs::remove_dir_all(site.files().join("pages/old")).unwrap();
    sqlite_exec(
        &site.sqlite(),
        "INSERT INTO products (name) VALUES ('added'); UPDATE products SET name = 'modified' WHERE id = 1;
         DELETE FROM products WHERE id = 2;",
    )
    .await;
}

async fn audit_actions(db: &Db) -> Vec<(String, Outcome)> {
    crate::audit::recent(db.pool(), None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.outcome))
        .collect()
}

crate::db_tests! {
    async fn a_restore_brings_back_all_four_systems_after_a_safety_backup_in_maintenance(db) {
        if !postgres::available().await || !mysql::available().await {
            return;
        }
        let site = Site::new();
        sqlite_exec(&site.sqlite(), "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);
            INSERT INTO products (name) VALUES ('tea'), ('coffee'), ('cocoa');").await;
        let pg = postgres::TempDatabase::create().await;
        postgres::psql(&pg.url, "CREATE TABLE orders (id int PRIMARY KEY, total numeric);
            INSERT INTO orders VALUES (1, 10.50), (2, 20), (3, 30);").await.unwrap();
        let my = mysql::TempDatabase::create().await;
        mysql::sql(Some(&my.name), "CREATE TABLE stock (id INT PRIMARY KEY, qty INT);
            INSERT INTO stock VALUES (1, 5), (2, 6), (3, 7);", None).await.unwrap();
        let admin = url::Url::parse(&mysql::server_url()).unwrap().username().to_string();
        let mut databases = BTreeMap::new();
        databases.insert("orders".to_string(), Resource::Postgres { url: pg.url.clone(), password: None, verify_sql: vec![] });
        databases.insert("stock".to_string(), Resource::Mysql { url: mysql::url_of(&my.name, &admin), password: None, verify_sql: vec![] });
        let engine = site.engine(db, databases);
        let workers = engine.start_workers().await.unwrap();

        let pg_state = "SELECT string_agg(id || '=' || total, ',' ORDER BY id) FROM orders";
        let my_state = "SELECT GROUP_CONCAT(CONCAT(id, '=', qty) ORDER BY id) FROM stock";
        let backup_id = back_up(&engine).await;
        let backed_up = (
            site.tree(),
            sqlite_rows(&site.sqlite()).await,
            postgres::psql(&pg.url, pg_state).await.unwrap(),
            mysql::sql(Some(&my.name), my_state, None).await.unwrap(),
        );

        // Change all four: add, modify, delete.
        change_files_and_sqlite(&site).await;
        postgres::psql(&pg.url, "INSERT INTO orders VALUES (4, 40); UPDATE orders SET total = 99 WHERE id = 1;
            DELETE FROM orders WHERE id = 2;").await.unwrap();
        mysql::sql(Some(&my.name), "INSERT INTO stock VALUES (4, 8); UPDATE stock SET qty = 0 WHERE id = 1;
            DELETE FROM stock WHERE id = 2;", None).await.unwrap();
        let changed = (
            site.tree(),
            sqlite_rows(&site.sqlite()).await,
            postgres::psql(&pg.url, pg_state).await.unwrap(),
            mysql::sql(Some(&my.name), my_state, None).await.unwrap(),
        );
        assert_ne!(changed, backed_up);

        let job = restore(&engine, &backup_id).await;
        let log = log_text(&engine, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{:?}\n{log}", job.error);
        assert_eq!(job.steps_done as usize, job.steps.len());
        assert_eq!(
            job.steps.iter().map(String::as_str).filter(|s| s.starts_with("Restore ")).collect::<Vec<_>>(),
            ["Restore files (directory)", "Restore orders (postgres)", "Restore shop-db (sqlite)", "Restore stock (mysql)"]
        );
        let restored = (
            site.tree(),
            sqlite_rows(&site.sqlite()).await,
            postgres::psql(&pg.url, pg_state).await.unwrap(),
            mysql::sql(Some(&my.name), my_state, None).await.unwrap(),
        );
        assert_eq!(restored, backed_up, "{log}");

        // Maintenance was entered, and left with what enter reported.
        assert_eq!(site.hook_calls(), ["enter", r#"leave {"stopped":["web","worker"]}"#]);
        assert!(engine.maintenance("shop").await.unwrap().is_none());
        assert!(log.contains("Smoke check home passed."), "{log}");

        // The safety backup: pre-restore, linked to the restore, holding the changed state.
        let Some(Restore { safety_backup_id, .. }) = job.spec.as_ref().and_then(JobSpec::get::<Restore>).cloned() else { panic!() };
        let safety = engine.backup(&safety_backup_id).await.unwrap().expect("the safety backup is catalogued");
        assert_eq!(safety.trigger, "pre-restore");
        assert_eq!(safety.job_id, Some(job.id));
        assert!(safety.description.contains(&backup_id), "{}", safety.description);
        let back = restore(&engine, &safety_backup_id).await;
        assert_eq!(back.state, JobState::Succeeded, "{:?}", back.error);
        let after_undo = (
            site.tree(),
            sqlite_rows(&site.sqlite()).await,
            postgres::psql(&pg.url, pg_state).await.unwrap(),
            mysql::sql(Some(&my.name), my_state, None).await.unwrap(),
        );
        assert_eq!(after_undo, changed);

        let actions = audit_actions(db).await;
        for expected in ["restore.start", "restore.step", "restore.finish", "maintenance.on", "maintenance.off"] {
            assert!(actions.contains(&(expected.to_string(), Outcome::Ok)), "{expected} in {actions:?}");
        }
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_tampered_backup_is_refused_before_anything_is_touched(db) {
        let site = Site::new();
        sqlite_exec(&site.sqlite(), "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);
            INSERT INTO products (name) VALUES ('tea'), ('coffee');").await;
        let engine = site.engine(db, BTreeMap::new());
        let workers = engine.start_workers().await.unwrap();
        let backup_id = back_up(&engine).await;
        change_files_and_sqlite(&site).await;
        let changed = (site.tree(), sqlite_rows(&site.sqlite()).await);

        // One flipped byte in each of the repository's data packs.
        crate::backups::testing::damage_packs(&site.path().join("steward/repository"));

        let job = restore(&engine, &backup_id).await;
        assert_eq!(job.state, JobState::Failed);
        let error = job.error.clone().unwrap();
        assert!(error.starts_with("Step 1 of"), "{error}");
        assert!(error.contains("cannot be read back from the repository"), "{error}");
        assert!(error.contains("nothing was touched"), "{error}");
        assert!(error.ends_with("Nothing of shop was changed by this restore. shop is not in maintenance."), "{error}");
        assert!(site.hook_calls().is_empty(), "maintenance was never entered");
        assert!(engine.maintenance("shop").await.unwrap().is_none());
        assert_eq!((site.tree(), sqlite_rows(&site.sqlite()).await), changed);
        assert_eq!(engine.backups("shop", crate::backups::Order::NewestFirst, 0, 10).await.unwrap().1, 1, "no safety backup was taken");
        let log = log_text(&engine, job.id).await;
        assert!(log.contains("Nothing of shop was changed by this restore."), "{log}");
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_failing_smoke_check_stays_in_maintenance_and_undo_brings_back_the_state_before(db) {
        let site = Site::new();
        sqlite_exec(&site.sqlite(), "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);
            INSERT INTO products (name) VALUES ('tea'), ('coffee');").await;
        let engine = site.engine(db, BTreeMap::new());
        let workers = engine.start_workers().await.unwrap();
        let backup_id = back_up(&engine).await;
        let backed_up = (site.tree(), sqlite_rows(&site.sqlite()).await);
        change_files_and_sqlite(&site).await;
        let changed = (site.tree(), sqlite_rows(&site.sqlite()).await);

        std::fs::remove_file(site.healthy_marker()).unwrap();
        let job = restore(&engine, &backup_id).await;
        assert_eq!(job.state, JobState::Failed);
        let error = job.error.clone().unwrap();
        assert!(error.contains("(Run smoke checks) failed"), "{error}");
        assert!(error.contains("the smoke check home"), "{error}");
        assert!(error.contains("home page answers 502"), "the check's own message: {error}");
        assert!(error.contains("Every resource of shop was restored from backup"), "{error}");
        assert!(error.ends_with("shop is still in maintenance."), "{error}");
        // Restored, but not trusted: the environment stays in maintenance.
        assert_eq!((site.tree(), sqlite_rows(&site.sqlite()).await), backed_up);
        let maintenance = engine.maintenance("shop").await.unwrap().expect("still in maintenance");
        assert_eq!(maintenance.job_id, Some(job.id));
        assert_eq!(site.hook_calls(), ["enter"]);
        let log = log_text(&engine, job.id).await;
        assert!(log.contains("Every resource of shop was restored from backup"), "{log}");
        assert!(log.contains("shop is still in maintenance."), "{log}");
        assert!(log.contains("Undo restores it"), "{log}");

        // The banner: the failed restore and its safety backup.
        let failed = engine.failed_restores("shop").await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].job.id, job.id);
        let safety = failed[0].safety_backup.clone().expect("the safety backup was completed");
        assert_eq!(safety.trigger, "pre-restore");

        // The check is mended; Undo restores the safety backup.
        std::fs::write(site.healthy_marker(), "").unwrap();
        let undo = engine.request_undo(&alice(), job.id, "").await.unwrap();
        assert_eq!(undo.reason, format!("Undo of restore #{}", job.id));
        assert_eq!(undo.parent_id, Some(job.id));
        let undo_id = undo.id;
        let undo = wait_until_finished(&engine, undo.id).await;
        assert_eq!(undo.state, JobState::Succeeded, "{:?}\n{}", undo.error, log_text(&engine, undo.id).await);
        assert_eq!((site.tree(), sqlite_rows(&site.sqlite()).await), changed);
        // The undo took the failed restore's maintenance over and left it with the first
        // enter's state.
        assert_eq!(site.hook_calls(), ["enter", r#"leave {"stopped":["web","worker"]}"#]);
        assert!(engine.maintenance("shop").await.unwrap().is_none());
        assert!(engine.failed_restores("shop").await.unwrap().is_empty());
        assert!(audit_actions(db).await.contains(&("restore.undo".to_string(), Outcome::Ok)));
        // Told: the restore's failure with the state it left and the way back, then its end.
        let told = engine
            .notification_history(&Default::default(), None, 10)
            .await
            .unwrap();
        let kinds: Vec<&str> = told.iter().rev().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["restore_failed", "recovered"]);
        let failure = &told[1];
        assert_eq!(failure.link, "/environments/shop");
        let detail = failure.detail.clone().unwrap_or_default();
        assert!(detail.contains("home page answers 502") && detail.contains("shop is still in maintenance."), "{detail}");
        assert!(detail.contains(&format!("steward restore --undo {} --reason", job.id)), "{detail}");
        assert!(told[0].summary.starts_with("shop: a restore succeeded again (undo #"), "{}", told[0].summary);
        // Undone once is enough.
        let again = engine.request_undo(&alice(), job.id, "").await.unwrap_err();
        assert!(matches!(again, RestoreError::AlreadyUndone { undo, .. } if undo == undo_id), "{again}");
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn cancel_reaches_a_smoke_check_that_hangs_and_leaves_no_process(db) {
        let site = Site::new();
        sqlite_exec(&site.sqlite(), "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);").await;
        let engine = site.engine(db, BTreeMap::new());
        let workers = engine.start_workers().await.unwrap();
        let backup_id = back_up(&engine).await;
        std::fs::write(site.stuck_marker(), "").unwrap();
        let job = engine.request_restore(&alice(), &request(&backup_id)).await.unwrap();
        let group = pid_in(&site.path().join("stuck.pid")).await;
        let asked = std::time::Instant::now();
        engine.cancel_job(&alice(), job.id).await.unwrap();
        let ended = wait_until_finished(&engine, job.id).await;
        let took = asked.elapsed();
        assert_eq!(ended.state, JobState::Cancelled, "{:?}", ended.error);
        // The check ignores SIGTERM: SIGKILL after cancel_grace_seconds (1 s).
        assert!(took < Duration::from_secs(1 + 2), "took {took:?}");
        assert_eq!(processes_in_group(group), 0);
        let log = log_text(&engine, job.id).await;
        assert!(log.contains("Stopped at step"), "{log}");
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_resource_that_fails_to_restore_stops_the_restore_and_says_what_was_touched(db) {
        let site = Site::new();
        sqlite_exec(&site.sqlite(), "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);").await;
        let mut broken = BTreeMap::new();
        broken.insert("broken".to_string(), Resource::Command {
            backup: sh("echo x > \"$STEWARD_OUTPUT_DIR/x\""),
            restore: Some(sh("echo 'ERROR 1045: access denied for user shop' >&2; exit 3")),
            verify: None,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            timeout_seconds: 60,
        });
        let engine = site.engine(db, broken);
        let workers = engine.start_workers().await.unwrap();
        let backup_id = back_up(&engine).await;
        change_files_and_sqlite(&site).await;
        let changed = site.tree();

        let job = restore(&engine, &backup_id).await;
        assert_eq!(job.state, JobState::Failed);
        let error = job.error.clone().unwrap();
        assert!(error.starts_with("Step 4 of 8 (Restore broken (command)) failed: shop / broken (command): "), "{error}");
        assert!(error.contains("ERROR 1045: access denied for user shop"), "the tool's message: {error}");
        let log = log_text(&engine, job.id).await;
        assert!(
            log.contains("shop is partly restored — broken may be half-restored; not touched: files, shop-db."),
            "{log}"
        );
        assert_eq!(site.tree(), changed, "the resources after the failing one were not touched");
        assert!(engine.maintenance("shop").await.unwrap().is_some());
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_restore_and_a_backup_of_one_environment_never_run_together(db) {
        let site = Site::new();
        sqlite_exec(&site.sqlite(), "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);").await;
        let gate = site.path().join("gate");
        let mut slow = BTreeMap::new();
        slow.insert("slow".to_string(), Resource::Command {
            backup: sh(&format!("while [ ! -f '{}' ]; do sleep 0.1; done; echo x > \"$STEWARD_OUTPUT_DIR/x\"", gate.display())),
            restore: Some(sh(&format!("while [ ! -f '{}' ]; do sleep 0.1; done", gate.display()))),
            verify: None,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            timeout_seconds: 60,
        });
        let engine = site.engine(db, slow);
        let workers = engine.start_workers().await.unwrap();

        // A backup runs (held at the gate): a restore is refused with the busy message.
        std::fs::write(&gate, "").unwrap();
        let backup_id = back_up(&engine).await;
        std::fs::remove_file(&gate).unwrap();
        let running = engine.request_backup(&alice(), "shop", "held", Trigger::Manual).await.unwrap();
        let refused = engine.request_restore(&alice(), &request(&backup_id)).await.unwrap_err();
        let RestoreError::Job(JobError::Busy(busy)) = &refused else { panic!("{refused}") };
        assert_eq!(busy.job_id, running.id);
        assert!(refused.to_string().starts_with("shop is busy: backup #"), "{refused}");
        std::fs::write(&gate, "").unwrap();
        wait_until_finished(&engine, running.id).await;

        // A restore runs (its safety backup held at the gate): a backup is refused.
        std::fs::remove_file(&gate).unwrap();
        let restoring = engine.request_restore(&alice(), &request(&backup_id)).await.unwrap();
        let refused = engine.request_backup(&alice(), "shop", "now", Trigger::Manual).await.unwrap_err();
        assert!(
            refused.to_string().starts_with(&format!("shop is busy: restore #{} ", restoring.id)),
            "{refused}"
        );
        std::fs::write(&gate, "").unwrap();
        let restored = wait_until_finished(&engine, restoring.id).await;
        assert_eq!(restored.state, JobState::Succeeded, "{:?}", restored.error);
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn scratch_files_a_crashed_restore_left_are_removed_when_workers_start(db) {
        let site = Site::new();
        let engine = site.engine(db, BTreeMap::new());
        let left = site.path().join("steward/.restore-scratch/job-41/stock");
        std::fs::create_dir_all(&left).unwrap();
        std::fs::write(left.join("database.sql"), "INSERT INTO stock VALUES (1, 5);").unwrap();
        let workers = engine.start_workers().await.unwrap();
        assert!(!site.path().join("steward/.restore-scratch/job-41").exists());
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_restore_the_database_account_may_not_do_is_refused_when_requested(db) {
        if !postgres::available().await {
            return;
        }
        let site = Site::new();
        sqlite_exec(&site.sqlite(), "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);").await;
        // The database's owner, who may dump `audit` but not drop it (another role owns it).
        let owner = postgres::TempRole::create("").await;
        let pg = postgres::TempDatabase::create().await;
        postgres::psql(&pg.url, &format!(
            "ALTER DATABASE {db} OWNER TO {o}; CREATE SCHEMA audit; CREATE TABLE audit.log (line text);
             GRANT USAGE ON SCHEMA audit TO {o}; GRANT SELECT ON audit.log TO {o};",
            db = pg.name, o = owner.name,
        )).await.unwrap();
        let mut databases = BTreeMap::new();
        databases.insert("orders".to_string(), Resource::Postgres { url: owner.url(&pg), password: None, verify_sql: vec![] });
        let engine = site.engine(db, databases);
        let workers = engine.start_workers().await.unwrap();
        let backup_id = back_up(&engine).await;
        workers.shutdown(Duration::from_secs(1)).await;
        let calls = site.hook_calls();

        let refused = engine.request_restore(&alice(), &request(&backup_id)).await.unwrap_err();
        assert!(matches!(refused, RestoreError::CannotRestore(_)), "{refused}");
        assert!(refused.to_string().starts_with(&format!(
            "this backup cannot be restored: orders (postgres): the account {} lacks what a restore needs: \
             ownership of schema audit (owned by postgres)", owner.name
        )), "{refused}");
        let restores = engine
            .jobs(&crate::jobs::JobFilter { kind: Some("restore".into()), ..Default::default() }, None, 10)
            .await
            .unwrap();
        assert!(restores.is_empty(), "nothing was queued");
        assert_eq!(site.hook_calls(), calls, "maintenance was not entered");
        assert!(audit_actions(db).await.contains(&("restore.request".to_string(), Outcome::Refused)));
    }

    async fn a_restore_needs_the_typed_name_a_reason_and_for_production_a_second_yes(db) {
        let site = Site::new();
        sqlite_exec(&site.sqlite(), "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);").await;
        let engine = site.engine(db, BTreeMap::new());
        let workers = engine.start_workers().await.unwrap();
        let backup_id = back_up(&engine).await;
        workers.shutdown(Duration::from_secs(1)).await;

        let refusals = [
            (RestoreRequest { confirm_environment: "shpo".into(), ..request(&backup_id) }, "type the environment's name, shop, to confirm the restore"),
            (RestoreRequest { reason: "  ".into(), ..request(&backup_id) }, "a reason is required"),
            (RestoreRequest { confirm_production: false, ..request(&backup_id) }, "shop is a production environment: confirm the restore a second time"),
            (request("shop-20200101-0000-abcd"), "there is no backup \"shop-20200101-0000-abcd\""),
        ];
        for (refused, message) in refusals {
            let error = engine.request_restore(&alice(), &refused).await.unwrap_err();
            assert!(error.to_string().starts_with(message), "{error}");
        }
        let restores = engine
            .jobs(&crate::jobs::JobFilter { kind: Some("restore".into()), ..Default::default() }, None, 10)
            .await
            .unwrap();
        assert!(restores.is_empty(), "nothing was queued");
        let refused = audit_actions(db).await.into_iter().filter(|a| a == &("restore.request".to_string(), Outcome::Refused)).count();
        assert_eq!(refused, 4);

        // The preview says what would happen, and the request then goes through.
        let preview = engine.restore_preview(&backup_id).await.unwrap();
        assert!(preview.problems.is_empty(), "{:?}", preview.problems);
        assert_eq!(preview.smoke_checks, ["home"]);
        assert!(preview.maintenance.is_none() && preview.busy.is_none());
        let job = engine.request_restore(&alice(), &request(&backup_id)).await.unwrap();
        assert_eq!(job.kind, "restore");
        assert_eq!(job.reason, "the import broke the catalogue");
        assert!(job.exclusive);
    }
}

#[test]
fn a_backup_whose_resources_changed_driver_or_went_away_cannot_be_restored() {
    use crate::manifest::{Manifest, ManifestArtifact};
    let artifact = |resource: &str, driver: &str| ManifestArtifact {
        resource: resource.into(),
        driver: driver.into(),
        file: format!("{resource}/x"),
        size: 1,
        sha256: String::new(),
        tool: None,
        details: serde_json::Value::Null,
        tree: false,
    };
    let manifest = Manifest {
        version: 1,
        id: "shop-20261129-1000-abcd".into(),
        environment: "shop".into(),
        started_at_ms: 0,
        finished_at_ms: 0,
        trigger: "manual".into(),
        requested_by: "alice".into(),
        description: String::new(),
        artifacts: vec![
            artifact("files", "directory"),
            artifact("db", "postgres"),
            artifact("gone", "sqlite"),
            artifact("remote", "http"),
        ],
        facts: BTreeMap::new(),
        steward_version: "0".into(),
        stored: crate::manifest::Stored::Files,
    };
    let mut resources = BTreeMap::new();
    resources.insert(
        "files".to_string(),
        Resource::Directory {
            path: "/srv/files".into(),
            include: vec![],
            exclude: vec![],
        },
    );
    resources.insert(
        "db".to_string(),
        Resource::Mysql {
            url: "mysql://u@h/db".into(),
            password: Some(SecretSource::Env("X".into())),
            verify_sql: vec![],
        },
    );
    resources.insert(
        "remote".to_string(),
        Resource::Http {
            start_url: "http://h/start".into(),
            status_url: "http://h/status".into(),
            restore_url: None,
            secret_header: None,
            poll_seconds: 1,
            timeout_seconds: 1,
        },
    );
    let environment = Environment {
        name: "shop".into(),
        label: "Shop".into(),
        colour: "#000000".into(),
        production: false,
        actions: BTreeMap::new(),
        resources,
        facts: BTreeMap::new(),
        backup_expected_within_hours: None,
        maintenance: MaintenanceConfig::default(),
        smoke_checks: BTreeMap::new(),
        ..Default::default()
    };
    assert_eq!(
        super::problems(&environment, &manifest),
        [
            "db was backed up with the postgres driver but is now configured with the mysql driver",
            "gone (sqlite) is in the backup but no longer configured for shop",
            "remote (http) has no restore_url: add the remote system's restore endpoint to its configuration",
        ]
    );
}
