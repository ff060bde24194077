//! `steward backup …` as an operator uses it, against a real `steward serve` whose workers take
//! the backups: create and follow, list, show, verify (and a tampered artifact), reindex after
//! losing the database, `config check` on resources that are not there, and the kill -9 test: a
//! backup cut off by a crash is never listed and its files are gone after the restart.

#[path = "support/steward_cli.rs"]
mod steward_cli;

use std::{path::Path, thread, time::Duration};

use steward_cli::*;

#[test]
fn backups_are_taken_listed_shown_verified_and_reindexed() {
    let steward = shop("");
    let checked = steward.cli(&["config", "check"]);
    assert_eq!(checked.code, Some(0), "{checked:?}");
    assert!(checked.stdout.contains("resources:    all 2 ready"), "{checked:?}");

    let serve = steward.serve();
    let created = steward.cli(&[
        "backup",
        "create",
        "prod",
        "--description",
        "before the upgrade",
        "--follow",
    ]);
    assert_eq!(created.code, Some(0), "{created:?}");
    let id = completed_id(&created.stdout);
    assert!(id.starts_with("prod-"), "{id}");
    assert!(created.stdout.contains("Fact release: v2.4.1"), "{created:?}");
    assert!(created.stdout.contains("checksums match"), "{created:?}");

    let listed = steward.cli(&["backup", "list", "prod"]);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let row = listed
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{listed:?}"));
    assert!(
        row.contains("manual") && row.contains("cli") && row.contains("before the upgrade") && row.contains(" ok "),
        "{row}"
    );

    let shown = steward.cli(&["backup", "show", &id]);
    assert_eq!(shown.code, Some(0), "{shown:?}");
    for expected in [
        "site",
        "directory",
        "site/ ",
        "a tree: every block checked by the repository",
        "snapshot tagged backup:",
        "shop-db",
        "sqlite",
        "release: v2.4.1",
        "before the upgrade",
    ] {
        assert!(shown.stdout.contains(expected), "{expected} missing: {shown:?}");
    }

    // Verify: the checksums, then a test restore of each resource, as a job.
    let verified = steward.cli(&["backup", "verify", &id]);
    assert_eq!(verified.code, Some(0), "{verified:?}");
    assert!(
        verified.stdout.contains(&format!("Backup {id} is intact")),
        "{verified:?}"
    );
    assert!(
        verified.stdout.contains(&format!("{id}: proven restorable, ")),
        "{verified:?}"
    );
    for checked in [
        "site: 5 files, 4 directories, 1 symbolic links",
        "restored from the repository and compared with the manifest",
        "shop-db: restored into a temporary file",
        "PRAGMA integrity_check: ok",
    ] {
        assert!(verified.stdout.contains(checked), "{checked}: {verified:?}");
    }
    let listed = steward.cli(&["backup", "list", "prod"]);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains(" ok ") && l.contains(" proven ")),
        "{listed:?}"
    );
    let shown = steward.cli(&["backup", "show", &id]);
    assert!(
        shown.stdout.contains("  test restore: proven restorable, "),
        "{shown:?}"
    );
    // The console shows the badge: on the backup's page in full, in the list compactly.
    let password = serve.admin_password();
    let page = serve.page_as_admin(&password, &format!("/backups/{id}"));
    assert!(
        page.contains("Proven restorable") && page.contains("PRAGMA integrity_check: ok"),
        "the backup page shows no badge"
    );
    let list = serve.page_as_admin(&password, "/environments/prod/backups");
    assert!(
        list.contains("Proven restorable · just now · shop-db, site"),
        "the backups list shows no badge"
    );
    // `steward verify ENV` picks the backups itself.
    let picked = steward.cli(&["verify", "prod", "--count", "3"]);
    assert_eq!(picked.code, Some(0), "{picked:?}");
    assert!(
        picked.stdout.contains("Queued verify #") && picked.stdout.contains(&format!("of prod ({id})")),
        "{picked:?}"
    );
    let unknown = steward.cli(&["verify", "prod", "--backup", "prod-20200101-0000-dead"]);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("there is no backup \"prod-20200101-0000-dead\""),
        "{unknown:?}"
    );

    // A changed byte in each of the repository's data packs: verify fails and names the
    // backup, without a server too.
    let mut damaged_packs = 0;
    for dir in std::fs::read_dir(steward.path("state/repository/data")).expect("packs") {
        for pack in std::fs::read_dir(dir.expect("dir").path()).expect("packs") {
            let path = pack.expect("pack").path();
            let mut bytes = std::fs::read(&path).expect("pack");
            let middle = bytes.len() / 3;
            bytes[middle] ^= 0x01;
            std::fs::set_permissions(
                &path,
                <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644),
            )
            .expect("chmod");
            std::fs::write(&path, bytes).expect("tamper");
            damaged_packs += 1;
        }
    }
    assert!(damaged_packs > 0);
    let damaged = steward.cli(&["backup", "verify", &id]);
    assert_eq!(damaged.code, Some(1), "{damaged:?}");
    assert!(
        damaged.stdout.contains("cannot be read back from the repository") && damaged.stdout.contains(&id),
        "{damaged:?}"
    );
    assert!(
        damaged.stdout.contains(&format!("{id}: test restore FAILED, ")),
        "{damaged:?}"
    );
    assert!(
        damaged
            .stderr
            .contains("the backup is damaged, so it was not test-restored"),
        "{damaged:?}"
    );
    let damaged = steward.cli(&["backup", "verify", &id, "--checksums-only"]);
    assert_eq!(damaged.code, Some(1), "{damaged:?}");
    assert!(
        damaged.stdout.contains("cannot be read back from the repository"),
        "{damaged:?}"
    );
    assert!(
        damaged.stderr.contains(&format!("backup {id} is damaged")),
        "{damaged:?}"
    );
    let listed = steward.cli(&["backup", "list", "prod"]);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("FAILED")),
        "{listed:?}"
    );

    // The database is lost: the backups are not.
    drop(serve);
    std::fs::remove_file(steward.path("state/steward.db")).expect("remove the database");
    let empty = steward.cli(&["backup", "list", "prod"]);
    assert!(empty.stdout.contains("prod has no backups yet"), "{empty:?}");
    let reindexed = steward.cli(&["backup", "reindex"]);
    assert_eq!(reindexed.code, Some(0), "{reindexed:?}");
    assert!(reindexed.stdout.contains("1 backup(s) indexed"), "{reindexed:?}");
    let listed = steward.cli(&["backup", "list", "prod"]);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("before the upgrade")),
        "{listed:?}"
    );
}

