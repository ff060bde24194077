//! `steward restore` as an operator uses it, against a real `steward serve` whose workers do the
//! restores, with real maintenance hooks (scripts that write down each call) and real resources:
//! a directory and a `command` resource whose scripts can be made to hang.
//!
//! - the kill -9 test: Steward killed while a resource is being restored; after the restart the
//!   restore is interrupted, its script is gone, the environment is still in maintenance, and
//!   the safety backup is listed and brings the environment back (`--undo`);
//! - busy both ways: no backup while a restore runs, no restore while a backup runs;
//! - refusals (no terminal without --yes, an unknown backup, no reason) and the terminal's own
//!   flow: the environment's name typed, production confirmed twice, the restore followed.

#[path = "support/steward_cli.rs"]
mod steward_cli;

use std::{path::Path, thread, time::Instant};

use steward_cli::*;

/// The `prod` environment with maintenance hooks and two resources: `files` (a directory) and
/// `service` (a command resource keeping one file, `service-state.txt`). Touching `slow-backup`
/// or `slow-restore` in the directory makes the next backup or restore script hang (the restore
/// flag is used up by the restore that hangs).
fn restorable(production: bool) -> Steward {
    let steward = Steward::new("");
    let dir = steward.dir.path().display().to_string();
    let script = |name: &str, body: String| {
        let path = steward.path(name);
        std::fs::write(&path, body).expect("script");
        path.display().to_string()
    };
    let enter = script(
        "enter.sh",
        format!("echo enter >> '{dir}/calls'\necho '{{\"stopped\":[\"web\"]}}'\n"),
    );
    let leave = script(
        "leave.sh",
        format!("echo \"leave $STEWARD_MAINTENANCE_STATE\" >> '{dir}/calls'\n"),
    );
    let backup = script(
        "backup.sh",
        format!(
            "set -e\n\
             if [ -e '{dir}/slow-backup' ]; then echo $$ > '{dir}/backup.pid'; echo backing up slowly; exec sleep 600; fi\n\
             cp '{dir}/service-state.txt' \"$STEWARD_OUTPUT_DIR/state.txt\"\n"
        ),
    );
    let restore = script(
        "restore.sh",
        format!(
            "set -e\n\
             if [ -e '{dir}/slow-restore' ]; then rm '{dir}/slow-restore'; echo $$ > '{dir}/restore.pid'; echo restoring slowly; exec sleep 600; fi\n\
             cp \"$STEWARD_INPUT_DIR/state.txt\" '{dir}/service-state.txt'\n\
             echo service state restored\n"
        ),
    );
    std::fs::create_dir(steward.path("files")).expect("files");
    write(&steward, "files/page.txt", "v1");
    write(&steward, "files/old.txt", "old");
    write(&steward, "service-state.txt", "v1");

    let config = std::fs::read_to_string(&steward.config).expect("config");
    let extra = format!(
        r#"production = {production}
[environments.maintenance]
enter = {{ command = ["sh", {enter:?}] }}
leave = {{ command = ["sh", {leave:?}] }}

[environments.resources.files]
driver = "directory"
path = {files:?}

[environments.resources.service]
driver = "command"
backup = ["sh", {backup:?}]
restore = ["sh", {restore:?}]
"#,
        files = format!("{dir}/files"),
    );
    std::fs::write(&steward.config, config + &extra).expect("config");
    steward
}

fn write(steward: &Steward, name: &str, text: &str) {
    std::fs::write(steward.path(name), text).expect("write");
}

fn read(steward: &Steward, name: &str) -> Option<String> {
    std::fs::read_to_string(steward.path(name)).ok()
}

