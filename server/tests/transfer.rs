//! A backup moved between two instances through the console, as operators and admins do it:
//! Download on one `steward serve` (separate database, separate repository), Upload on the
//! other, the import job, a restore there with the data equal; the role checks, a tampered file
//! refused whole, a file past the upload limit refused with nothing left behind.

#[path = "support/steward_cli.rs"]
mod steward_cli;

use std::{
    collections::BTreeMap,
    io::Write,
    path::Path,
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};
use steward_cli::*;

const PASSWORD: &str = "a long enough password";

/// Adds user `name` with `role` through the CLI.
fn add_user(steward: &Steward, name: &str, role: &str) {
    let mut command = steward.command(&["user", "add", name, "--role", role, "--password-stdin"]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("steward user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("type the password");
    let out = child.wait_with_output().expect("user add ends");
    assert!(out.status.success(), "{out:?}");
}

/// A client signed in as `name` (no redirects followed: the test reads them).
async fn signed_in(base: &str, name: &str) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let login = client
        .post(format!("{base}/api/auth/login"))
        .header("accept", "application/json")
        .form(&[("username", name), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert!(login.status().is_success(), "{name} cannot sign in: {}", login.status());
    client
}

/// A `multipart/form-data` body with `environment` (when given) and `file`.
fn form(environment: Option<&str>, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "steward-test-boundary-7d1f";
    let mut body = Vec::new();
    if let Some(environment) = environment {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"environment\"\r\n\r\n{environment}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/x-tar\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    client: &reqwest::Client,
    base: &str,
    accept: &str,
    environment: Option<&str>,
    bytes: &[u8],
) -> reqwest::Response {
    let (content_type, body) = form(environment, "steward-export.tar", bytes);
    client
        .post(format!("{base}/api/backups/import"))
        .header("content-type", content_type)
        .header("accept", accept)
        .header("origin", base)
        .body(body)
        .send()
        .await
        .expect("upload")
}

/// Every file under `root` (relative path → contents).
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("below root").display().to_string();
                found.insert(rel, std::fs::read(&path).expect("read file"));
            }
        }
    }
    found
}

/// The entries of a tar (name → bytes).
fn tar_entries(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(bytes);
    let mut entries = BTreeMap::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        let name = entry.path().expect("a name").display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).expect("read entry");
        entries.insert(name, data);
    }
    entries
}

/// Waits until job `id` has finished; its final state.
fn finished(steward: &Steward, id: u32) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let state = steward.state(id);
        if ["succeeded", "failed", "cancelled", "interrupted"].contains(&state.as_str()) {
            return state;
        }
        assert!(Instant::now() < deadline, "job #{id} still {state} after {TIMEOUT:?}");
        thread::sleep(POLL);
    }
}

fn job_of(location: &str) -> u32 {
    location
        .strip_prefix("/jobs/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a job page: {location}"))
}