#[test]
fn config_check_names_the_environment_and_resource_that_are_not_there() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let steward = shop(&format!(
        r#"
[environments.resources.files]
driver = "directory"
path = "no/such/dir"

[environments.resources.db]
driver = "postgres"
url = "postgres://app@127.0.0.1:{port}/app"
"#
    ));
    let checked = steward.cli(&["config", "check"]);
    assert_eq!(checked.code, Some(1), "{checked:?}");
    assert!(
        checked.stderr.contains(&format!(
            "environment prod, resources.db (postgres): cannot reach PostgreSQL at 127.0.0.1:{port}"
        )),
        "{checked:?}"
    );
    assert!(
        checked
            .stderr
            .contains("environment prod, resources.files (directory): the directory")
            && checked.stderr.contains("no/such/dir"),
        "{checked:?}"
    );

    // The same problem in a backup job: the job fails and its log names them.
    let _serve = steward.serve();
    let created = steward.cli(&["backup", "create", "prod", "--follow"]);
    assert_eq!(created.code, Some(1), "{created:?}");
    assert!(created.stdout.contains("prod / db (postgres):"), "{created:?}");
    assert!(
        created.stderr.contains("backup #1 failed: prod / db (postgres):"),
        "{created:?}"
    );
    assert!(
        steward
            .cli(&["backup", "list", "prod"])
            .stdout
            .contains("no backups yet")
    );

    // An unknown driver stops at loading, naming the environment and resource.
    let config = std::fs::read_to_string(&steward.config).expect("config");
    std::fs::write(
        &steward.config,
        config + "\n[environments.resources.cache]\ndriver = \"redis\"\n",
    )
    .expect("config");
    let checked = steward.cli(&["config", "check"]);
    assert_eq!(checked.code, Some(2), "{checked:?}");
    assert!(
        checked.stderr.contains("environments[0] (prod).resources.cache.driver"),
        "{checked:?}"
    );
    assert!(checked.stderr.contains("redis"), "{checked:?}");
}

