//! A real S3 server for tests: `moto_server` (PyPI's `moto[server]`, installed in
//! `.tools/python` by scripts/setup.sh) on a free loopback port, with one empty bucket.
//!
//! A real server rather than a mock of ours, so the repository's S3 backend is tested against
//! request signing, listing pages, ranges and error answers as an S3 store gives them. moto
//! accepts any credentials; each [`S3Server`] is a process of its own, killed when the value is
//! dropped, so a failing test leaves no server behind and tests never share a bucket.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::repository::s3::S3Location;

/// Credentials moto accepts (it accepts any); not secrets.
pub const ACCESS_KEY_ID: &str = "steward-test-key";
pub const SECRET_ACCESS_KEY: &str = "steward-test-secret";
pub const REGION: &str = "us-east-1";
const BUCKET: &str = "steward-test";
/// moto imports much of boto on start: a few seconds on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `moto_server` with the bucket [`S3Server::bucket`] created.
pub struct S3Server {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// Starts `.tools/python/bin/moto_server` (or `$STEWARD_TEST_MOTO`), waits until it
    /// answers and creates the bucket. Panics, saying what to run, when moto is missing.
    pub async fn start() -> S3Server {
        let moto = moto_server();
        let setup = "run scripts/setup.sh (it installs moto[server] in .tools/python), or point STEWARD_TEST_MOTO at a moto_server";
        if !moto.is_file() {
            panic!("{} does not exist: {setup}", moto.display());
        }

        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join("moto.log");
        let port = free_port();
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("moto's log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{} cannot be started ({e}): {setup}", moto.display()));
        let mut server = S3Server {
            child,
            port,
            log,
            _dir: dir,
        };

        let client = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // GET / lists the buckets: moto answers it once it serves S3.
            match client.get(server.endpoint()).send().await {
                Ok(response) if response.status().is_success() => break,
                _ => {}
            }
            if let Some(status) = server.child.try_wait().expect("moto_server's status") {
                panic!("moto_server exited ({status}): {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within {} s: {}",
                START_TIMEOUT.as_secs(),
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // CreateBucket is a plain PUT: moto needs no signature.
        let response = client
            .put(format!("{}/{BUCKET}", server.endpoint()))
            .send()
            .await
            .expect("PUT to moto_server");
        assert!(
            response.status().is_success(),
            "moto_server did not create bucket {BUCKET}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        server
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// The repository at `prefix` in the bucket, with credentials moto accepts.
    pub fn location(&self, prefix: &str) -> S3Location {
        S3Location {
            endpoint: self.endpoint(),
            bucket: BUCKET.to_string(),
            region: REGION.to_string(),
            prefix: prefix.to_string(),
            access_key_id: ACCESS_KEY_ID.to_string(),
            secret_access_key: SECRET_ACCESS_KEY.to_string(),
        }
    }

    /// moto's request log so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `$STEWARD_TEST_MOTO`, or `.tools/python/bin/moto_server` in the repository's root.
fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("STEWARD_TEST_MOTO") {
        return PathBuf::from(path);
    }
    // engine/ is one level below the root.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join(".tools/python/bin/moto_server")
}

/// A port nothing listens on (bound, then let go).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}
