//! The audit log as a reviewer uses it: the filtered page and its streamed exports over HTTP,
//! on SQLite and PostgreSQL; and `steward audit verify` as a real child process naming what
//! was done to the database by hand (three separate runs: changed, removed, inserted).

#[path = "support/harness.rs"]
mod harness;
#[path = "support/steward_cli.rs"]
mod steward_cli;

use engine::{
    Db,
    audit::{self, NewEvent, Outcome},
    testing::TestDb,
    users::Role,
};
use harness::{Server, config, plain_client, start};
use serde_json::json;
use steward_cli::Steward;

async fn seed(server: &Server) {
    let events = [
        ("alice", "login", "alice", Outcome::Ok, json!({})),
        (
            "bob",
            "restore.request",
            "prod-1",
            Outcome::Refused,
            json!({"environment": "prod", "reason": "busy, comma"}),
        ),
        (
            "alice",
            "restore.start",
            "12",
            Outcome::Ok,
            json!({"environment": "prod"}),
        ),
        (
            "alice",
            "restore.finish",
            "12",
            Outcome::Failed,
            json!({"environment": "prod", "error": "smoke check \"home\" failed"}),
        ),
        (
            "carol",
            "backup.pin",
            "dev-3",
            Outcome::Ok,
            json!({"environment": "dev"}),
        ),
    ];
    for (actor, action, target, outcome, detail) in events {
        let event = NewEvent {
            actor: Some(actor),
            client_ip: Some("10.1.2.3"),
            action,
            target: Some(target),
            outcome,
            detail,
            environment: None,
        };
        audit::record(server.engine.db().pool(), &event).await.unwrap();
    }
}

async fn review_and_export(test: TestDb) {
    let server = start(config(&test.url)).await;
    server.add_user("vera", Role::Viewer).await;
    seed(&server).await;
    let vera = server.client_for("vera").await;

    // The page's server function: a family and an environment, newest first.
    let (status, page) = server
        .call(
            &vera,
            "audit/list",
            &[("query[action]", "restore.*"), ("query[environment]", "prod")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let actions: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["restore.finish", "restore.start", "restore.request"]);
    assert_eq!(page["chain"], serde_json::Value::Null, "never verified yet");
    let (status, refused) = server.call(&vera, "audit/list", &[("query[from]", "yesterday")]).await;
    assert_eq!(status, 422, "{refused}");

    server.engine.verify_audit_chain("cli").await.unwrap();
    let (_, page) = server.call(&vera, "audit/list", &[]).await;
    assert_eq!(page["chain"]["ok"], true, "{page}");
    assert_eq!(
        page["events"].as_array().unwrap().len(),
        7,
        "five events, vera's creation and sign-in"
    );

    // CSV of alice's events: a header, oldest first, quoting done right.
    let csv_url = format!("{}/api/audit/export.csv?actor=alice&environment=prod", server.base);
    let response = vera.get(&csv_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("steward-audit-")
    );
    let body = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "id",
            "time_utc",
            "actor",
            "client_ip",
            "action",
            "target",
            "environment",
            "outcome",
            "detail"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{body}");
    assert_eq!(&rows[0][4], "restore.start");
    assert_eq!(&rows[1][7], "failed");
    let detail: serde_json::Value = serde_json::from_str(&rows[1][8]).unwrap();
    assert_eq!(detail["error"], "smoke check \"home\" failed");

    // JSON Lines of a text search.
    let jsonl = vera
        .get(format!("{}/api/audit/export.jsonl?q=COMMA", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{jsonl}");
    assert_eq!(lines[0]["action"], "restore.request");
    assert_eq!(lines[0]["detail"]["reason"], "busy, comma");

    // Refusals: nobody signed in, a date that is not one.
    let anonymous = plain_client().get(&csv_url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let bad = vera
        .get(format!("{}/api/audit/export.csv?to=31.12.2026", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("not a date"));

    // The exports are in the log themselves, with their filter.
    let filter = audit::Filter {
        action: Some("audit.export".into()),
        ..audit::Filter::default()
    };
    let exports = audit::filter::page(server.engine.db(), &filter, None, 10)
        .await
        .unwrap()
        .events;
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[1].actor.as_deref(), Some("vera"));
    assert_eq!(exports[1].detail["filter"], "actor=alice&environment=prod");
    let (report, _) = server.engine.verify_audit_chain("cli").await.unwrap();
    assert_eq!(report.problem, None);
    test.cleanup().await;
}

#[tokio::test]
async fn the_log_is_filtered_and_exported_on_sqlite() {
    review_and_export(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn the_log_is_filtered_and_exported_on_postgres() {
    if let Some(test) = TestDb::postgres().await {
        review_and_export(test).await;
    }
}

/// A Steward with ten events recorded the normal way (`steward user add`), then `sql` run on its
/// database with the append-only triggers dropped, as someone with the database file could.
async fn tampered(sql: &str) -> Steward {
    let steward = Steward::new("");
    for n in 0..5 {
        let name = format!("user{n}");
        let added = steward.with_input(
            &["user", "add", &name, "--role", "viewer", "--password-stdin"],
            "a long enough password\n",
        );
        assert_eq!(added.code, Some(0), "{}", added.stderr);
        let ended = steward.cli(&["user", "disable", &name]);
        assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    }
    let untouched = steward.cli(&["audit", "verify"]);
    assert_eq!(untouched.code, Some(0), "{}", untouched.stderr);
    assert!(untouched.stdout.contains("holds: 10 events"), "{}", untouched.stdout);
    assert!(
        untouched.stdout.contains("Head: event 10, hash "),
        "{}",
        untouched.stdout
    );

    let db = Db::connect(&format!("sqlite://{}", steward.path("state/steward.db").display()), 1)
        .await
        .unwrap();
    for statement in [
        "DROP TRIGGER audit_event_no_update",
        "DROP TRIGGER audit_event_no_delete",
        sql,
    ] {
        sqlx::query(statement).execute(db.pool()).await.unwrap();
    }
    db.close().await;
    steward
}

#[tokio::test]
async fn verify_names_a_changed_event() {
    let steward = tampered(r#"UPDATE audit_event SET detail = '{"role":"admin"}' WHERE id = 4"#).await;
    let ended = steward.cli(&["audit", "verify"]);
    assert_eq!(ended.code, Some(1));
    assert!(ended.stderr.contains("event 4 was changed"), "{}", ended.stderr);
    assert!(ended.stdout.contains("first 3 events"), "{}", ended.stdout);
}

#[tokio::test]
async fn verify_names_a_removed_event() {
    let steward = tampered("DELETE FROM audit_event WHERE id = 6").await;
    let ended = steward.cli(&["audit", "verify"]);
    assert_eq!(ended.code, Some(1));
    assert!(ended.stderr.contains("event 6 was removed"), "{}", ended.stderr);
}

#[tokio::test]
async fn verify_names_an_inserted_event() {
    let steward = tampered(
        "INSERT INTO audit_event (id, at, actor, action, target, outcome, detail)
         VALUES (7000, 1790000000000, 'mallory', 'user.role', 'mallory', 'ok', '{}')",
    )
    .await;
    let ended = steward.cli(&["audit", "verify"]);
    assert_eq!(ended.code, Some(1));
    assert!(
        ended.stderr.contains("event 7000 was inserted outside Steward"),
        "{}",
        ended.stderr
    );
}