#[test]
fn a_backup_cut_off_by_a_crash_is_never_listed_and_its_files_are_gone() {
    let steward = Steward::new("");
    let pid_file = steward.path("slow.pid");
    let script = steward.path("slow.sh");
    std::fs::write(
        &script,
        format!(
            "echo $$ > '{pid}'; head -c 1000000 /dev/urandom > \"$STEWARD_OUTPUT_DIR/part.bin\"; echo started; sleep 600\n",
            pid = pid_file.display()
        ),
    )
    .expect("script");
    let config = std::fs::read_to_string(&steward.config).expect("config");
    let resource = format!(
        "[environments.resources.slow]\ndriver = \"command\"\nbackup = [\"sh\", {:?}]\n",
        script.display().to_string()
    );
    std::fs::write(&steward.config, config + &resource).expect("config");

    let first = steward.serve();
    let mut follower = steward.start(&["backup", "create", "prod", "--follow"]);
    follower.wait_for_stdout("stdout started");
    let _orphan = Orphan(read_pid(&pid_file));
    let staging = steward.path("state/backups/.staging");
    assert_eq!(entries(&staging), 1, "the backup is being written");

    first.crash();
    follower.kill();

    let _second = steward.serve();
    let shown = steward.wait_for_state(1, "interrupted");
    assert!(
        shown
            .field("error")
            .starts_with("Steward stopped while this job was running"),
        "{shown:?}"
    );
    assert_eq!(entries(&staging), 0, "what the crashed backup wrote is gone");
    let listed = steward.cli(&["backup", "list", "prod"]);
    assert!(listed.stdout.contains("prod has no backups yet"), "{listed:?}");
    // The crashed backup's script was stopped by the restart.
    let orphan = std::fs::read_to_string(&pid_file).expect("pid file");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", orphan.trim())).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    assert!(
        matches!(state, None | Some("Z" | "X")),
        "the crashed backup's script still runs: {stat}"
    );
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

