//! Verification end to end, on real systems: a directory, a SQLite file, the local PostgreSQL
//! and MariaDB, a real verify script, a worker — with the catalog on SQLite and on PostgreSQL.
//! And the rules on their own: which backups a run picks, the scratch names, old inputs.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use super::*;
use crate::{
    audit::Outcome as AuditOutcome,
    backups::{TestRestore, Verification},
    db::Db,
    drivers::testing::{mysql, postgres},
    jobs::{JobState, Trigger},
    manifest::Manifest,
    testing::{log_text, wait_until_finished},
};

fn candidate(id: &str, last: Option<i64>) -> Candidate {
    Candidate {
        id: id.into(),
        last_test_restore_ms: last,
    }
}

#[test]
fn never_verified_come_first_then_the_longest_unverified_and_ties_at_random() {
    let candidates = vec![
        candidate("checked-yesterday", Some(2_000)),
        candidate("never-a", None),
        candidate("checked-last-week", Some(1_000)),
        candidate("never-b", None),
        candidate("checked-today", Some(3_000)),
    ];
    // Two orders of the random numbers: the never-verified pair swaps, the rest does not.
    let mut n = 0u64;
    let ascending = pick(candidates.clone(), 5, || {
        n += 1;
        n
    });
    assert_eq!(
        ascending,
        [
            "never-a",
            "never-b",
            "checked-last-week",
            "checked-yesterday",
            "checked-today"
        ]
    );
    let mut n = 100u64;
    let descending = pick(candidates.clone(), 5, || {
        n -= 1;
        n
    });
    assert_eq!(
        descending,
        [
            "never-b",
            "never-a",
            "checked-last-week",
            "checked-yesterday",
            "checked-today"
        ]
    );
    // A count takes the head of that order; more than there are takes them all.
    assert_eq!(
        pick(candidates.clone(), 3, || 7),
        ["never-a", "never-b", "checked-last-week"]
    );
    assert_eq!(pick(candidates, 50, || 7).len(), 5);
    assert!(pick(Vec::new(), 3, || 7).is_empty());
}

#[test]
fn scratch_databases_are_plain_names_of_the_job_and_resource() {
    assert_eq!(
        scratch_database(42, "orders", "a1b2c3"),
        "steward_verify_42_orders_a1b2c3"
    );
    assert_eq!(
        scratch_database(7, "Shop-DB.main", "a1b2c3"),
        "steward_verify_7_shop_db_main_a1b2c3"
    );
    let long = scratch_database(7, &"x".repeat(100), "a1b2c3");
    assert_eq!(long.len(), 63);
    assert!(long.ends_with("x_a1b2c3"), "{long}");
}

#[test]
fn jobs_written_before_test_restores_still_read() {
    let verify: Verify = serde_json::from_str(r#"{"kind":"verify","backup_id":"prod-20261121-0102-7f3a"}"#)
        .expect("an old verify job reads");
    assert_eq!(verify.targets(), ["prod-20261121-0102-7f3a"]);
    assert_eq!(JobSpec::new(verify).backup_id(), Some("prod-20261121-0102-7f3a"));
    // One backup is written as before; several as a list.
    assert_eq!(
        JobSpec::new(Verify::of(vec!["a".into()])).to_json(),
        serde_json::json!({"kind": "verify", "backup_id": "a"})
    );
    let many = JobSpec::new(Verify::of(vec!["a".into(), "b".into()]));
    assert_eq!(
        many.to_json(),
        serde_json::json!({"kind": "verify", "backups": ["a", "b"]})
    );
    assert_eq!(many.backup_id(), None);
}

fn alice() -> Actor {
    Actor {
        username: Some("alice".into()),
        client_ip: Some("10.0.0.7".into()),
    }
}

/// The place a test works in: the managed system's files and SQLite database, Steward's data.
struct Site {
    root: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let site = Site {
            root: tempfile::tempdir().unwrap(),
        };
        let files = site.files();
        std::fs::create_dir_all(files.join("pages/empty")).unwrap();
        std::fs::write(files.join("index.html"), "<h1>Shop</h1>\n").unwrap();
        std::fs::write(files.join("pages/about.html"), "about us\n").unwrap();
        std::os::unix::fs::symlink("index.html", files.join("home.html")).unwrap();
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

    /// An engine whose environment `shop` has `resources` (TOML, as in a configuration file;
    /// paths relative to the site). Read with figment alone: `Config::load` would also read
    /// the `STEWARD_*` variables other tests of this process set.
    fn engine(&self, db: &Db, resources: &str) -> Engine {
        use figment::{
            Figment,
            providers::{Format, Toml},
        };
        let toml = format!(
            r##"
data_dir = "steward"
[storage]
path = "backups"
[access]
allow = ["127.0.0.1/32"]
[jobs]
workers = 2
lease_seconds = 30
cancel_grace_seconds = 1
shutdown_grace_seconds = 1
[[environments]]
name = "shop"
label = "Shop"
colour = "#b71c1c"
{resources}
"##
        );
        let mut config: Config = Figment::from(Toml::string(&toml)).extract().unwrap();
        let base = self.path();
        config.data_dir = base.join(&config.data_dir);
        config.storage.path = config.storage.path.map(|path| base.join(path));
        for resource in config
            .environments
            .iter_mut()
            .flat_map(|env| env.resources.values_mut())
        {
            if let crate::config::Resource::Directory { path, .. } | crate::config::Resource::Sqlite { path } = resource
            {
                *path = base.join(&*path);
            }
        }
        Engine::new(config, db.clone())
    }

    /// Every file under the directory resource with its content and mode, every directory
    /// and link.
    fn tree(&self) -> BTreeMap<String, String> {
        fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
            use std::os::unix::fs::MetadataExt;
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.strip_prefix(base).unwrap().display().to_string();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let what = if meta.is_symlink() {
                    format!("-> {}", std::fs::read_link(&path).unwrap().display())
                } else if meta.is_dir() {
                    walk(&path, base, out);
                    "dir".to_string()
                } else {
                    std::fs::read_to_string(&path).unwrap()
                };
                out.insert(name, format!("{what} {:o} {}", meta.mode(), meta.mtime()));
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.files(), &self.files(), &mut out);
        out
    }
}

