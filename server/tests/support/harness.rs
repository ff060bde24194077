//! A real Steward on 127.0.0.1:0 for HTTP tests, on SQLite or PostgreSQL.

#![allow(dead_code)]

use std::net::SocketAddr;

use engine::{
    Config, Engine,
    accounts::Actor,
    config::{AccessConfig, DatabaseConfig, Environment},
    testing::TestDb,
    users::Role,
};
use tokio::net::TcpListener;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn environment(name: &str, label: &str, colour: &str, production: bool) -> Environment {
    Environment {
        name: name.into(),
        label: label.into(),
        colour: colour.into(),
        production,
        actions: Default::default(),
        resources: Default::default(),
        facts: Default::default(),
        backup_expected_within_hours: None,
        maintenance: Default::default(),
        smoke_checks: Default::default(),
        ..Default::default()
    }
}

pub fn config(database_url: &str) -> Config {
    Config {
        database: DatabaseConfig {
            url: Some(database_url.to_string()),
            max_connections: 4,
        },
        access: AccessConfig {
            allow: vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()],
            ..AccessConfig::default()
        },
        environments: vec![
            environment("dev", "Development", "#2e7d32", false),
            environment("prod", "Production", "#c62828", true),
        ],
        ..Config::default()
    }
}

pub struct Server {
    pub base: String,
    pub engine: Engine,
}

/// Starts Steward with `config` on `bind` (port 0) and returns its base URL.
pub async fn start_on(config: Config, bind: SocketAddr) -> Server {
    let engine = Engine::open(config).await.expect("open engine");
    let listener = TcpListener::bind(bind).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let router = server::http::router(engine.clone()).await.expect("router");
    tokio::spawn(server::http::serve(listener, router, std::future::pending()));
    Server { base, engine }
}

pub async fn start(config: Config) -> Server {
    start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

impl Server {
    pub async fn add_user(&self, name: &str, role: Role) {
        self.engine
            .create_user(&Actor::cli(), name, PASSWORD, role)
            .await
            .expect("create user");
    }

    /// A client with its own cookie jar, signed in as `name`.
    pub async fn client_for(&self, name: &str) -> reqwest::Client {
        let client = cookie_client();
        let response = self.login(&client, name, PASSWORD).await;
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "login of {name} failed"
        );
        client
    }

    pub async fn login(&self, client: &reqwest::Client, name: &str, password: &str) -> reqwest::Response {
        client
            .post(format!("{}/api/auth/login", self.base))
            .header("accept", "application/json")
            .form(&[("username", name), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    /// Calls a server function with form arguments; returns the status and the JSON body.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        endpoint: &str,
        args: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let response = client
            .post(format!("{}/api/{endpoint}", self.base))
            .header("accept", "application/json")
            .form(args)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }
}

/// Every request gets an answer within 30 s or fails the test: a hang must not look like a
/// slow test.
pub fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A SQLite test database; keep the value alive for the test's duration.
pub async fn sqlite() -> TestDb {
    TestDb::sqlite().await
}

/// A client without cookies, with the same 30 s answer limit.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}