/// A remote system that backs itself up as `snap-1`: the start URL accepts, the status URL
/// reports done. Returns its base URL; it runs until the test process ends.
fn remote_system() -> String {
    use axum::{
        Json, Router,
        routing::{get, post},
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let app = Router::new()
                .route("/start", post(|| async { Json(serde_json::json!({ "accepted": true })) }))
                .route(
                    "/status",
                    get(|| async {
                        Json(serde_json::json!({ "state": "done", "message": "stored as snap-1", "remote_backup": "snap-1" }))
                    }),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            sender
                .send(format!("http://{}", listener.local_addr().expect("address")))
                .expect("send");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    receiver.recv().expect("the remote system's address")
}

#[test]
fn what_a_remote_system_reported_is_shown_by_backup_show_and_on_the_backup_page() {
    let remote = remote_system();
    let steward = Steward::new(&format!(
        r#"
[environments.resources.cms]
driver = "http"
start_url = "{remote}/start"
status_url = "{remote}/status"
poll_seconds = 1
"#
    ));
    let serve = steward.serve();
    let created = steward.cli(&["backup", "create", "prod", "--follow"]);
    assert_eq!(created.code, Some(0), "{created:?}");
    let id = completed_id(&created.stdout);

    let shown = steward.cli(&["backup", "show", &id]);
    assert_eq!(shown.code, Some(0), "{shown:?}");
    assert!(
        shown
            .stdout
            .contains("the remote system reported: remote backup snap-1 (done: stored as snap-1)"),
        "{shown:?}"
    );
    // Times are printed once with their zone.
    let taken = shown.stdout.lines().find(|l| l.contains("taken:")).unwrap_or_default();
    assert_eq!(taken.matches("UTC").count(), 1, "{taken}");
    let verified = shown
        .stdout
        .lines()
        .find(|l| l.contains("verified:"))
        .unwrap_or_default();
    assert!(verified.matches("UTC").count() <= 1, "{verified}");

    let page = serve.page_as_admin(&serve.admin_password(), &format!("/backups/{id}"));
    assert!(
        page.contains("The remote system reported: remote backup snap-1 (done: stored as snap-1)"),
        "the backup page does not say which remote backup it is"
    );
}

/// kill -9 while a backup writes into the repository, and again while a prune deletes from it:
/// after each restart nothing half-written is listed, the repository passes its check, and the
/// next backup succeeds.
#[test]
fn a_crash_while_the_repository_is_written_or_pruned_leaves_it_intact() {
    let steward = Steward::new(
        r#"
[environments.retention]
keep_last = 1
keep_pre_restore_days = 0
[environments.resources.site]
driver = "directory"
path = "site"
"#,
    );
    // Enough incompressible data that writing it takes a while.
    let site = steward.path("site");
    std::fs::create_dir_all(&site).expect("site");
    for n in 0..6 {
        let made = std::process::Command::new("head")
            .args(["-c", "10000000", "/dev/urandom"])
            .output()
            .expect("head");
        std::fs::write(site.join(format!("part-{n}.bin")), made.stdout).expect("write");
    }
    let serve = steward.serve();
    let started = steward.cli(&["backup", "create", "prod", "--description", "cut off"]);
    assert_eq!(started.code, Some(0), "{started:?}");
    steward.wait_for_log(1, "Storing the backup in the repository");
    thread::sleep(Duration::from_millis(300));
    serve.crash();

    let serve = steward.serve();
    steward.wait_for_state(1, "interrupted");
    let listed = steward.cli(&["backup", "list", "prod"]);
    assert!(listed.stdout.contains("prod has no backups yet"), "{listed:?}");
    let checked = steward.cli(&["storage", "check"]);
    assert_eq!(checked.code, Some(0), "after a crash mid-write: {checked:?}");
    let mut ids = Vec::new();
    for n in 0..2 {
        std::fs::write(site.join("night.txt"), format!("night {n}")).expect("write");
        let done = steward.cli(&["backup", "create", "prod", "--follow"]);
        assert_eq!(done.code, Some(0), "the next backup: {done:?}");
        ids.push(completed_id(&done.stdout));
    }

    // The prune forgets the older backup and prunes; Steward dies while it does.
    let mut prune = steward.start(&["prune", "prod"]);
    prune.wait_for_stdout("Pruning the repository");
    serve.crash();
    prune.kill();

    let _serve = steward.serve();
    let checked = steward.cli(&["storage", "check", "--read-data"]);
    assert_eq!(checked.code, Some(0), "after a crash mid-prune: {checked:?}");
    let listed = steward.cli(&["backup", "list", "prod"]);
    assert!(
        listed.stdout.contains(&ids[1]) && !listed.stdout.contains(&ids[0]),
        "{listed:?}"
    );
    let verified = steward.cli(&["backup", "verify", &ids[1], "--checksums-only"]);
    assert_eq!(verified.code, Some(0), "{verified:?}");
    let done = steward.cli(&["backup", "create", "prod", "--follow"]);
    assert_eq!(done.code, Some(0), "the backup after the crashed prune: {done:?}");
    let usage = steward.cli(&["storage", "usage"]);
    assert_eq!(usage.code, Some(0), "{usage:?}");
    assert!(
        usage.stdout.contains("prod") && usage.stdout.contains("as full copies"),
        "{usage:?}"
    );
}
