//! The `steward` binary as a user runs it: real child processes, real files.

use std::process::Command;

fn steward(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .env_remove("STEWARD_CONFIG")
        .output()
        .expect("run steward")
}

fn write_config(dir: &std::path::Path, body: &str) -> String {
    let path = dir.join("steward.toml");
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

const VALID: &str = r##"
data_dir = "state"
[access]
allow = ["127.0.0.1/32"]
[[environments]]
name = "prod"
label = "Production"
colour = "#c62828"
"##;

#[test]
fn config_check_accepts_a_valid_file_and_summarises_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), VALID);
    let out = steward(&["config", "check", "--config", &path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("is valid") && stdout.contains("prod"), "{stdout}");
}

#[test]
fn config_check_names_a_typoed_key_and_the_file_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &format!("{VALID}\n[server]\nlisen = \"127.0.0.1:1\"\n"));
    let out = steward(&["config", "check", "--config", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.lisen"), "{stderr}");
    assert!(stderr.contains(&path), "{stderr}");
}

#[test]
fn config_check_reports_a_missing_file() {
    let out = steward(&["config", "check", "--config", "/nonexistent/steward.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/steward.toml"));
}

#[test]
fn migrate_creates_the_sqlite_database_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), VALID);
    let out = steward(&["migrate", "--config", &path]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("state/steward.db").is_file());
    // A second run finds nothing to do and still succeeds.
    assert!(steward(&["migrate", "--config", &path]).status.success());
}

#[test]
fn help_explains_the_commands() {
    let out = steward(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["serve", "migrate", "config"] {
        assert!(help.contains(command), "{help}");
    }
    assert!(help.contains("STEWARD_CONFIG"), "{help}");
}
