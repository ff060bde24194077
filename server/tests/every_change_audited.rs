//! Every server function that changes something writes an audit event — proven against a real
//! `steward serve` with real resources, by calling each one so that it succeeds and reading the
//! events it wrote. The list of server functions comes from the registry: a new one that is in
//! neither list below fails this test until someone decides what it audits.

#[path = "support/steward_cli.rs"]
mod steward_cli;

use std::time::{Duration, Instant};

use engine::Db;
use serde_json::Value;
use steward_cli::*;

/// Server functions that only read.
const READ_ONLY: &[&str] = &[
    "audit/list",
    "auth/current_user",
    "backups/get",
    "backups/list",
    "backups/status",
    "backups/storage",
    "environments/dashboard",
    "environments/get",
    "environments/list",
    "jobs/environment_activity",
    "jobs/get",
    "jobs/list",
    "maintenance/get",
    "notifications/list",
    "notifications/recent",
    "notifications/settings",
    "restores/failed",
    "restores/preview",
    "retention/preview",
    "schedules/list",
    "users/list",
];

struct Console {
    base: String,
    client: reqwest::Client,
    db: Db,
    called: Vec<String>,
}

impl Console {
    /// Calls `endpoint` (which must succeed) and returns its answer and the actions it audited.
    async fn change(&mut self, endpoint: &str, args: &[(&str, &str)]) -> (Value, Vec<String>) {
        let before = self.newest().await;
        let response = self
            .client
            .post(format!("{}/api/{endpoint}", self.base))
            .header("accept", "application/json")
            .form(args)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{endpoint}: {status} {text}");
        let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_event WHERE id > $1 ORDER BY id")
            .bind(before)
            .fetch_all(self.db.pool())
            .await
            .unwrap();
        assert!(
            !actions.is_empty(),
            "{endpoint} changed something and wrote no audit event"
        );
        self.called.push(endpoint.to_string());
        (serde_json::from_str(&text).unwrap_or(Value::Null), actions)
    }

    async fn newest(&self) -> i64 {
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM audit_event")
            .fetch_one(self.db.pool())
            .await
            .unwrap()
            .unwrap_or(0)
    }

