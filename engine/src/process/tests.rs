use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::*;
use crate::jobs::log::JobLog;

fn program(script: &str) -> Program {
    Program {
        command: vec!["sh".into(), "-c".into(), script.into()],
        workdir: None,
        env: Vec::new(),
        timeout: Duration::from_secs(30),
        grace: Duration::from_millis(500),
        stdin: None,
    }
}

/// Collects every line the program writes, concurrently with it.
fn collector() -> (JobLog, tokio::task::JoinHandle<Vec<(Level, String)>>) {
    let (log, mut receiver): (JobLog, mpsc::Receiver<(Level, String)>) = JobLog::channel();
    let lines = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(line) = receiver.recv().await {
            lines.push(line);
        }
        lines
    });
    (log, lines)
}

async fn run_collecting(program: &Program, stop: &CancellationToken) -> (Ended, Vec<(Level, String)>) {
    let (log, lines) = collector();
    let ended = run(program, &log, stop).await.expect("the program starts");
    drop(log);
    (ended, lines.await.unwrap())
}

/// Processes of a group that are still alive, by the group id the script wrote down.
fn survivors(pid_file: &std::path::Path) -> usize {
    let pgid: i32 = std::fs::read_to_string(pid_file).unwrap().trim().parse().unwrap();
    live_members(Pid::from_raw(pgid))
}

#[tokio::test]
async fn output_is_streamed_line_by_line_with_its_stream() {
    let (ended, lines) = run_collecting(
        &program("echo one; echo two >&2; printf 'no newline'"),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(ended, Ended::Succeeded);
    assert!(lines.contains(&(Level::Stdout, "one".into())), "{lines:?}");
    assert!(lines.contains(&(Level::Stderr, "two".into())), "{lines:?}");
    assert!(lines.contains(&(Level::Stdout, "no newline".into())), "{lines:?}");
}

#[tokio::test]
async fn a_failing_program_says_how_it_ended() {
    let (ended, _) = run_collecting(&program("exit 3"), &CancellationToken::new()).await;
    assert_eq!(ended, Ended::Failed("exited with status 3".into()));
    let (ended, _) = run_collecting(&program("kill -9 $$"), &CancellationToken::new()).await;
    assert_eq!(ended, Ended::Failed("was killed by signal SIGKILL".into()));
}

#[tokio::test]
async fn a_missing_program_is_an_error_to_start() {
    let (log, _lines) = collector();
    let missing = Program {
        command: vec!["/nonexistent/backup.sh".into()],
        ..program("")
    };
    assert!(run(&missing, &log, &CancellationToken::new()).await.is_err());
}

#[tokio::test]
async fn the_environment_is_clean_apart_from_what_is_given() {
    // SAFETY: a variable name no other test reads.
    unsafe { std::env::set_var("STEWARD_PROCESS_TEST_LEAK", "must-not-pass") };
    let mut with_env = program("env");
    with_env.env = vec![("GIVEN".into(), "yes".into())];
    let (_, lines) = run_collecting(&with_env, &CancellationToken::new()).await;
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert!(text.contains(&"GIVEN=yes"), "{text:?}");
    assert!(text.iter().any(|l| l.starts_with("PATH=")), "{text:?}");
    assert!(!text.iter().any(|l| l.contains("must-not-pass")), "{text:?}");
}

#[tokio::test]
async fn a_timeout_stops_the_program() {
    let mut slow = program("echo started; sleep 30");
    slow.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let (ended, lines) = run_collecting(&slow, &CancellationToken::new()).await;
    assert_eq!(ended, Ended::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(lines.contains(&(Level::Stdout, "started".into())));
}

#[tokio::test]
async fn cancel_leaves_no_process_of_the_group_alive() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pgid");
    // The script (group leader) starts a grandchild and both sleep for ten minutes.
    let script = format!(
        "echo $$ > {}; sh -c 'sleep 600' & echo started; sleep 600",
        pid_file.display()
    );
    let stop = CancellationToken::new();
    let canceller = {
        let stop = stop.clone();
        let pid_file = pid_file.clone();
        tokio::spawn(async move {
            while !pid_file.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(survivors(&pid_file) >= 3, "leader, grandchild shell and sleeps run");
            stop.cancel();
        })
    };
    let started = Instant::now();
    let (ended, _) = run_collecting(&program(&script), &stop).await;
    canceller.await.unwrap();
    assert_eq!(ended, Ended::Stopped);
    assert_eq!(survivors(&pid_file), 0, "no process of the group survives");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_program_ignoring_sigterm_gets_sigkill_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pgid");
    let script = format!("trap '' TERM; echo $$ > {}; sleep 600 & sleep 600", pid_file.display());
    let mut stubborn = program(&script);
    stubborn.timeout = Duration::from_millis(300);
    let (ended, lines) = run_collecting(&stubborn, &CancellationToken::new()).await;
    assert_eq!(ended, Ended::TimedOut);
    assert_eq!(survivors(&pid_file), 0);
    assert!(
        lines
            .iter()
            .any(|(level, l)| *level == Level::Warn && l.contains("SIGKILL")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn processes_left_behind_by_a_finished_program_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pgid");
    let script = format!("echo $$ > {}; sleep 600 & echo done", pid_file.display());
    let (ended, lines) = run_collecting(&program(&script), &CancellationToken::new()).await;
    assert_eq!(ended, Ended::Succeeded);
    assert_eq!(survivors(&pid_file), 0);
    assert!(lines.iter().any(|(level, _)| *level == Level::Warn), "{lines:?}");
}

#[tokio::test]
async fn a_hundred_thousand_lines_all_arrive_in_order() {
    let (ended, lines) = run_collecting(&program("seq 1 100000"), &CancellationToken::new()).await;
    assert_eq!(ended, Ended::Succeeded);
    assert_eq!(lines.len(), 100_000);
    assert_eq!(lines[0].1, "1");
    assert_eq!(lines[99_999].1, "100000");
}

#[tokio::test]
async fn very_long_lines_are_split_not_lost() {
    let (_, lines) = run_collecting(
        &program("head -c 20000 /dev/zero | tr '\\0' x; echo"),
        &CancellationToken::new(),
    )
    .await;
    let total: usize = lines.iter().map(|(_, l)| l.len()).sum();
    assert_eq!(total, 20_000);
    assert!(lines.iter().all(|(_, l)| l.len() <= MAX_LINE_BYTES));
}

#[tokio::test]
async fn leftovers_of_a_crashed_job_are_found_by_their_environment() {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "sleep 600 & sleep 600"])
        .env("STEWARD_WORKER", "w-leftover-test")
        .env("STEWARD_JOB_ID", "77")
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        kill_job_leftovers("w-leftover-test", 78),
        0,
        "another job's processes are left alone"
    );
    assert_eq!(
        kill_job_leftovers("w-leftover-test", 77),
        3,
        "the shell and both sleeps"
    );
    let status = child.wait().unwrap();
    assert!(!status.success());
}
