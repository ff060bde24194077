//! HTTP statuses that mean what they say, against a real server on port 0: every refusal of a
//! server function is a 4xx with its typed body (only an internal error is a 500), an oversized
//! body is a 413 before anything reads it, and `/` is a plain redirect that works without
//! JavaScript.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/steward_cli.rs"]
mod steward_cli;

use engine::{config::Action, users::Role};
use harness::*;
use serde_json::json;

/// Three megabytes of form data: above the 2 MiB limit.
fn three_megabytes() -> String {
    format!("environment=dev&description={}", "x".repeat(3 * 1024 * 1024))
}

/// A server whose `dev` has an exclusive action that never ends on its own (no workers run in
/// these tests, so a queued job holds the environment as long as the test needs).
async fn server() -> (Server, engine::testing::TestDb) {
    let test = sqlite().await;
    let mut config = config(&test.url);
    config.environments[0].actions.insert(
        "migrate".into(),
        Action {
            label: "Migrate".into(),
            command: vec!["sleep".into(), "60".into()],
            workdir: None,
            env: Default::default(),
            secret_env: Default::default(),
            timeout_seconds: 120,
            exclusive: true,
        },
    );
    let server = start(config).await;
    server.add_user("admin1", Role::Admin).await;
    server.add_user("operator1", Role::Operator).await;
    server.add_user("viewer1", Role::Viewer).await;
    (server, test)
}

#[tokio::test]
async fn each_refusal_has_its_own_status_and_typed_body() {
    let (server, _test) = server().await;
    let visitor = cookie_client();
    let viewer = server.client_for("viewer1").await;
    let operator = server.client_for("operator1").await;
    let admin = server.client_for("admin1").await;

    // Not signed in.
    let (status, body) = server.call(&visitor, "environments/list", &[]).await;
    assert_eq!((status, body), (401, json!("Unauthorized")));

    // A wrong password.
    let response = server.login(&cookie_client(), "operator1", "not the password").await;
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"SignInRefused": {"message": "Wrong username or password."}})
    );

    // A viewer starting a backup.
    let args = [("environment", "dev"), ("description", "")];
    let (status, body) = server.call(&viewer, "backups/start", &args).await;
    assert_eq!((status, body), (403, json!("Forbidden")));

    // An unknown backup.
    let (status, body) = server.call(&viewer, "backups/get", &[("id", "no-such-backup")]).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["NotFound"]["what"], "Backup \"no-such-backup\"");

    // A busy environment: the first job holds dev, the second is refused naming it.
    let args = [("environment", "dev"), ("action", "migrate"), ("reason", "")];
    let (status, first) = server.call(&operator, "jobs/start_command", &args).await;
    assert_eq!(status, 200, "{first}");
    let (status, body) = server.call(&operator, "jobs/start_command", &args).await;
    assert_eq!(status, 409, "{body}");
    let message = body["Conflict"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("is busy"), "{message}");

    // Invalid input: switching maintenance needs a reason.
    let args = [("environment", "dev"), ("on", "true"), ("reason", "")];
    let (status, body) = server.call(&admin, "maintenance/switch", &args).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["Invalid"]["field"], "reason");

    // Arguments the server cannot read at all.
    let (status, body) = server.call(&viewer, "jobs/get", &[("id", "not a number")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.get("Transport").is_some(), "{body}");
}

#[tokio::test]
async fn repeated_wrong_passwords_end_in_too_many_requests() {
    let (server, _test) = server().await;
    let client = cookie_client();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = server.login(&client, "viewer1", "not the password").await;
        let status = response.status().as_u16();
        statuses.push(status);
        if status == 429 {
            let body: serde_json::Value = response.json().await.unwrap();
            let message = body["TooManyAttempts"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("Too many failed sign-ins"), "{body}");
            break;
        }
    }
    // login.max_failures is 5: the fifth failure locks the username.
    assert_eq!(statuses, [401, 401, 401, 401, 429]);
}

#[tokio::test]
async fn an_oversized_body_is_413_whether_its_length_is_declared_or_not() {
    let (server, _test) = server().await;
    let operator = server.client_for("operator1").await;
    let url = format!("{}/api/backups/start", server.base);

    // Declared: refused before the body is read.
    let response = operator
        .post(&url)
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(three_megabytes())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, json!({"TooLarge": {"limit": "2 MiB"}}));

    // Chunked, without a length: refused once the limit is passed.
    let (status, _) = post_chunked(&server, "/api/backups/start", &three_megabytes()).await;
    assert_eq!(status, 413);

    // A plain form post from a browser gets the sentence, not JSON.
    let response = operator
        .post(&url)
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(three_megabytes())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.text().await.unwrap(),
        "The request is too large: Steward accepts at most 2 MiB."
    );

    // A body within the limit still reaches the server function, chunked or not (a visitor's
    // call: the server function ran and said "sign in").
    let (status, body) = server
        .call(
            &cookie_client(),
            "backups/start",
            &[("environment", "dev"), ("description", "fine")],
        )
        .await;
    assert_eq!((status, body), (401, json!("Unauthorized")));
    let (status, body) = post_chunked(&server, "/api/backups/start", "environment=dev&description=fine").await;
    assert_eq!(status, 401);
    assert!(body.ends_with("\"Unauthorized\""), "{body}");
}