#[test]
fn a_backup_moves_between_instances_through_the_console() {
    let here = shop("");
    let there = shop("[storage]\nupload_limit_mib = 1\n");
    for steward in [&here, &there] {
        add_user(steward, "ada", "admin");
        add_user(steward, "olga", "operator");
        add_user(steward, "vera", "viewer");
    }
    let (serve_here, serve_there) = (here.serve(), there.serve());
    let (base_here, base_there) = (serve_here.base(), serve_there.base());
    let created = here.cli(&["backup", "create", "prod", "--description", "to move", "--follow"]);
    assert_eq!(created.code, Some(0), "{created:?}");
    let id = completed_id(&created.stdout);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // Download: operators; a viewer and a stranger are refused, an unknown id is 404.
        let url = format!("{base_here}/api/backups/{id}/export.tar");
        let stranger = reqwest::Client::new().get(&url).send().await.expect("get");
        assert_eq!(stranger.status(), 401);
        let vera = signed_in(&base_here, "vera").await;
        assert_eq!(vera.get(&url).send().await.expect("get").status(), 403);
        let olga = signed_in(&base_here, "olga").await;
        let missing = olga
            .get(format!("{base_here}/api/backups/prod-20200101-0000-0000/export.tar"))
            .send()
            .await
            .expect("get");
        assert_eq!(missing.status(), 404);
        let downloaded = olga.get(&url).send().await.expect("download");
        assert_eq!(downloaded.status(), 200);
        assert_eq!(
            downloaded.headers()["content-disposition"],
            format!("attachment; filename=\"steward-{id}.tar\"").as_str()
        );
        let export = downloaded.bytes().await.expect("the whole file").to_vec();

        // The file is plain: a tar with the manifest and each artifact its checksum says.
        let entries = tar_entries(&export);
        let manifest: serde_json::Value =
            serde_json::from_slice(&entries[&format!("{id}/manifest.json")]).expect("manifest JSON");
        let artifacts = manifest["artifacts"].as_array().expect("artifacts");
        assert_eq!(artifacts.len(), 2, "{manifest}");
        for artifact in artifacts {
            let name = format!("{id}/{}", artifact["file"].as_str().expect("file"));
            let data = entries
                .get(&name)
                .unwrap_or_else(|| panic!("{name} in {:?}", entries.keys()));
            assert_eq!(
                hex(&Sha256::digest(data)),
                artifact["sha256"].as_str().expect("sha256"),
                "{name}"
            );
        }
        assert!(
            entries.contains_key(&format!("{id}/site/files.tar.zst")),
            "{:?}",
            entries.keys()
        );
        let audit = olga
            .post(format!("{base_here}/api/audit/list"))
            .header("accept", "application/json")
            .form(&Vec::<(String, String)>::new())
            .send()
            .await
            .expect("audit")
            .text()
            .await
            .expect("audit body");
        assert!(
            audit.contains("backup.export") && audit.contains("olga") && audit.contains(&id),
            "{audit}"
        );

        // Upload: admins only.
        let olga_there = signed_in(&base_there, "olga").await;
        let refused = upload(&olga_there, &base_there, "application/json", Some("prod"), &export).await;
        assert_eq!(refused.status(), 403);
        let ada = signed_in(&base_there, "ada").await;

        // Past the limit (1 MiB here): 413, the reason, and nothing left under the data dir.
        let big = vec![7u8; 3 << 20];
        let too_large = upload(&ada, &base_there, "application/json", Some("prod"), &big).await;
        assert_eq!(too_large.status(), 413);
        assert!(
            too_large
                .text()
                .await
                .expect("body")
                .contains("larger than the 1.0 MiB"),
            "the reason is given"
        );
        let uploads = there.path("state/uploads");
        let left: Vec<_> = std::fs::read_dir(&uploads)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "an upload refused leaves nothing behind: {left:?}");

        // No environment named: 422; an unknown one sends a browser back with the reason.
        let nameless = upload(&ada, &base_there, "application/json", None, &export).await;
        assert_eq!(nameless.status(), 422);

        // Tampered (one byte of the site's archive changed): the job fails, nothing imported.
        let mut tampered = export.clone();
        let at = data_position(&export, &format!("{id}/site/files.tar.zst"));
        tampered[at] ^= 0xff;
        let sent = upload(&ada, &base_there, "text/html", Some("prod"), &tampered).await;
        assert_eq!(sent.status(), 303);
        let job = job_of(sent.headers()["location"].to_str().expect("location"));
        assert_eq!(finished(&there, job), "failed");
        let log = there.cli(&["job", "log", &job.to_string()]).stdout;
        assert!(log.contains("does not match its manifest"), "{log}");
        // Its upload is gone: a retry is refused with the way forward.
        let retried = there.cli(&["job", "retry", &job.to_string()]);
        assert_eq!(retried.code, Some(1), "{retried:?}");
        assert!(retried.stderr.contains("upload the file again"), "{retried:?}");
        let listed = there.cli(&["backup", "list", "prod"]);
        assert!(!listed.stdout.contains(&id), "{listed:?}");

        // The real file: a job imports it; a script gets the job as JSON.
        let sent = upload(&ada, &base_there, "application/json", Some("prod"), &export).await;
        assert_eq!(sent.status(), 202);
        let answer: serde_json::Value = sent.json().await.expect("JSON");
        let job = answer["job"].as_u64().expect("job id") as u32;
        assert_eq!(
            finished(&there, job),
            "succeeded",
            "{}",
            there.cli(&["job", "log", &job.to_string()]).stdout
        );
        let listed = there.cli(&["backup", "list", "prod"]);
        assert!(listed.stdout.contains(&id), "{listed:?}");
        assert!(
            std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0) == 0,
            "the import job removes its upload"
        );
    });

    // Restored there: the site equals the one the backup was taken of here.
    std::fs::remove_dir_all(there.path("shop/site")).expect("lose the site");
    std::fs::create_dir_all(there.path("shop/site")).expect("an empty site");
    let restored = there.cli(&["restore", &id, "--reason", "moved here", "--yes", "--follow"]);
    assert_eq!(restored.code, Some(0), "{restored:?}");
    assert_eq!(files(&there.path("shop/site")), files(&here.path("shop/site")));
    drop((serve_here, serve_there));
}

/// Where the middle of entry `name`'s data is in a tar.
fn data_position(tar: &[u8], name: &str) -> usize {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().expect("a tar") {
        let entry = entry.expect("an entry");
        if entry.path().expect("a name").display().to_string() == name {
            return (entry.raw_file_position() + entry.size() / 2) as usize;
        }
    }
    panic!("no {name} in the export")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
