//! `steward run` and `steward job …` as an operator uses them: a real `steward serve` runs the
//! jobs, the CLI commands are separate processes on the same SQLite file, the actions are real
//! shell scripts. Includes the crash test: a Steward killed with SIGKILL under a running job
//! leaves it `interrupted` after a restart, and a retry runs it again as a new, linked job.

#[path = "support/steward_cli.rs"]
mod steward_cli;

use steward_cli::*;

#[test]
fn run_prints_the_log_and_exits_with_the_jobs_outcome() {
    let steward = Steward::new(&format!(
        "{}{}",
        action(
            "hello",
            "Say hello",
            "echo first line; echo to stderr >&2; echo last line"
        ),
        action("fail", "Fail", "echo trying; exit 3"),
    ));
    let _serve = steward.serve();

    let ok = steward.cli(&["run", "prod", "hello", "--reason", "smoke test"]);
    assert_eq!(ok.code, Some(0), "{ok:?}");
    assert!(ok.stdout.contains("Queued hello #"), "{ok:?}");
    for line in [
        "stdout first line",
        "stderr to stderr",
        "stdout last line",
        "Succeeded after",
    ] {
        assert!(ok.stdout.contains(line), "{line:?} missing: {ok:?}");
    }
    let first = ok.stdout.find("first line").unwrap_or_default();
    let last = ok.stdout.find("last line").unwrap_or_default();
    assert!(first < last, "lines out of order: {ok:?}");

    let failed = steward.cli(&["run", "prod", "fail"]);
    assert_eq!(failed.code, Some(1), "{failed:?}");
    assert!(failed.stdout.contains("stdout trying"), "{failed:?}");
    let id = queued_id(&failed.stdout);
    assert!(
        failed.stderr.contains(&format!("fail #{id} failed:")) && failed.stderr.contains("exited with status 3"),
        "{failed:?}"
    );

    let unknown = steward.cli(&["run", "prod", "nope"]);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("prod has no action \"nope\" (its actions: fail, hello)"),
        "{unknown:?}"
    );
    let no_env = steward.cli(&["run", "staging", "hello"]);
    assert_eq!(no_env.code, Some(1), "{no_env:?}");
    assert!(
        no_env.stderr.contains("there is no environment \"staging\""),
        "{no_env:?}"
    );

    let listed = steward.cli(&["job", "list", "--state", "failed"]);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    assert!(listed.stdout.contains(&format!("fail #{id}")), "{listed:?}");
    assert!(!listed.stdout.contains("hello #"), "{listed:?}");
}