async fn sqlite_exec(path: &Path, statements: &str) {
    use sqlx::{Connection, Executor};
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    conn.execute(statements).await.unwrap();
    conn.close().await.unwrap();
}

/// Backs up `shop` and waits for it; returns the backup's id.
async fn back_up(engine: &Engine) -> String {
    let job = engine
        .request_backup(&alice(), "shop", "nightly", Trigger::Manual)
        .await
        .unwrap();
    let job = wait_until_finished(engine, job.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    job.spec.unwrap().backup_id().unwrap().to_string()
}

async fn audit_actions(db: &Db) -> Vec<(String, AuditOutcome)> {
    crate::audit::recent(db.pool(), None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.outcome))
        .collect()
}

/// The scratch databases a job's log names ("… into the scratch database NAME on …").
fn scratch_databases_in(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.split("into the scratch database ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect()
}

async fn pg_database_exists(name: &str) -> bool {
    postgres::psql(
        &postgres::server_url(),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .await
    .unwrap()
        != "0"
}

async fn mysql_database_exists(name: &str) -> bool {
    !mysql::sql(None, &format!("SHOW DATABASES LIKE '{name}'"), None)
        .await
        .unwrap()
        .is_empty()
}

/// Everything of the live systems: the tree (contents, modes, mtimes), the SQLite file's
/// bytes, both databases' schema and rows.
async fn fingerprint(site: &Site, pg_url: &str, my_name: &str) -> (BTreeMap<String, String>, Vec<u8>, [String; 4]) {
    (
        site.tree(),
        std::fs::read(site.sqlite()).unwrap(),
        [
            postgres::schema_dump(pg_url).await,
            postgres::data_dump(pg_url).await,
            mysql::schema_dump(my_name).await,
            mysql::data_dump(my_name).await,
        ],
    )
}

crate::db_tests! {
    async fn a_verify_run_proves_all_five_systems_restore_and_leaves_the_live_ones_as_they_were(db) {
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
        // The verify script finds the export in its input and says so.
        let engine = site.engine(db, &format!(r#"
[environments.resources.files]
driver = "directory"
path = "files"
[environments.resources.shop-db]
driver = "sqlite"
path = "shop.sqlite"
[environments.resources.orders]
driver = "postgres"
url = "{pg}"
verify_sql = ["SELECT 1 FROM orders WHERE id = 3", "SELECT count(*) FROM orders HAVING count(*) = 3"]
[environments.resources.stock]
driver = "mysql"
url = "{my}"
verify_sql = ["SELECT id FROM stock WHERE qty = 7"]
[environments.resources.export]
driver = "command"
backup = ["sh", "-c", "echo 'sku;qty' > \"$STEWARD_OUTPUT_DIR/export.csv\""]
verify = ["sh", "-c", "grep -q 'sku;qty' \"$STEWARD_INPUT_DIR/export.csv\" && echo \"export of $STEWARD_BACKUP_ID readable\""]
"#, pg = pg.url, my = mysql::url_of(&my.name, &admin)));
        let workers = engine.start_workers().await.unwrap();
        let backup_id = back_up(&engine).await;
        let before = engine.backup(&backup_id).await.unwrap().unwrap();
        assert_eq!(before.test_restore, TestRestore::Never);
        assert_eq!(engine.newest_proven("shop").await.unwrap(), None);

        let live = fingerprint(&site, &pg.url, &my.name).await;

        let job = engine.request_verify(&alice(), &backup_id).await.unwrap();
        assert!(!job.exclusive, "a verification does not hold the environment");
        assert_eq!(job.steps, [format!("Verify and test-restore {backup_id}")]);
        let job = wait_until_finished(&engine, job.id).await;
        let log = log_text(&engine, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{:?}\n{log}", job.error);
        assert_eq!(fingerprint(&site, &pg.url, &my.name).await, live, "the live systems are unchanged\n{log}");

        // The badge: when, and what was checked, resource by resource.
        let backup = engine.backup(&backup_id).await.unwrap().unwrap();
        let TestRestore::Passed { checked, job_id, .. } = &backup.test_restore else {
            panic!("{:?}\n{log}", backup.test_restore);
        };
        assert_eq!(*job_id, Some(job.id));
        for expected in [
            "checksums: all 5 artifacts match their checksums",
            "export: 1 files unpacked; the verify script sh passed",
            "files: 2 files, 2 directories, 1 symbolic links",
            "restored from the repository and compared with the manifest",
            "orders: restored into a scratch database (1 tables), 2 verify queries returned rows",
            "shop-db: restored into a temporary file (",
            "1 tables), PRAGMA integrity_check: ok",
            "stock: restored into a scratch database (1 tables), 1 verify queries returned rows",
        ] {
            assert!(checked.contains(expected), "{expected:?} in {checked}");
        }
        assert!(matches!(backup.verification, Verification::Passed { .. }));
        assert!(log.contains(&format!("export of {backup_id} readable")), "the script's output: {log}");
        assert!(log.contains(&format!("Backup {backup_id} is proven restorable")), "{log}");
        assert_eq!(engine.newest_proven("shop").await.unwrap(), Some(backup_id.clone()));

        // The scratch databases were real, and are gone.
        let scratch = scratch_databases_in(&log);
        assert_eq!(scratch.len(), 2, "{log}");
        assert!(scratch.iter().all(|name| name.starts_with(&format!("steward_verify_{}_", job.id))), "{scratch:?}");
        assert!(!pg_database_exists(&scratch[0]).await, "{scratch:?}");
        assert!(!mysql_database_exists(&scratch[1]).await, "{scratch:?}");
        assert!(!site.path().join(format!("steward/.verify-scratch/job-{}", job.id)).exists());

        let actions = audit_actions(db).await;
        assert!(actions.contains(&("backup.verify".to_string(), AuditOutcome::Ok)), "{actions:?}");
        assert!(actions.contains(&("backup.test_restore".to_string(), AuditOutcome::Ok)), "{actions:?}");

        // A second backup: a run of one picks it (never verified), a run of two takes both,
        // the one verified longest ago first.
        let second = back_up(&engine).await;
        let job = engine.request_verification(&alice(), "shop", 1).await.unwrap();
        assert_eq!(job.spec.as_ref().and_then(|s| s.get::<Verify>()).unwrap().targets(), [second.as_str()]);
        assert_eq!(wait_until_finished(&engine, job.id).await.state, JobState::Succeeded);
        let job = engine.request_verification(&alice(), "shop", 5).await.unwrap();
        assert_eq!(
            job.spec.as_ref().and_then(|s| s.get::<Verify>()).unwrap().targets(),
            [backup_id.as_str(), second.as_str()]
        );
        assert_eq!(job.steps.len(), 2);
        let job = wait_until_finished(&engine, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        assert_eq!(job.steps_done, 2);
        assert_eq!(engine.test_restores(&backup_id, 10).await.unwrap().len(), 2, "the history keeps both");
        assert_eq!(engine.newest_proven("shop").await.unwrap(), Some(second));
        assert_eq!(fingerprint(&site, &pg.url, &my.name).await, live);
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_dump_that_needs_a_missing_role_fails_the_test_restore_in_pg_restores_words(db) {
        if !postgres::available().await {
            return;
        }
        let site = Site::new();
        let reader = postgres::TempRole::create("").await;
        let pg = postgres::TempDatabase::create().await;
        postgres::psql(&pg.url, &format!("CREATE TABLE orders (id int PRIMARY KEY, total numeric);
            INSERT INTO orders VALUES (1, 10.50), (2, 20); GRANT SELECT ON orders TO {};", reader.name)).await.unwrap();
        let engine = site.engine(db, &format!(r#"
[environments.resources.orders]
driver = "postgres"
url = "{}"
[environments.resources.files]
driver = "directory"
path = "files"
"#, pg.url));
        let workers = engine.start_workers().await.unwrap();
        let backup_id = back_up(&engine).await;
        // The role the dump grants to is gone (as on a server the dump was never meant for).
        postgres::psql(&pg.url, &format!("REVOKE ALL ON orders FROM {r}; DROP ROLE {r};", r = reader.name)).await.unwrap();
        let live = (postgres::schema_dump(&pg.url).await, postgres::data_dump(&pg.url).await, site.tree());

        let job = engine.request_verification(&alice(), "shop", 3).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        let log = log_text(&engine, job.id).await;
        assert_eq!(job.state, JobState::Failed, "{log}");
        let error = job.error.clone().unwrap();
        let missing = format!("role \"{}\" does not exist", reader.name);
        assert!(error.starts_with(&format!("{backup_id}: orders (postgres): ")), "{error}");
        assert!(error.contains(&missing), "the tool's own words: {error}");
        assert!(error.ends_with("(in the scratch database, which is dropped)."), "{error}");

        // The checksums match; the test restore failed, with the same words; the directory
        // passed all the same.
        let backup = engine.backup(&backup_id).await.unwrap().unwrap();
        assert!(matches!(backup.verification, Verification::Passed { .. }), "{:?}", backup.verification);
        let TestRestore::Failed { error, checked, .. } = &backup.test_restore else {
            panic!("{:?}", backup.test_restore);
        };
        assert!(error.contains(&missing), "{error}");
        assert!(checked.contains("files: 2 files"), "{checked}");
        assert_eq!(engine.newest_proven("shop").await.unwrap(), None);
        let actions = audit_actions(db).await;
        assert!(actions.contains(&("backup.verify".to_string(), AuditOutcome::Ok)), "{actions:?}");
        assert!(actions.contains(&("backup.test_restore".to_string(), AuditOutcome::Failed)), "{actions:?}");

        // Nothing live changed, and the scratch database is gone although it failed.
        assert_eq!((postgres::schema_dump(&pg.url).await, postgres::data_dump(&pg.url).await, site.tree()), live);
        let scratch = scratch_databases_in(&log);
        assert_eq!(scratch.len(), 1, "{log}");
        assert!(!pg_database_exists(&scratch[0]).await, "{scratch:?}");
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_damaged_backup_is_not_test_restored_and_says_why(db) {
        let site = Site::new();
        let engine = site.engine(db, r#"
[environments.resources.files]
driver = "directory"
path = "files"
[environments.resources.remote]
driver = "http"
start_url = "http://127.0.0.1:1/start"
status_url = "http://127.0.0.1:1/status"
"#);
        let workers = engine.start_workers().await.unwrap();
        // Written by hand: the remote system is not there to take a backup.
        let backup_id = back_up_files_only(&engine, &site).await;

        let job = engine.request_verify(&alice(), &backup_id).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        let log = log_text(&engine, job.id).await;
        assert_eq!(job.state, JobState::Succeeded, "{log}");
        let backup = engine.backup(&backup_id).await.unwrap().unwrap();
        let TestRestore::Passed { checked, .. } = &backup.test_restore else { panic!("{:?}", backup.test_restore) };
        assert!(checked.contains("remote: skipped, the remote system keeps and restores its own backup"), "{checked}");

        // One flipped byte: checksums fail, no test restore is tried, the badge says why.
        let artifact = site.path().join("backups/shop").join(&backup_id).join("files/files.tar.zst");
        let mut bytes = std::fs::read(&artifact).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&artifact, bytes).unwrap();
        let job = engine.request_verify(&alice(), &backup_id).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        assert_eq!(job.state, JobState::Failed);
        let error = job.error.unwrap();
        assert!(error.starts_with(&format!(
            "{backup_id}: the backup is damaged, so it was not test-restored: files (files/files.tar.zst): checksum does not match"
        )), "{error}");
        let backup = engine.backup(&backup_id).await.unwrap().unwrap();
        assert!(matches!(&backup.test_restore, TestRestore::Failed { checked, .. } if checked == "checksums"), "{:?}", backup.test_restore);
        let history = engine.test_restores(&backup_id, 10).await.unwrap();
        assert!(matches!(history[..], [TestRestore::Failed { .. }, TestRestore::Passed { .. }]), "{history:?}");
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_cancelled_verification_stops_its_script_and_records_nothing(db) {
        let site = Site::new();
        let started = site.path().join("verify-started");
        let engine = site.engine(db, &format!(r#"
[environments.resources.export]
driver = "command"
backup = ["sh", "-c", "echo x > \"$STEWARD_OUTPUT_DIR/x\""]
verify = ["sh", "-c", "touch '{}'; sleep 600"]
"#, started.display()));
        let workers = engine.start_workers().await.unwrap();
        let backup_id = back_up(&engine).await;
        let job = engine.request_verify(&alice(), &backup_id).await.unwrap();
        for _ in 0..600 {
            if started.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.exists(), "the verify script started");
        let scratch = site.path().join(format!("steward/.verify-scratch/job-{}", job.id));
        assert!(scratch.exists(), "the backup is unpacked in scratch");
        engine.cancel_job(&alice(), job.id).await.unwrap();
        let job = wait_until_finished(&engine, job.id).await;
        assert_eq!(job.state, JobState::Cancelled);
        assert!(!scratch.exists());
        assert!(engine.test_restores(&backup_id, 10).await.unwrap().is_empty(), "a stop is no result");
        assert_eq!(engine.backup(&backup_id).await.unwrap().unwrap().test_restore, TestRestore::Never);
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn scratch_files_a_crashed_verification_left_are_removed_when_workers_start(db) {
        let site = Site::new();
        let engine = site.engine(db, "");
        let left = site.path().join("steward/.verify-scratch/job-41/files/tree");
        std::fs::create_dir_all(&left).unwrap();
        std::fs::write(left.join("index.html"), "<h1>Shop</h1>").unwrap();
        let workers = engine.start_workers().await.unwrap();
        assert!(!site.path().join("steward/.verify-scratch/job-41").exists());
        workers.shutdown(Duration::from_secs(1)).await;
    }

    async fn a_verification_of_an_environment_without_backups_is_refused(db) {
        let site = Site::new();
        let engine = site.engine(db, "");
        let refused = engine.request_verification(&alice(), "shop", 2).await.unwrap_err();
        assert!(refused.to_string().starts_with("shop has no backups to verify"), "{refused}");
        assert!(engine.verification_of("shop", 2).await.is_err(), "a schedule's run is refused alike");
        let unknown = engine.request_verification(&alice(), "nowhere", 2).await.unwrap_err();
        assert_eq!(unknown.to_string(), "there is no environment \"nowhere\"");
    }
}

/// A backup of `shop` holding only its directory (and a report of the `remote` resource written
/// by hand, as the http driver writes it), published and catalogued as a backup job does.
async fn back_up_files_only(engine: &Engine, site: &Site) -> String {
    use crate::{
        drivers::{directory, testing::Harness},
        manifest::{MANIFEST_VERSION, ManifestArtifact, new_backup_id},
    };
    let id = new_backup_id("shop", crate::db::now_ms());
    let dir = site.path().join("backups/shop").join(&id);
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::create_dir_all(dir.join("remote")).unwrap();
    let harness = Harness::new();
    let files = directory::backup(&site.files(), &[], &[], &dir.join("files"), &harness.ctx())
        .await
        .unwrap();
    let report = br#"{"state": "done", "remote_backup": "snap-1"}"#;
    std::fs::write(dir.join("remote/report.json"), report).unwrap();
    let (size, sha256) = crate::drivers::sha256_of(&dir.join("remote/report.json"))
        .await
        .unwrap();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        id: id.clone(),
        environment: "shop".into(),
        started_at_ms: crate::db::now_ms(),
        finished_at_ms: crate::db::now_ms(),
        trigger: "manual".into(),
        requested_by: "alice".into(),
        description: String::new(),
        artifacts: vec![
            ManifestArtifact {
                resource: "files".into(),
                driver: "directory".into(),
                file: "files/files.tar.zst".into(),
                size: files.size,
                sha256: files.sha256,
                tool: files.tool,
                details: files.details,
                tree: false,
            },
            ManifestArtifact {
                resource: "remote".into(),
                driver: "http".into(),
                file: "remote/report.json".into(),
                size,
                sha256,
                tool: None,
                details: serde_json::Value::Null,
                tree: false,
            },
        ],
        facts: BTreeMap::new(),
        steward_version: "test".into(),
        stored: crate::manifest::Stored::Files,
    };
    std::fs::write(dir.join("manifest.json"), manifest.to_json().unwrap()).unwrap();
    let report = engine.reindex_backups(&alice()).await.unwrap();
    assert_eq!(report.indexed, 1, "{report:?}");
    id
}
