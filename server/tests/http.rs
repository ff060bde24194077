//! The HTTP server on a real port: pages, server functions and /healthz, on SQLite and
//! PostgreSQL.

use std::{net::SocketAddr, time::Duration};

use engine::{
    Config, Engine,
    config::{DatabaseConfig, Environment},
    testing::{TestDb, postgres_base_url},
};
use tokio::net::TcpListener;

fn environment(name: &str, label: &str, colour: &str, production: bool) -> Environment {
    Environment {
        name: name.into(),
        label: label.into(),
        colour: colour.into(),
        production,
    }
}

fn config(database_url: String) -> Config {
    Config {
        database: DatabaseConfig {
            url: Some(database_url),
            max_connections: 4,
        },
        environments: vec![
            environment("dev", "Development", "#2e7d32", false),
            environment("prod", "Production", "#c62828", true),
        ],
        ..Config::default()
    }
}

/// Starts Steward on 127.0.0.1:0 and returns its base URL. The server stops with the runtime.
async fn start(config: Config) -> (String, Engine) {
    let engine = Engine::open(config).await.expect("open engine");
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = server::http::router(engine.clone());
    tokio::spawn(server::http::serve(listener, router, std::future::pending()));
    (base, engine)
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("request");
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_environments_page_is_rendered_complete_on_the_server() {
    let test = TestDb::sqlite().await;
    let (base, _) = start(config(test.url.clone())).await;

    let (status, html) = get(&format!("{base}/environments")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>Environments · Steward</title>"), "{html}");
    assert!(html.contains("Development") && html.contains("Production"));
    assert!(html.contains("2 environments"));
    assert!(
        !html.contains("Loading"),
        "the page must not wait for JavaScript to show data"
    );

    let (_, filtered) = get(&format!("{base}/environments?q=prod")).await;
    assert!(filtered.contains("1 of 2 environments"), "{filtered}");
    assert!(
        filtered.contains(r#"value="prod""#),
        "the filter box keeps what was typed"
    );
}

#[tokio::test]
async fn an_unknown_environment_or_path_is_a_404_page() {
    let test = TestDb::sqlite().await;
    let (base, _) = start(config(test.url.clone())).await;

    let (status, html) = get(&format!("{base}/environments/nope")).await;
    assert_eq!(status, 404);
    assert!(html.contains(r#"Environment "nope" not found."#), "{html}");

    let (status, html) = get(&format!("{base}/no/such/page")).await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found"));
}

#[tokio::test]
async fn the_server_function_answers_json_with_a_stable_path() {
    let test = TestDb::sqlite().await;
    let (base, _) = start(config(test.url.clone())).await;

    let list: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/environments/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[1]["name"], "prod");
    assert_eq!(list[1]["production"], true);

    let response = reqwest::Client::new()
        .post(format!("{base}/api/environments/get"))
        .form(&[("name", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        500,
        "server function errors use 500 with a typed body"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"NotFound": {"what": "Environment \"nope\""}}));
}

#[tokio::test]
async fn healthz_is_503_once_the_sqlite_file_is_gone() {
    let test = TestDb::sqlite().await;
    let (base, _) = start(config(test.url.clone())).await;
    assert_eq!(get(&format!("{base}/healthz")).await, (200, "ok\n".to_string()));

    let file = test.sqlite_file().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let (status, body) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 503);
    assert_eq!(body, "database unavailable\n");
}

#[tokio::test]
async fn healthz_is_503_once_the_postgres_database_is_gone() {
    // A database of its own, so that dropping it disturbs no other test.
    let Some(admin) = TestDb::postgres().await else { return };
    let name = format!("steward_hz_{}", uuid::Uuid::new_v4().simple());
    sqlx_execute(&admin, &format!("CREATE DATABASE {name}")).await;
    let base_url = postgres_base_url();
    let url = match base_url.rsplit_once('/') {
        Some((server, _db)) => format!("{server}/{name}"),
        None => panic!("unexpected PostgreSQL URL {base_url}"),
    };

    let (base, _) = start(config(url)).await;
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);

    sqlx_execute(&admin, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
    let (status, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 503);
    admin.cleanup().await;
}

async fn sqlx_execute(test: &TestDb, sql: &str) {
    let statement = sqlx::raw_sql(sql).execute(test.db.pool());
    tokio::time::timeout(Duration::from_secs(20), statement)
        .await
        .expect("statement timed out")
        .expect(sql);
}