/// The maintenance hooks called so far, one line each.
fn calls(steward: &Steward) -> Vec<String> {
    read(steward, "calls")
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `backup create prod --follow`; returns the backup's id.
fn take_backup(steward: &Steward) -> String {
    let created = steward.cli(&["backup", "create", "prod", "--follow"]);
    assert_eq!(created.code, Some(0), "{created:?}");
    created
        .stdout
        .lines()
        .find_map(|line| line.split("(backup ").nth(1)?.split(')').next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no backup id in {created:?}"))
}

/// `… the safety backup will be prod-20261122-0630-1a2b. …` → the id.
fn safety_id(stdout: &str) -> String {
    stdout
        .split("the safety backup will be ")
        .nth(1)
        .and_then(|rest| rest.split(['.', ' ']).next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no safety backup in {stdout:?}"))
}

/// Whether process `pid` is gone (or only a zombie), waiting up to [`TIMEOUT`] for it.
fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if matches!(state, None | Some("Z" | "X")) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|entry| {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            (entry.file_name().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_restore_killed_mid_way_stays_in_maintenance_and_its_safety_backup_brings_it_back() {
    let steward = restorable(false);
    let first = steward.serve();
    let backup = take_backup(&steward);

    // After the backup: a page changed, one added, one deleted; the service's state changed.
    write(&steward, "files/page.txt", "v2");
    write(&steward, "files/new.txt", "new");
    std::fs::remove_file(steward.path("files/old.txt")).expect("delete");
    write(&steward, "service-state.txt", "v2");
    let changed = tree(&steward.path("files"));

    write(&steward, "slow-restore", "");
    let mut restoring = steward.start(&["restore", &backup, "--reason", "kill test", "--yes", "--follow"]);
    restoring.wait_for_stdout("stdout restoring slowly");
    let _orphan = Orphan(read_pid(&steward.path("restore.pid")));
    let script_pid = read(&steward, "restore.pid").unwrap_or_default().trim().to_string();
    let stdout = restoring.stdout();
    let id = queued_id(&stdout);
    let safety = safety_id(&stdout);
    // `files` comes before `service`: it is restored, `service` is being restored.
    assert!(stdout.contains("files is restored."), "{stdout}");
    assert_eq!(read(&steward, "files/page.txt").as_deref(), Some("v1"));
    assert_eq!(calls(&steward), ["enter"]);

    first.crash();
    restoring.kill();

    let _second = steward.serve();
    let shown = steward.wait_for_state(id, "interrupted");
    assert!(
        shown
            .field("error")
            .starts_with("Steward stopped while this job was running"),
        "{shown:?}"
    );
    assert!(
        gone(&script_pid),
        "the restore script of the crashed Steward still runs"
    );

    // Still in maintenance: the hooks were not called again, and the CLI says so, with the way
    // back.
    assert_eq!(calls(&steward), ["enter"]);
    let mode = steward.cli(&["maintenance", "prod"]);
    assert_eq!(mode.code, Some(0), "{mode:?}");
    assert!(
        mode.stdout.contains("prod is in maintenance since")
            && mode.stdout.contains(&format!("entered by restore #{id}")),
        "{mode:?}"
    );
    assert!(
        mode.stdout
            .contains(&format!("restore #{id} interrupted: Steward stopped"))
            && mode.stdout.contains(&format!(
                "The safety backup {safety} holds prod as it was before: `steward restore --undo {id}"
            )),
        "{mode:?}"
    );

    // The safety backup is listed, as a pre-restore backup, and intact.
    let listed = steward.cli(&["backup", "list", "prod"]);
    assert!(
        listed
            .stdout
            .lines()
            .any(|line| line.starts_with(&safety) && line.contains("pre-restore")),
        "{listed:?}"
    );
    let verified = steward.cli(&["backup", "verify", &safety]);
    assert_eq!(verified.code, Some(0), "{verified:?}");

    // Undo: the safety backup restored, out of maintenance with what `enter` reported.
    let undone = steward.cli(&[
        "restore",
        "--undo",
        &id.to_string(),
        "--reason",
        "back to before the restore",
        "--yes",
        "--follow",
    ]);
    assert_eq!(undone.code, Some(0), "{undone:?}");
    assert!(
        undone.stdout.contains(&format!(
            "Undo restore #{id}: restore prod (Production) to its safety backup {safety}"
        )),
        "{undone:?}"
    );
    assert!(undone.stdout.contains("Queued undo #"), "{undone:?}");
    assert!(
        undone
            .stdout
            .contains(&format!("prod is restored to backup {safety} and out of maintenance.")),
        "{undone:?}"
    );
    assert_eq!(calls(&steward), ["enter", r#"leave {"stopped":["web"]}"#]);
    assert_eq!(
        tree(&steward.path("files")),
        changed,
        "the files as they were before the restore"
    );
    assert_eq!(read(&steward, "service-state.txt").as_deref(), Some("v2"));
    let mode = steward.cli(&["maintenance", "prod"]);
    assert_eq!(mode.stdout.trim(), "prod is not in maintenance.", "{mode:?}");

    // An Undo is done once.
    let again = steward.cli(&["restore", "--undo", &id.to_string(), "--reason", "again", "--yes"]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(
        again.stderr.contains(&format!("restore #{id} was already undone")),
        "{again:?}"
    );
}

#[test]
fn backups_and_restores_refuse_each_other_while_one_runs() {
    let steward = restorable(false);
    let _serve = steward.serve();
    let backup = take_backup(&steward);

    // A backup runs: a restore is refused, and nothing is touched.
    write(&steward, "slow-backup", "");
    let queued = steward.cli(&["backup", "create", "prod"]);
    assert_eq!(queued.code, Some(0), "{queued:?}");
    let running_backup = queued_id(&queued.stdout);
    steward.wait_for_log(running_backup, "backing up slowly");
    let _orphan = Orphan(read_pid(&steward.path("backup.pid")));
    let refused = steward.cli(&["restore", &backup, "--reason", "while a backup runs", "--yes"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains(&format!("prod is busy: backup #{running_backup} started by cli at "))
            && refused.stderr.contains("try again when it ends"),
        "{refused:?}"
    );
    assert!(!refused.stdout.contains("Queued"), "{refused:?}");
    assert!(
        calls(&steward).is_empty(),
        "maintenance was entered: {:?}",
        calls(&steward)
    );
    assert_eq!(
        steward.cli(&["job", "cancel", &running_backup.to_string()]).code,
        Some(0)
    );
    steward.wait_for_state(running_backup, "cancelled");
    std::fs::remove_file(steward.path("slow-backup")).expect("flag");

    // A restore runs: a backup is refused, and so is leaving maintenance by hand.
    write(&steward, "slow-restore", "");
    let queued = steward.cli(&["restore", &backup, "--reason", "slow restore", "--yes"]);
    assert_eq!(queued.code, Some(0), "{queued:?}");
    let restore = queued_id(&queued.stdout);
    assert!(
        queued
            .stdout
            .contains(&format!("Queued restore #{restore} of backup {backup} into prod")),
        "{queued:?}"
    );
    steward.wait_for_log(restore, "restoring slowly");
    let _orphan = Orphan(read_pid(&steward.path("restore.pid")));
    let refused = steward.cli(&["backup", "create", "prod"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains(&format!("prod is busy: restore #{restore} started by cli at ")),
        "{refused:?}"
    );
    let refused = steward.cli(&["maintenance", "prod", "off", "--reason", "mid-restore"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains(&format!("prod is busy: restore #{restore} started by cli")),
        "{refused:?}"
    );

    // Stopped half-way, it stays in maintenance and says what brings it back.
    assert_eq!(steward.cli(&["job", "cancel", &restore.to_string()]).code, Some(0));
    let shown = steward.wait_for_state(restore, "cancelled");
    assert!(shown.stdout.contains("prod is still in maintenance."), "{shown:?}");
    assert_eq!(calls(&steward), ["enter"]);
}

#[test]
fn a_restore_is_confirmed_on_a_terminal_and_refused_without_one() {
    let steward = restorable(true);

    // Refusals before anything is looked up.
    let unknown = steward.cli(&["restore", "prod-20990101-0000-dead", "--reason", "typo", "--yes"]);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert_eq!(
        unknown.stderr.trim(),
        "steward: there is no backup \"prod-20990101-0000-dead\" (`steward backup list ENV` lists them)",
        "{unknown:?}"
    );
    let blank = steward.cli(&["restore", "prod-20990101-0000-dead", "--reason", " ", "--yes"]);
    assert_eq!(blank.code, Some(2), "{blank:?}");
    assert!(
        blank.stderr.contains("say why the environment is restored"),
        "{blank:?}"
    );
    let missing = steward.cli(&["restore", "prod-20990101-0000-dead", "--yes"]);
    assert_eq!(missing.code, Some(2), "{missing:?}");
    assert!(missing.stderr.contains("--reason"), "{missing:?}");

    let _serve = steward.serve();
    let backup = take_backup(&steward);
    write(&steward, "files/page.txt", "v2");
    write(&steward, "service-state.txt", "v2");

    // No terminal and no --yes: the preview, then a refusal saying what to do.
    let unasked = steward.cli(&["restore", &backup, "--reason", "from cron"]);
    assert_eq!(unasked.code, Some(1), "{unasked:?}");
    for expected in [
        format!("Restore prod (Production) to backup {backup}"),
        "resources:     files (directory), service (command)".to_string(),
        "prod is a PRODUCTION environment.".to_string(),
        "Everything that changed in prod since ".to_string(),
        "A safety backup of prod as it is now is taken first; prod is in maintenance meanwhile.".to_string(),
    ] {
        assert!(unasked.stdout.contains(&expected), "{expected:?} missing: {unasked:?}");
    }
    assert!(
        unasked.stderr.contains("standard input is not a terminal") && unasked.stderr.contains("--yes"),
        "{unasked:?}"
    );

    // On a terminal: a wrong name, then production not confirmed, are refused.
    let wrong = steward.on_terminal(&["restore", &backup, "--reason", "wrong name"], "staging\n");
    assert_eq!(wrong.code, Some(1), "{wrong:?}");
    assert!(
        wrong
            .stdout
            .contains("type the environment's name, prod, to confirm the restore"),
        "{wrong:?}"
    );
    let once = steward.on_terminal(&["restore", &backup, "--reason", "only once"], "prod\nno\n");
    assert_eq!(once.code, Some(1), "{once:?}");
    assert!(
        once.stdout
            .contains("prod is a production environment: confirm the restore a second time"),
        "{once:?}"
    );
    let jobs = steward.cli(&["job", "list", "--kind", "restore"]);
    assert_eq!(jobs.stdout.trim(), "No jobs.", "{jobs:?}");
    assert!(calls(&steward).is_empty(), "{:?}", calls(&steward));

    // Typed and confirmed: restored, followed to the end.
    let restored = steward.on_terminal(
        &["restore", &backup, "--reason", "the upgrade broke it", "--follow"],
        "prod\nyes\n",
    );
    assert_eq!(restored.code, Some(0), "{restored:?}");
    assert!(
        restored
            .stdout
            .contains("Type the environment's name, prod, to restore it:"),
        "{restored:?}"
    );
    assert!(
        restored
            .stdout
            .contains(&format!("prod is restored to backup {backup} and out of maintenance.")),
        "{restored:?}"
    );
    assert_eq!(read(&steward, "files/page.txt").as_deref(), Some("v1"));
    assert_eq!(read(&steward, "service-state.txt").as_deref(), Some("v1"));
    assert_eq!(calls(&steward), ["enter", r#"leave {"stopped":["web"]}"#]);
    // The safety backup holds what the restore replaced.
    let safety = safety_id(&restored.stdout);
    let shown = steward.cli(&["backup", "show", &safety]);
    assert!(shown.stdout.contains("pre-restore by cli"), "{shown:?}");
}

/// A maintenance switch is a job: `steward maintenance prod on` queues it and follows its log.
/// Its enter hook hangs (ignoring SIGTERM); SIGTERM to Steward ends it within the grace times
/// (shutdown 1 s, then the hook's SIGTERM and SIGKILL after 1 s), the job `interrupted`, the
/// hook's processes gone.
#[test]
fn sigterm_to_steward_stops_a_hanging_maintenance_hook_and_leaves_no_process() {
    let steward = Steward::new("");
    let dir = steward.dir.path().display().to_string();
    let hook = steward.path("enter.sh");
    std::fs::write(
        &hook,
        format!("echo $$ > '{dir}/enter.pid'\ntrap '' TERM\necho entering slowly\nsleep 600\n"),
    )
    .expect("hook");
    let config = std::fs::read_to_string(&steward.config).expect("config");
    let extra = format!(
        "[environments.maintenance]\nenter = {{ command = [\"sh\", {:?}] }}\n",
        hook.display().to_string()
    );
    std::fs::write(&steward.config, config + &extra).expect("config");

    let serve = steward.serve();
    let mut switching = steward.start(&["maintenance", "prod", "on", "--reason", "sigterm test"]);
    switching.wait_for_stdout("stdout entering slowly");
    let _orphan = Orphan(read_pid(&steward.path("enter.pid")));
    let hook_pid = read(&steward, "enter.pid").unwrap_or_default().trim().to_string();
    let id = queued_id(&switching.stdout());

    let took = serve.terminate().expect("Steward exits after SIGTERM");
    assert!(took < std::time::Duration::from_secs(1 + 1 + 2), "took {took:?}");
    assert!(gone(&hook_pid), "the hook still runs after Steward stopped");
    switching.kill();
    let shown = steward.cli(&["job", "show", &id.to_string()]);
    assert!(shown.stdout.contains("interrupted"), "{shown:?}");
    let mode = steward.cli(&["maintenance", "prod"]);
    assert!(mode.stdout.contains("prod is not in maintenance"), "{mode:?}");
}