    /// Waits until job `id` has ended; returns its state.
    async fn finished(&self, id: i64) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let state: String = sqlx::query_scalar("SELECT state FROM job WHERE id = $1")
                .bind(id)
                .fetch_one(self.db.pool())
                .await
                .unwrap();
            if !matches!(state.as_str(), "queued" | "running") {
                return state;
            }
            assert!(Instant::now() < deadline, "job {id} still {state}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn job_id(answer: &Value) -> i64 {
    answer["id"].as_i64().unwrap_or_else(|| panic!("no job in {answer}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_made_through_the_console_is_audited() {
    let steward = shop("");
    let flag = steward.path("smoke-fails").display().to_string();
    let extra = format!(
        r#"
[environments.actions.hello]
label = "Hello"
command = ["sh", "-c", "echo hello"]
[environments.actions.slow]
label = "Slow"
command = ["sh", "-c", "sleep 30"]
exclusive = false
[environments.actions.broken]
label = "Broken"
command = ["sh", "-c", "exit 3"]
exclusive = false
[environments.smoke_checks]
home = {{ command = ["sh", "-c", "test ! -e {flag}"] }}
[environments.schedules.nightly]
what = "backup"
cron = "0 2 * * *"
[environments.retention]
keep_last = 5
[notifications.targets.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
"#
    );
    let config = std::fs::read_to_string(&steward.config).unwrap();
    std::fs::write(&steward.config, config + &extra).unwrap();
    let serve = steward.serve();
    let password = serve.admin_password();
    let base = serve.base();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let db = Db::connect(&format!("sqlite://{}", steward.path("state/steward.db").display()), 1)
        .await
        .unwrap();
    let mut console = Console {
        base: base.clone(),
        client,
        db,
        called: Vec::new(),
    };

    let (_, actions) = console
        .change("auth/login", &[("username", "admin"), ("password", &password)])
        .await;
    assert_eq!(actions, ["login"]);
    let (_, actions) = console
        .change("users/create", &[("username", "bob"), ("role", "operator")])
        .await;
    assert_eq!(actions, ["user.create"]);
    let (_, actions) = console
        .change("users/set_role", &[("username", "bob"), ("role", "viewer")])
        .await;
    assert_eq!(actions, ["user.role"]);
    let (_, actions) = console.change("users/reset_password", &[("username", "bob")]).await;
    assert_eq!(actions, ["user.password.reset"]);
    let (_, actions) = console
        .change("users/set_disabled", &[("username", "bob"), ("disabled", "true")])
        .await;
    assert_eq!(actions, ["user.disable"]);
    let (_, actions) = console.change("users/unlock", &[("username", "bob")]).await;
    assert_eq!(actions, ["user.unlock"]);

    // Jobs: started, cancelled, retried, acknowledged.
    let (job, actions) = console
        .change(
            "jobs/start_command",
            &[("environment", "prod"), ("action", "hello"), ("reason", "")],
        )
        .await;
    assert_eq!(actions.first().map(String::as_str), Some("job.request"), "{actions:?}");
    assert_eq!(console.finished(job_id(&job)).await, "succeeded");
    let (slow, _) = console
        .change(
            "jobs/start_command",
            &[("environment", "prod"), ("action", "slow"), ("reason", "")],
        )
        .await;
    let (_, actions) = console
        .change("jobs/cancel", &[("id", &job_id(&slow).to_string())])
        .await;
    assert!(actions.contains(&"job.cancel".to_string()), "{actions:?}");
    console.finished(job_id(&slow)).await;
    let (retried, actions) = console
        .change("jobs/retry", &[("id", &job_id(&slow).to_string())])
        .await;
    assert_eq!(actions.first().map(String::as_str), Some("job.retry"), "{actions:?}");
    console
        .change("jobs/cancel", &[("id", &job_id(&retried).to_string())])
        .await;
    console.finished(job_id(&retried)).await;
    let (broken, _) = console
        .change(
            "jobs/start_command",
            &[("environment", "prod"), ("action", "broken"), ("reason", "")],
        )
        .await;
    assert_eq!(console.finished(job_id(&broken)).await, "failed");
    let (_, actions) = console
        .change("jobs/acknowledge", &[("id", &job_id(&broken).to_string())])
        .await;
    assert_eq!(actions, ["job.acknowledge"]);

    // A backup, pinned and unpinned.
    let (job, actions) = console
        .change("backups/start", &[("environment", "prod"), ("description", "audited")])
        .await;
    assert_eq!(actions.first().map(String::as_str), Some("job.request"), "{actions:?}");
    assert_eq!(console.finished(job_id(&job)).await, "succeeded");
    let backup: String = sqlx::query_scalar("SELECT id FROM backup ORDER BY created_at DESC LIMIT 1")
        .fetch_one(console.db.pool())
        .await
        .unwrap();
    let (_, actions) = console
        .change("backups/pin", &[("id", &backup), ("reason", "keep")])
        .await;
    assert_eq!(actions, ["backup.pin"]);
    let (_, actions) = console
        .change("backups/unpin", &[("id", &backup), ("reason", "done")])
        .await;
    assert_eq!(actions, ["backup.unpin"]);

    // Maintenance by hand, schedules, retention, a notification test.
    let (job, actions) = console
        .change(
            "maintenance/switch",
            &[("environment", "prod"), ("on", "true"), ("reason", "release")],
        )
        .await;
    assert_eq!(actions.first().map(String::as_str), Some("job.request"), "{actions:?}");
    console.finished(job_id(&job)).await;
    let (job, _) = console
        .change(
            "maintenance/switch",
            &[("environment", "prod"), ("on", "false"), ("reason", "done")],
        )
        .await;
    console.finished(job_id(&job)).await;
    let (_, actions) = console
        .change(
            "schedules/pause",
            &[
                ("environment", "prod"),
                ("name", "nightly"),
                ("pause", "true"),
                ("reason", "freeze"),
            ],
        )
        .await;
    assert_eq!(actions, ["schedule.pause"]);
    let (job, actions) = console
        .change("schedules/run", &[("environment", "prod"), ("name", "nightly")])
        .await;
    assert!(actions.contains(&"schedule.run".to_string()), "{actions:?}");
    console.finished(job_id(&job)).await;
    let (job, actions) = console.change("retention/apply", &[("environment", "prod")]).await;
    assert_eq!(actions.first().map(String::as_str), Some("job.request"), "{actions:?}");
    console.finished(job_id(&job)).await;
    let (_, actions) = console.change("notifications/test", &[("target", "hook")]).await;
    assert_eq!(actions, ["notification.test"]);

    // A restore that fails its smoke check, and its undo.
    std::fs::write(&flag, "").unwrap();
    let (restore, actions) = console
        .change(
            "restores/start",
            &[
                ("backup_id", &backup),
                ("reason", "audit test"),
                ("confirm_environment", "prod"),
            ],
        )
        .await;
    assert_eq!(actions.first().map(String::as_str), Some("job.request"), "{actions:?}");
    assert_eq!(console.finished(job_id(&restore)).await, "failed");
    std::fs::remove_file(&flag).unwrap();
    let (undo, actions) = console
        .change(
            "restores/undo",
            &[("id", &job_id(&restore).to_string()), ("reason", "back")],
        )
        .await;
    assert!(actions.contains(&"restore.undo".to_string()), "{actions:?}");
    console.finished(job_id(&undo)).await;

    // The account's own: a new password, then signing out.
    let new = "another long password";
    let (_, actions) = console
        .change(
            "auth/change_own_password",
            &[("current", &password), ("new", new), ("repeat", new)],
        )
        .await;
    assert_eq!(actions, ["user.password.change"]);
    let (_, actions) = console.change("auth/logout", &[]).await;
    assert_eq!(actions, ["logout"]);

    // Every registered server function is either read-only or was called above.
    // The registry fills when the app's code is linked into this test binary.
    std::hint::black_box(server::http::router as fn(_) -> _);
    let registered: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.trim_start_matches("/api/").to_string())
        .collect();
    assert!(registered.len() > 40, "the registry is not filled: {registered:?}");
    let mut unclassified: Vec<String> = registered
        .into_iter()
        .filter(|name| !READ_ONLY.contains(&name.as_str()) && !console.called.contains(name))
        .collect();
    unclassified.sort();
    unclassified.dedup();
    assert!(
        unclassified.is_empty(),
        "server functions neither read-only nor shown to write an audit event: {unclassified:?}"
    );

    let report = engine::audit::chain::verify(&console.db).await.unwrap();
    assert_eq!(report.problem, None);
    console.db.close().await;
    drop(serve);
}

/// Each CLI command that changes Steward's state, and the action it audits. `run` and every
/// command that queues a job (backup create, restore, verify, maintenance on|off, prune, schedule
/// run) write `job.request` through the same engine call as the console (tested above and in
/// the CLI tests of jobs, backups and restores).
const CLI_CHANGES: &[(&str, &str)] = &[
    ("user add", "user.create"),
    ("user passwd", "user.password.reset"),
    ("user disable", "user.disable"),
    ("user enable", "user.enable"),
    ("user unlock", "user.unlock"),
    ("run", "job.request"),
    ("job cancel", "job.cancel"),
    ("job retry", "job.retry"),
    ("job acknowledge", "job.acknowledge"),
    ("backup create", "job.request"),
    ("backup verify", "job.request"),
    ("backup test-restore", "job.request"),
    ("backup pin", "backup.pin"),
    ("backup unpin", "backup.unpin"),
    ("backup reindex", "backup.reindex"),
    ("backup export", "backup.export"),
    ("backup import", "backup.import"),
    ("restore", "job.request"),
    ("verify", "job.request"),
    ("maintenance", "job.request"),
    ("schedule pause", "schedule.pause"),
    ("schedule resume", "schedule.resume"),
    ("schedule run", "schedule.run"),
    ("prune", "job.request"),
    ("notify test", "notification.test"),
];

/// CLI commands that change nothing an audit log is about: they read, or (`migrate`, `serve`,
/// `demo init`, `audit verify`) touch only the schema, the process or sample files — `audit
/// verify` keeps its result in `audit_verification`, not as an event.
const CLI_READ_ONLY: &[&str] = &[
    "serve",
    "migrate",
    "config check",
    "user list",
    "job list",
    "job show",
    "job log",
    "backup list",
    "backup show",
    "schedule list",
    "retention preview",
    "notify history",
    "storage usage",
    "storage check",
    "audit verify",
    "demo init",
];

fn leaves(command: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    let subcommands: Vec<&clap::Command> = command.get_subcommands().filter(|c| c.get_name() != "help").collect();
    if subcommands.is_empty() {
        out.push(prefix.trim().to_string());
    }
    for sub in subcommands {
        leaves(sub, &format!("{prefix} {}", sub.get_name()), out);
    }
}

#[test]
fn every_cli_command_is_classified() {
    use clap::CommandFactory;
    let mut all = Vec::new();
    leaves(&server::cli::Cli::command(), "", &mut all);
    let unclassified: Vec<&String> = all
        .iter()
        .filter(|c| !CLI_READ_ONLY.contains(&c.as_str()) && !CLI_CHANGES.iter().any(|(name, _)| name == c))
        .collect();
    assert!(
        unclassified.is_empty(),
        "CLI commands neither read-only nor listed with the action they audit: {unclassified:?}"
    );
}

#[test]
fn cli_changes_made_without_a_server_are_audited() {
    let steward = Steward::new(
        "[environments.schedules.nightly]\nwhat = \"action:hello\"\ncron = \"0 2 * * *\"\n[environments.actions.hello]\nlabel = \"Hello\"\ncommand = [\"true\"]\n",
    );
    let actions = |steward: &Steward| -> Vec<String> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let db = Db::connect(&format!("sqlite://{}", steward.path("state/steward.db").display()), 1)
                .await
                .unwrap();
            let actions = sqlx::query_scalar("SELECT action FROM audit_event WHERE actor = 'cli' ORDER BY id")
                .fetch_all(db.pool())
                .await
                .unwrap();
            db.close().await;
            actions
        })
    };
    let with_password = |args: &[&str]| {
        let ended = steward.with_input(args, "a long enough password\n");
        assert_eq!(ended.code, Some(0), "{args:?}: {}", ended.stderr);
    };
    with_password(&["user", "add", "carol", "--role", "viewer", "--password-stdin"]);
    with_password(&["user", "passwd", "carol", "--password-stdin"]);
    for args in [
        &["user", "disable", "carol"][..],
        &["user", "enable", "carol"],
        &["schedule", "pause", "prod/nightly", "--reason", "freeze"],
        &["schedule", "resume", "prod/nightly", "--reason", "thaw"],
    ] {
        let ended = steward.cli(args);
        assert_eq!(ended.code, Some(0), "{args:?}: {}", ended.stderr);
    }
    let expected: Vec<&str> = [
        "user add",
        "user passwd",
        "user disable",
        "user enable",
        "schedule pause",
        "schedule resume",
    ]
    .iter()
    .map(|command| CLI_CHANGES.iter().find(|(name, _)| name == command).unwrap().1)
    .collect();
    assert_eq!(actions(&steward), expected);
}
