//! Who may reach Steward and who may act: the IP allowlist, sign-in and sessions, and the role
//! of every server function — all over real HTTP against a server on port 0, on SQLite and
//! PostgreSQL.

#[path = "support/harness.rs"]
mod harness;

use engine::{Config, config::AccessConfig, testing::TestDb, users::Role};
use harness::*;

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// A config whose site root holds a real static asset, so refusals of assets are meaningful.
fn config_with_asset(url: &str, site: &std::path::Path, access: AccessConfig) -> Config {
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("pkg/steward.css"), "body{}").unwrap();
    let mut config = config(url);
    config.server.site_root = site.to_path_buf();
    config.access = access;
    config
}

/// Steward on SQLite with the given access rules.
async fn start_with(test: &TestDb, access: AccessConfig) -> Server {
    let mut config = config(&test.url);
    config.access = access;
    start(config).await
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

async fn audited_refusals(server: &Server) -> usize {
    engine::audit::recent(server.engine.db().pool(), None, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "access.refused")
        .count()
}

#[tokio::test]
async fn outside_the_allowlist_pages_server_functions_and_assets_are_403() {
    let test = sqlite().await;
    let site = tempfile::tempdir().unwrap();
    let access = AccessConfig {
        allow: nets(&["10.0.0.0/8"]),
        ..AccessConfig::default()
    };
    let server = start(config_with_asset(&test.url, site.path(), access)).await;
    let client = harness::plain_client();

    assert_eq!(status(client.get(format!("{}/environments", server.base))).await, 403);
    assert_eq!(
        status(client.post(format!("{}/api/auth/login", server.base))).await,
        403
    );
    assert_eq!(
        status(client.get(format!("{}/pkg/steward.css", server.base))).await,
        403
    );
    assert_eq!(status(client.get(format!("{}/healthz", server.base))).await, 403);
    let body = client
        .get(format!("{}/login", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "403 Forbidden\n", "a refusal gives no detail");
    assert_eq!(
        audited_refusals(&server).await,
        1,
        "refusals from one address are audited once per period"
    );
}

#[tokio::test]
async fn inside_the_allowlist_the_same_requests_pass() {
    let test = sqlite().await;
    let site = tempfile::tempdir().unwrap();
    let access = AccessConfig {
        allow: nets(&["127.0.0.1/32"]),
        ..AccessConfig::default()
    };
    let server = start(config_with_asset(&test.url, site.path(), access)).await;
    let client = harness::plain_client();
    assert_eq!(
        status(client.get(format!("{}/pkg/steward.css", server.base))).await,
        200
    );
    assert_eq!(status(client.get(format!("{}/login", server.base))).await, 200);
}

#[tokio::test]
async fn healthz_can_be_exempted() {
    let test = sqlite().await;
    let access = AccessConfig {
        allow: nets(&["10.0.0.0/8"]),
        healthz_exempt: true,
        ..AccessConfig::default()
    };
    let server = start_with(&test, access).await;
    let client = harness::plain_client();
    assert_eq!(status(client.get(format!("{}/healthz", server.base))).await, 200);
    assert_eq!(status(client.get(format!("{}/login", server.base))).await, 403);
}

#[tokio::test]
async fn a_spoofed_forwarded_header_from_an_untrusted_peer_does_not_help() {
    let test = sqlite().await;
    let server = start_with(
        &test,
        AccessConfig {
            allow: nets(&["10.1.2.3/32"]),
            ..AccessConfig::default()
        },
    )
    .await;
    let client = harness::plain_client();
    let url = format!("{}/login", server.base);
    assert_eq!(
        status(client.get(&url).header("x-forwarded-for", "10.1.2.3")).await,
        403
    );
    assert_eq!(status(client.get(&url).header("forwarded", "for=10.1.2.3")).await, 403);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_decides() {
    let test = sqlite().await;
    let access = AccessConfig {
        allow: nets(&["10.1.2.3/32"]),
        trusted_proxies: nets(&["127.0.0.0/8", "10.9.0.0/16"]),
        ..AccessConfig::default()
    };
    let server = start_with(&test, access).await;
    let client = harness::plain_client();
    let url = format!("{}/login", server.base);
    // The client wrote "6.6.6.6"; the proxies appended the real address and themselves.
    assert_eq!(
        status(
            client
                .get(&url)
                .header("x-forwarded-for", "6.6.6.6, 10.1.2.3, 10.9.0.1")
        )
        .await,
        200
    );
    // A client pretending to be 10.1.2.3 on the left is seen as what the proxy saw.
    assert_eq!(
        status(client.get(&url).header("x-forwarded-for", "10.1.2.3, 6.6.6.6")).await,
        403
    );
    assert_eq!(
        status(client.get(&url).header("forwarded", "for=6.6.6.6, for=10.1.2.3")).await,
        200
    );
    // No header: the proxy itself is the client, and it is not allowed.
    assert_eq!(status(client.get(&url)).await, 403);
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_username() {
    let test = sqlite().await;
    let server = start(config(&test.url)).await;
    server.add_user("alice", Role::Operator).await;
    let client = cookie_client();
    for _ in 0..4 {
        let body = server
            .login(&client, "alice", "wrong password")
            .await
            .text()
            .await
            .unwrap();
        assert!(body.contains("Wrong username or password."), "{body}");
    }
    let body = server
        .login(&client, "alice", "wrong password")
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("Too many failed sign-ins for this username"), "{body}");
    let body = server.login(&client, "alice", PASSWORD).await.text().await.unwrap();
    assert!(
        body.contains("Too many failed sign-ins"),
        "even the right password waits: {body}"
    );
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("steward_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

#[tokio::test]
async fn the_session_cookie_is_strict_and_its_id_changes_at_sign_in() {
    let test = sqlite().await;
    let server = start(config(&test.url)).await;
    server.add_user("alice", Role::Operator).await;
    let client = cookie_client();

    let first = server.login(&client, "alice", PASSWORD).await;
    let raw = first.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(raw.contains("HttpOnly") && raw.contains("SameSite=Strict"), "{raw}");
    let before = session_cookie(&first).unwrap();

    // Signing in again from a signed-in session issues a new id.
    let second = server.login(&client, "alice", PASSWORD).await;
    let after = session_cookie(&second).expect("a new cookie at sign-in");
    assert_ne!(before, after);

    // A session id planted by someone else is never adopted.
    let planted = "steward_session=AAAAAAAAAAAAAAAAAAAAAA";
    let fresh = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = fresh
        .post(format!("{}/api/auth/login", server.base))
        .header("cookie", planted)
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_ne!(session_cookie(&response).unwrap(), planted);
}

#[tokio::test]
async fn after_sign_out_the_old_cookie_is_worthless() {
    let test = sqlite().await;
    let server = start(config(&test.url)).await;
    server.add_user("root", Role::Admin).await;
    let client = cookie_client();
    let cookie = session_cookie(&server.login(&client, "root", PASSWORD).await).unwrap();
    assert_eq!(server.call(&client, "users/list", &[]).await.0, 200);

    server.call(&client, "auth/logout", &[]).await;

    let replay = harness::plain_client();
    let response = replay
        .post(format!("{}/api/users/list", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "\"Unauthorized\"");
    let actions: Vec<String> = engine::audit::recent(server.engine.db().pool(), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"logout".to_string()), "{actions:?}");
}

#[tokio::test]
async fn a_cross_site_post_is_refused() {
    let test = sqlite().await;
    let server = start(config(&test.url)).await;
    server.add_user("alice", Role::Operator).await;
    let client = harness::plain_client();
    let url = format!("{}/api/auth/login", server.base);
    let form = [("username", "alice"), ("password", PASSWORD)];
    let evil = client.post(&url).header("origin", "http://evil.example").form(&form);
    assert_eq!(status(evil).await, 403);
    let cross = client.post(&url).header("sec-fetch-site", "cross-site").form(&form);
    assert_eq!(status(cross).await, 403);
    let host = server.base.trim_start_matches("http://").to_string();
    let same = client.post(&url).header("origin", format!("http://{host}")).form(&form);
    assert_eq!(status(same).await, 200);
}

/// Every server function, with harmless arguments, and the least role that may call it
/// (`None`: anyone who passed the allowlist).
type Row = (&'static str, &'static [(&'static str, &'static str)], Option<Role>);

const MATRIX: &[Row] = &[
    ("auth/current_user", &[], None),
    ("auth/login", &[("username", "nobody"), ("password", "x")], None),
    ("auth/logout", &[], None),
    (
        "auth/change_own_password",
        &[
            ("current", "wrong"),
            ("new", "a new password!"),
            ("repeat", "a new password!"),
        ],
        Some(Role::Viewer),
    ),
    ("environments/list", &[], Some(Role::Viewer)),
    ("environments/get", &[("name", "dev")], Some(Role::Viewer)),
    ("audit/list", &[], Some(Role::Viewer)),
    ("users/list", &[], Some(Role::Admin)),
    (
        "users/create",
        &[("username", "CREATED"), ("role", "viewer")],
        Some(Role::Admin),
    ),
    (
        "users/set_role",
        &[("username", "target"), ("role", "viewer")],
        Some(Role::Admin),
    ),
    (
        "users/set_disabled",
        &[("username", "target"), ("disabled", "false")],
        Some(Role::Admin),
    ),
    ("users/reset_password", &[("username", "target")], Some(Role::Admin)),
    ("users/unlock", &[("username", "target")], Some(Role::Admin)),
    ("jobs/list", &[], Some(Role::Viewer)),
    ("jobs/get", &[("id", "999999")], Some(Role::Viewer)),
    (
        "jobs/environment_activity",
        &[("environment", "dev")],
        Some(Role::Viewer),
    ),
    (
        "jobs/start_command",
        &[("environment", "dev"), ("action", "no-such-action"), ("reason", "")],
        Some(Role::Operator),
    ),
    ("jobs/cancel", &[("id", "999999")], Some(Role::Operator)),
    ("jobs/retry", &[("id", "999999")], Some(Role::Operator)),
    ("jobs/acknowledge", &[("id", "999999")], Some(Role::Operator)),
    ("backups/list", &[("environment", "dev")], Some(Role::Viewer)),
    ("backups/get", &[("id", "no-such-backup")], Some(Role::Viewer)),
    ("backups/status", &[("environment", "dev")], Some(Role::Viewer)),
    ("backups/storage", &[("environment", "dev")], Some(Role::Viewer)),
    // dev has no resources: an allowed caller gets the refusal that says so, nothing runs.
    (
        "backups/start",
        &[("environment", "dev"), ("description", "")],
        Some(Role::Operator),
    ),
    ("restores/preview", &[("id", "no-such-backup")], Some(Role::Operator)),
    // No such backup: an allowed caller gets "not found", nothing is restored.
    (
        "restores/start",
        &[
            ("backup_id", "no-such-backup"),
            ("reason", "access test"),
            ("confirm_environment", "dev"),
        ],
        Some(Role::Operator),
    ),
    ("restores/undo", &[("id", "999999")], Some(Role::Operator)),
    ("restores/failed", &[("environment", "dev")], Some(Role::Viewer)),
    ("maintenance/get", &[("environment", "dev")], Some(Role::Viewer)),
    // Without a reason an allowed caller is refused before anything is switched.
    (
        "maintenance/switch",
        &[("environment", "dev"), ("on", "true"), ("reason", "")],
        Some(Role::Admin),
    ),
    ("environments/dashboard", &[], Some(Role::Viewer)),
    ("schedules/list", &[("environment", "dev")], Some(Role::Viewer)),
    // dev has no schedules: an allowed caller is told so, nothing changes or runs.
    (
        "schedules/pause",
        &[
            ("environment", "dev"),
            ("name", "nightly"),
            ("pause", "true"),
            ("reason", "x"),
        ],
        Some(Role::Admin),
    ),
    (
        "schedules/run",
        &[("environment", "dev"), ("name", "nightly")],
        Some(Role::Admin),
    ),
    ("retention/preview", &[("environment", "dev")], Some(Role::Viewer)),
    // dev has no retention rules: an allowed caller is told there is nothing to apply.
    ("retention/apply", &[("environment", "dev")], Some(Role::Admin)),
    (
        "backups/pin",
        &[("id", "no-such-backup"), ("reason", "x")],
        Some(Role::Operator),
    ),
    (
        "backups/unpin",
        &[("id", "no-such-backup"), ("reason", "x")],
        Some(Role::Admin),
    ),
    ("notifications/settings", &[], Some(Role::Admin)),
    ("notifications/list", &[], Some(Role::Admin)),
    ("notifications/recent", &[("environment", "dev")], Some(Role::Viewer)),
    // No targets are configured here: an allowed caller is told the target does not exist.
    ("notifications/test", &[("target", "no-such-target")], Some(Role::Admin)),
];

async fn role_matrix(test: TestDb) {
    let server = start(config(&test.url)).await;
    for (name, role) in [
        ("admin1", Role::Admin),
        ("operator1", Role::Operator),
        ("viewer1", Role::Viewer),
    ] {
        server.add_user(name, role).await;
    }
    server.add_user("target", Role::Viewer).await;

    // The matrix names every server function the server has, and nothing else.
    let mut registered: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _method)| path.trim_start_matches("/api/").to_string())
        .collect();
    registered.sort();
    let mut listed: Vec<String> = MATRIX.iter().map(|(endpoint, _, _)| endpoint.to_string()).collect();
    listed.sort();
    assert_eq!(
        registered, listed,
        "every server function needs a row in the role matrix"
    );

    for caller in [None, Some(Role::Viewer), Some(Role::Operator), Some(Role::Admin)] {
        for (endpoint, args, required) in MATRIX {
            // A fresh session per call: logout must not end the next call's session.
            let client = match caller {
                None => cookie_client(),
                Some(role) => server.client_for(&format!("{}1", role.as_str())).await,
            };
            let unique = format!("u{}", uuid::Uuid::new_v4().simple());
            let args: Vec<(&str, &str)> = args
                .iter()
                .map(|&(k, v)| (k, if v == "CREATED" { unique.as_str() } else { v }))
                .collect();
            let (status, body) = server.call(&client, endpoint, &args).await;
            let allowed = match (required, caller) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(required), Some(role)) => role.allows(*required),
            };
            let refusal = match caller {
                None => (401, serde_json::json!("Unauthorized")),
                Some(_) => (403, serde_json::json!("Forbidden")),
            };
            if allowed {
                assert!(
                    body != serde_json::json!("Forbidden") && body != serde_json::json!("Unauthorized"),
                    "{caller:?} must be allowed {endpoint}: {status} {body}"
                );
                // Harmless arguments: an answer or a refusal that names the problem, never a 500.
                assert!(status < 500, "{caller:?} calling {endpoint}: {status} {body}");
            } else {
                assert_eq!((status, body), refusal, "{caller:?} must be refused {endpoint}");
            }
        }
    }
}

#[tokio::test]
async fn role_matrix_on_sqlite() {
    role_matrix(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn role_matrix_on_postgres() {
    if let Some(test) = TestDb::postgres().await {
        role_matrix(test).await;
    }
}

#[tokio::test]
async fn sign_in_and_sessions_work_on_postgres() {
    let Some(test) = TestDb::postgres().await else { return };
    let server = start(config(&test.url)).await;
    server.add_user("root", Role::Admin).await;
    let client = server.client_for("root").await;
    let (status, body) = server.call(&client, "auth/current_user", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["username"], "root");
    server.call(&client, "auth/logout", &[]).await;
    assert_eq!(
        server.call(&client, "auth/current_user", &[]).await.1,
        serde_json::Value::Null
    );
}
