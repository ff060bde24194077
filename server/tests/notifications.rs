//! Notifications as they survive real crashes: `steward serve` killed with SIGKILL while a
//! notification waits for its target delivers it once after the restart, and a scheduled backup
//! whose slot passed while Steward was down is told after the restart (and so is its recovery).
//! The targets are real HTTP servers on port 0 (engine's test receiver).

#[path = "support/steward_cli.rs"]
mod steward_cli;

use std::time::{Duration, Instant};

use engine::testing::Receiver;
use steward_cli::*;

/// `[notifications]` with one webhook target, retried after 1 s.
fn notifications(receiver: &Receiver) -> String {
    format!(
        r#"
[notifications]
retry_seconds = 1
timeout_seconds = 2
[notifications.targets.hook]
type = "webhook"
url = "{}"
"#,
        receiver.url
    )
}

async fn wait(what: &str, seconds: u64, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_pending_when_steward_is_killed_is_delivered_once_after_the_restart() {
    let receiver = Receiver::start().await;
    // The target is down until the restart.
    receiver.fail_next(usize::MAX);
    let steward = Steward::new(&format!(
        r#"
[environments.actions.broken]
label = "Broken"
command = ["sh", "-c", "echo 'cannot reach the mail queue' >&2; exit 2"]
{}"#,
        notifications(&receiver)
    ));
    let serve = steward.serve();
    let run = steward.cli(&["run", "prod", "broken"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    wait("a first attempt", 20, || !receiver.received().is_empty()).await;
    serve.crash();
    let attempts_before = receiver.received().len();

    receiver.fail_next(0);
    let serve = steward.serve();
    wait("the delivery after the restart", 40, || !receiver.accepted().is_empty()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1, "delivered once: {accepted:?}");
    assert_eq!(accepted[0]["kind"], "job_failed");
    let detail = accepted[0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("cannot reach the mail queue"), "{detail}");

    let history = steward.cli(&["notify", "history"]);
    assert_eq!(history.code, Some(0), "{history:?}");
    assert!(history.stdout.contains("prod: broken #1 failed"), "{history:?}");
    let attempts = attempts_before + 1;
    assert!(
        history
            .stdout
            .contains(&format!("hook             delivered {attempts} attempts")),
        "every attempt is counted: {history:?}"
    );
    let failed_only = steward.cli(&["notify", "history", "--failed"]);
    assert!(failed_only.stdout.contains("No notifications."), "{failed_only:?}");
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_backup_missed_while_steward_was_down_is_told_after_the_restart() {
    let receiver = Receiver::start().await;
    let steward = Steward::new(&format!(
        r#"
[environments.resources.files]
driver = "directory"
path = "files"
[environments.schedules.often]
what = "backup"
cron = "*/5 * * * * *"
{}"#,
        notifications(&receiver)
    ));
    std::fs::create_dir_all(steward.path("files")).expect("files");
    std::fs::write(steward.path("files/a.txt"), "a").expect("a file");
    let serve = steward.serve();
    // A first scheduled backup ran: the schedule is known and working.
    wait("a scheduled backup", 30, || {
        steward.cli(&["backup", "list", "prod"]).stdout.contains("scheduled")
    })
    .await;
    serve.crash();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(receiver.accepted().is_empty(), "{:?}", receiver.accepted());

    let serve = steward.serve();
    wait("the missed slot and the recovery", 40, || {
        receiver.accepted().len() >= 2
    })
    .await;
    let accepted = receiver.accepted();
    assert_eq!(accepted[0]["kind"], "backup_missed", "{accepted:?}");
    let summary = accepted[0]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("prod: the scheduled backup often missed"),
        "{summary}"
    );
    assert!(summary.contains("while Steward was not running"), "{summary}");
    assert_eq!(accepted[1]["kind"], "recovered", "{accepted:?}");
    let recovered = accepted[1]["summary"].as_str().unwrap_or_default();
    assert!(recovered.starts_with("prod: a backup succeeded again"), "{recovered}");
    // The next scheduled backups are no news.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(receiver.accepted().len(), 2, "{:?}", receiver.accepted());
    drop(serve);
}

#[test]
fn config_check_lists_the_targets_and_names_a_secret_it_cannot_read() {
    let steward = Steward::new(
        r#"
[notifications.targets.team-chat]
type = "slack"
url = { env = "STEWARD_TEST_UNSET_SLACK_URL" }
[notifications.targets.ops-hook]
type = "webhook"
url = "https://hooks.example.com/in?token=abc"
"#,
    );
    let checked = steward.cli(&["config", "check"]);
    assert_eq!(checked.code, Some(1), "{checked:?}");
    assert!(checked.stdout.contains("notifications: 2 target(s)"), "{checked:?}");
    assert!(
        checked
            .stdout
            .contains("ops-hook     POST https://hooks.example.com/in"),
        "{checked:?}"
    );
    assert!(!checked.stdout.contains("token=abc"), "{checked:?}");
    assert!(
        checked.stderr.contains(
            "problem: notifications.targets.team-chat.url: the environment variable STEWARD_TEST_UNSET_SLACK_URL is not set"
        ),
        "{checked:?}"
    );
}