#[test]
fn a_second_exclusive_job_is_refused_naming_the_running_one() {
    let steward = Steward::new(&format!(
        "{}{}",
        action("slow", "Sleep", "echo sleeping; sleep 600"),
        action("hello", "Say hello", "echo hello"),
    ));
    let _serve = steward.serve();
    let slow = steward.start(&["run", "prod", "slow"]);
    slow.wait_for_stdout("stdout sleeping");
    let id = queued_id(&slow.stdout());

    let refused = steward.cli(&["run", "prod", "hello"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains(&format!("prod is busy: slow #{id} started by cli at ")),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("try again when it ends"), "{refused:?}");
    assert!(!refused.stdout.contains("Queued"), "{refused:?}");
    assert_eq!(steward.state(id), "running");

    assert_eq!(steward.cli(&["job", "cancel", &id.to_string()]).code, Some(0));
    assert_eq!(slow.wait().code, Some(1));
}

#[test]
fn cancel_stops_a_running_job_and_says_who() {
    let steward = Steward::new(&action("slow", "Sleep", "echo sleeping; sleep 600"));
    let _serve = steward.serve();
    let slow = steward.start(&["run", "prod", "slow"]);
    slow.wait_for_stdout("stdout sleeping");
    let id = queued_id(&slow.stdout());

    let cancel = steward.cli(&["job", "cancel", &id.to_string()]);
    assert_eq!(cancel.code, Some(0), "{cancel:?}");
    assert!(
        cancel.stdout.contains(&format!("Asked slow #{id} to stop")),
        "{cancel:?}"
    );

    // The follower sees the end: the log line, and the job's error as its failure.
    let followed = slow.wait();
    assert_eq!(followed.code, Some(1), "{followed:?}");
    assert!(followed.stdout.contains("Cancelled by cli."), "{followed:?}");
    assert!(
        followed
            .stderr
            .contains(&format!("slow #{id} cancelled: Cancelled by cli.")),
        "{followed:?}"
    );

    let shown = steward.wait_for_state(id, "cancelled");
    assert_eq!(shown.field("cancel requested by"), "cli", "{shown:?}");
    let log = steward.cli(&["job", "log", &id.to_string()]);
    assert_eq!(log.code, Some(0), "{log:?}");
    assert!(log.stdout.contains("Cancelled by cli."), "{log:?}");

    let again = steward.cli(&["job", "cancel", &id.to_string()]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains("is cancelled"), "{again:?}");
    let missing = steward.cli(&["job", "show", "999"]);
    assert_eq!(missing.code, Some(1), "{missing:?}");
    assert!(missing.stderr.contains("there is no job #999"), "{missing:?}");
}

#[test]
fn run_says_so_when_no_worker_takes_the_job() {
    let steward = Steward::new(&action("hello", "Say hello", "echo hello"));
    // No `steward serve`: the job is queued and stays so.
    let waiting = steward.start(&["run", "prod", "hello"]);
    waiting.wait_for_stderr("still queued: is `steward serve` running with jobs.workers > 0?");
    let id = queued_id(&waiting.stdout());
    assert_eq!(steward.state(id), "queued");

    let cancel = steward.cli(&["job", "cancel", &id.to_string()]);
    assert_eq!(cancel.code, Some(0), "{cancel:?}");
    assert!(
        cancel
            .stdout
            .contains(&format!("Cancelled hello #{id} before it started.")),
        "{cancel:?}"
    );
    let followed = waiting.wait();
    assert_eq!(followed.code, Some(1), "{followed:?}");
    assert_eq!(
        followed.stderr.matches("still queued").count(),
        1,
        "the hint is given once: {followed:?}"
    );
    assert!(
        followed.stderr.contains(&format!("hello #{id} cancelled")),
        "{followed:?}"
    );
}

/// The acceptance criterion of the job queue: a Steward that dies under a running job does not
/// lose it or re-run it on its own; after the restart the job reads `interrupted`, and a retry
/// runs it again as a new job linked to the old one.
#[test]
fn a_job_cut_off_by_a_crash_is_interrupted_and_can_be_retried() {
    let steward = Steward::new("");
    let pid_file = steward.path("crash.pid");
    let mark = steward.path("crash.mark");
    let script = steward.path("crash.sh");
    std::fs::write(
        &script,
        format!(
            "if [ -f '{mark}' ]; then echo recovered; else echo $$ > '{pid}'; touch '{mark}'; echo started; sleep 600; fi\n",
            mark = mark.display(),
            pid = pid_file.display()
        ),
    )
    .expect("write script");
    let config = std::fs::read_to_string(&steward.config).expect("read config");
    let crash = format!(
        "[environments.actions.crash]\nlabel = \"Crash once\"\ncommand = [\"sh\", {:?}]\n",
        script.display().to_string()
    );
    std::fs::write(&steward.config, config + &crash).expect("write config");

    let first = steward.serve();
    let admin_password = first.admin_password();
    let mut follower = steward.start(&["run", "prod", "crash"]);
    follower.wait_for_stdout("stdout started");
    let id = queued_id(&follower.stdout());
    let _orphan = Orphan(read_pid(&pid_file));

    first.crash();
    // Its job stays `running` in the database until a Steward starts again: nothing to follow.
    follower.kill();

    let second = steward.serve();
    // What the crash left running was stopped by the restart: no second copy beside a retry.
    let orphan = std::fs::read_to_string(&pid_file).expect("pid file");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", orphan.trim())).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    assert!(
        matches!(state, None | Some("Z" | "X")),
        "the crashed job's script still runs: {stat}"
    );
    // The environment's page says so, in a banner, until someone retries or acknowledges it.
    let page = second.page_as_admin(&admin_password, "/environments/prod");
    assert!(page.contains("data-testid=\"interrupted-banner\""), "{page}");
    assert!(
        page.contains(&format!("crash #{id}")) && page.contains("was interrupted"),
        "{page}"
    );
    let shown = steward.cli(&["job", "show", &id.to_string()]);
    assert_eq!(shown.code, Some(0), "{shown:?}");
    assert_eq!(shown.field("state"), "interrupted", "{shown:?}");
    assert!(
        shown
            .field("error")
            .starts_with("Steward stopped while this job was running"),
        "{shown:?}"
    );
    assert!(shown.stdout.contains(&format!("steward job retry {id}")), "{shown:?}");

    let retried = steward.cli(&["job", "retry", &id.to_string()]);
    assert_eq!(retried.code, Some(0), "{retried:?}");
    let new_id = queued_id(&retried.stdout);
    assert_ne!(new_id, id);

    let followed = steward.cli(&["job", "log", &new_id.to_string(), "--follow"]);
    assert_eq!(followed.code, Some(0), "{followed:?}");
    assert!(followed.stdout.contains("stdout recovered"), "{followed:?}");

    let new = steward.cli(&["job", "show", &new_id.to_string()]);
    assert_eq!(new.field("state"), "succeeded", "{new:?}");
    assert_eq!(new.field("retry of"), format!("#{id}"), "{new:?}");
    assert_eq!(new.field("attempt"), "2", "{new:?}");
    let old = steward.cli(&["job", "show", &id.to_string()]);
    assert_eq!(old.field("state"), "interrupted", "{old:?}");
    assert_eq!(
        old.field("acknowledged by"),
        "cli",
        "a retry settles the old job: {old:?}"
    );
    let page = second.page_as_admin(&admin_password, "/environments/prod");
    assert!(
        !page.contains("interrupted-banner"),
        "the banner is gone after the retry: {page}"
    );
}