/// POSTs `body` as one chunk of a chunked request (no length declared) over a plain TCP
/// connection, and returns the answer's status and body. The server may answer and close
/// before all of the body is sent; that is not an error here.
async fn post_chunked(server: &Server, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let host = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    let chunked = format!("{head}{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let _ = stream.write_all(chunked.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_string();
    (status, body)
}

#[tokio::test]
async fn a_plain_form_post_that_is_refused_still_goes_back_to_the_page_with_the_error() {
    let (server, _test) = server().await;
    let client = cookie_client();
    let referer = format!("{}/login", server.base);
    let response = client
        .post(format!("{}/api/auth/login", server.base))
        .header("accept", "text/html")
        .header("referer", &referer)
        .form(&[("username", "viewer1"), ("password", "not the password")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        302,
        "a browser without JavaScript follows the redirect"
    );
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{referer}?__path=")), "{location}");
    assert!(location.contains("&__err="), "{location}");

    // The page it lands on shows the refusal.
    let html = client.get(&location).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Wrong username or password."), "{html}");
}

#[tokio::test]
async fn the_root_redirects_to_the_environments_page_without_javascript() {
    let (server, _test) = server().await;
    let root = format!("{}/", server.base);

    let visitor = cookie_client();
    let response = visitor.get(&root).header("accept", "text/html").send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/environments");
    // A visitor then meets the usual sign-in redirect.
    let response = visitor
        .get(format!("{}/environments", server.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/login?next=/environments");

    // Whoever asks: a client that does not say it wants HTML gets the same redirects.
    let response = visitor.get(&root).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let response = visitor
        .get(format!("{}/environments", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "/login?next=/environments");

    // A signed-in browser that follows redirects lands on the Environments page.
    let following = reqwest::Client::builder().cookie_store(true).build().unwrap();
    server.login(&following, "viewer1", PASSWORD).await;
    let response = following.get(&root).header("accept", "text/html").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.url().path(), "/environments");
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<h1>Environments</h1>") || html.contains(">Environments<"),
        "{html}"
    );
}

/// Calls a server function with form arguments; returns the status.
async fn status_of(base: &str, client: &reqwest::Client, endpoint: &str, args: &[(&str, &str)]) -> u16 {
    let response = client
        .post(format!("{base}/api/{endpoint}"))
        .header("accept", "application/json")
        .form(args)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// What an operator's log shows: `steward serve` as a child process, its standard error read.
/// Every refusal of the acceptance list, then a hundred page loads the client gives up on half
/// way (a closed tab; the end of every load test): not one ERROR line, and each refusal logged
/// once, below ERROR.
#[test]
fn refusals_and_clients_that_leave_write_no_error_line() {
    let steward = steward_cli::Steward::new(
        r#"
[environments.actions.migrate]
label = "Migrate"
command = ["sleep", "60"]
"#,
    );
    let serve = steward.serve();
    let admin_password = serve.admin_password();
    let base = serve.base();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let refusals = runtime.block_on(async {
        let admin = cookie_client();
        let login = vec![("username", "admin"), ("password", admin_password.as_str())];
        assert_eq!(status_of(&base, &admin, "auth/login", &login).await, 200);
        let create = vec![("username", "vera"), ("role", "viewer"), ("password", PASSWORD)];
        assert_eq!(status_of(&base, &admin, "users/create", &create).await, 200);
        let viewer = cookie_client();
        let login = vec![("username", "vera"), ("password", PASSWORD)];
        assert_eq!(status_of(&base, &viewer, "auth/login", &login).await, 200);

        let wrong = vec![("username", "admin"), ("password", "not the password")];
        assert_eq!(status_of(&base, &cookie_client(), "auth/login", &wrong).await, 401);
        let backup = vec![("environment", "prod"), ("description", "")];
        assert_eq!(status_of(&base, &viewer, "backups/start", &backup).await, 403);
        assert_eq!(
            status_of(&base, &viewer, "backups/get", &[("id", "prod-nope")]).await,
            404
        );
        let migrate = vec![("environment", "prod"), ("action", "migrate"), ("reason", "")];
        assert_eq!(status_of(&base, &admin, "jobs/start_command", &migrate).await, 200);
        assert_eq!(status_of(&base, &admin, "jobs/start_command", &migrate).await, 409);
        let switch = vec![("environment", "prod"), ("on", "true"), ("reason", "")];
        assert_eq!(status_of(&base, &admin, "maintenance/switch", &switch).await, 422);
        let response = admin
            .post(format!("{base}/api/backups/start"))
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(three_megabytes())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);

        // Clients that leave in the middle of a page: each gives up after a few milliseconds.
        let pages = ["/environments/prod", "/environments/prod/backups", "/jobs", "/audit"];
        for i in 0..100u64 {
            let url = format!("{base}{}", pages[i as usize % pages.len()]);
            let _ = admin
                .get(url)
                .timeout(std::time::Duration::from_millis(1 + i % 15))
                .send()
                .await;
        }
        // The server is still well after them.
        let page = admin.get(format!("{base}/environments/prod")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        6
    });

    serve.0.wait_until("every refusal logged", |p| {
        p.stderr().matches("request refused").count() >= refusals
    });
    let log = serve.0.stderr();
    let errors: Vec<&str> = log.lines().filter(|line| line.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "ERROR lines in the log:\n{}", errors.join("\n"));
    let refused: Vec<&str> = log.lines().filter(|line| line.contains("request refused")).collect();
    assert_eq!(refused.len(), refusals, "one line per refusal:\n{}", refused.join("\n"));
    assert!(
        refused.iter().all(|line| line.contains(" INFO ")),
        "{}",
        refused.join("\n")
    );
}
