//! The HTTP server on a real port: pages, server functions and /healthz, on SQLite and
//! PostgreSQL.

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use engine::{testing::TestDb, users::Role};
use harness::*;

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.expect("request");
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_environments_page_is_rendered_complete_on_the_server() {
    let test = sqlite().await;
    let server = start(config(&test.url)).await;
    server.add_user("vera", Role::Viewer).await;
    let client = server.client_for("vera").await;

    let (status, html) = get(&client, &format!("{}/environments", server.base)).await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>Environments · Steward</title>"), "{html}");
    assert!(html.contains("Development") && html.contains("Production"));
    assert!(html.contains("2 environments"));
    assert!(
        !html.contains("Loading"),
        "the page must not wait for JavaScript to show data"
    );

    let (_, filtered) = get(&client, &format!("{}/environments?q=prod", server.base)).await;
    assert!(filtered.contains("1 of 2 environments"), "{filtered}");
    assert!(
        filtered.contains(r#"value="prod""#),
        "the filter box keeps what was typed"
    );
}

#[tokio::test]
async fn a_visitor_is_sent_to_the_sign_in_page() {
    let test = sqlite().await;
    let server = start(config(&test.url)).await;
    let response = cookie_client()
        .get(format!("{}/environments?q=x", server.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    assert_eq!(response.headers()["location"], "/login?next=/environments%3Fq%3Dx");
    let (status, html) = get(&cookie_client(), &format!("{}/login", server.base)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Sign in to Steward"));
}

#[tokio::test]
async fn an_unknown_environment_or_path_is_a_404_page() {
    let test = sqlite().await;
    let server = start(config(&test.url)).await;
    server.add_user("vera", Role::Viewer).await;
    let client = server.client_for("vera").await;

    let (status, html) = get(&client, &format!("{}/environments/nope", server.base)).await;
    assert_eq!(status, 404);
    assert!(html.contains(r#"Environment "nope" not found."#), "{html}");

    let (status, html) = get(&client, &format!("{}/no/such/page", server.base)).await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found"));
}

#[tokio::test]
async fn the_server_function_answers_json_with_a_stable_path() {
    let test = sqlite().await;
    let server = start(config(&test.url)).await;
    server.add_user("vera", Role::Viewer).await;
    let client = server.client_for("vera").await;

    let (status, list) = server.call(&client, "environments/list", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(list[1]["name"], "prod");
    assert_eq!(list[1]["production"], true);

    let (status, body) = server.call(&client, "environments/get", &[("name", "nope")]).await;
    assert_eq!(status, 404, "a refusal has its own status, with a typed body");
    assert_eq!(body, serde_json::json!({"NotFound": {"what": "Environment \"nope\""}}));
}

#[tokio::test]
async fn healthz_is_503_once_the_sqlite_file_is_gone() {
    let test = sqlite().await;
    let server = start(config(&test.url)).await;
    let client = harness::plain_client();
    assert_eq!(
        get(&client, &format!("{}/healthz", server.base)).await,
        (200, "ok\n".to_string())
    );

    let file = test.sqlite_file().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let (status, body) = get(&client, &format!("{}/healthz", server.base)).await;
    assert_eq!(status, 503);
    assert_eq!(body, "database unavailable\n");
}

#[tokio::test]
async fn healthz_is_503_once_the_postgres_database_is_gone() {
    // A database of its own, so that dropping it disturbs no other test.
    let Some(admin) = TestDb::postgres().await else { return };
    let name = format!("steward_hz_{}", uuid::Uuid::new_v4().simple());
    execute(&admin, &format!("CREATE DATABASE {name}")).await;
    let base_url = engine::testing::postgres_base_url();
    let (server_part, _db) = base_url.rsplit_once('/').expect("a PostgreSQL URL names a database");
    let url = format!("{server_part}/{name}");

    let server = start(config(&url)).await;
    let client = harness::plain_client();
    assert_eq!(get(&client, &format!("{}/healthz", server.base)).await.0, 200);

    execute(&admin, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
    assert_eq!(get(&client, &format!("{}/healthz", server.base)).await.0, 503);
    admin.cleanup().await;
}

async fn execute(test: &TestDb, sql: &str) {
    let statement = sqlx::raw_sql(sql).execute(test.db.pool());
    tokio::time::timeout(Duration::from_secs(20), statement)
        .await
        .expect("statement timed out")
        .expect(sql);
}
