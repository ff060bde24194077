//! The repository against real directories and Debian's `restic`: what Steward writes comes
//! back equal, deduplicates, is forgotten and pruned, names damage, and is readable without
//! Steward.

use std::{
    collections::HashSet,
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64},
    },
};

use super::*;
use crate::drivers::testing::tree_state;

const PASSWORD: &str = "correct horse battery staple";

/// A tree with what a restore must give back: nested files, an executable, an empty
/// directory, a symbolic link, a name with a space.
fn make_tree(root: &Path, files: usize) {
    fs::create_dir_all(root.join("conf/empty")).unwrap();
    fs::create_dir_all(root.join("data/deep/er")).unwrap();
    fs::write(root.join("conf/app.toml"), "port = 8080\n").unwrap();
    fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("conf/app.toml", root.join("current")).unwrap();
    fs::write(root.join("data/deep/er/with space.txt"), "spaced").unwrap();
    for i in 0..files {
        fs::write(root.join(format!("data/file-{i:03}.bin")), noise(i as u64, 20_000)).unwrap();
    }
}

/// Bytes that do not compress (xorshift), different for each seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    repo_path: std::path::PathBuf,
    tree: std::path::PathBuf,
    staged: std::path::PathBuf,
    manifest: std::path::PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("site");
        make_tree(&tree, 20);
        let staged = dir.path().join("staged/db");
        fs::create_dir_all(&staged).unwrap();
        fs::write(staged.join("database.dump"), b"-- a dump\nCREATE TABLE t (id int);\n").unwrap();
        let manifest = dir.path().join("manifest.json");
        Fixture {
            repo_path: dir.path().join("repo"),
            tree,
            staged,
            manifest,
            _dir: dir,
        }
    }

    fn open(&self) -> Repository {
        open(&Location::Local(self.repo_path.clone()), PASSWORD, None, true).unwrap()
    }

    fn parts(&self) -> Vec<Part> {
        vec![
            Part {
                name: "site".into(),
                source: self.tree.clone(),
                keep: None,
            },
            Part {
                name: "db".into(),
                source: self.staged.clone(),
                keep: None,
            },
        ]
    }

    fn write(&self, repo: &mut Repository, backup_id: &str) -> Written {
        let manifest = format!("{{\"id\":\"{backup_id}\"}}");
        fs::write(&self.manifest, &manifest).unwrap();
        repo.write_backup(
            &BackupLabels {
                environment: "prod",
                backup_id,
                manifest: manifest.as_bytes(),
            },
            self.parts(),
            &self.manifest,
            &Arc::new(AtomicBool::new(false)),
            &Arc::new(AtomicU64::new(0)),
        )
        .unwrap()
    }

    fn restic(&self, args: &[&str]) -> std::process::Output {
        let output = Command::new("restic")
            .arg("--no-cache")
            .arg("-r")
            .arg(&self.repo_path)
            .args(args)
            .env("RESTIC_PASSWORD", PASSWORD)
            .output()
            .expect("Debian's restic is needed: run scripts/setup.sh");
        assert!(
            output.status.success(),
            "restic {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

#[test]
fn a_backup_is_one_snapshot_that_comes_back_equal_and_restic_reads() {
    let fixture = Fixture::new();
    let mut repo = fixture.open();
    let written = fixture.write(&mut repo, "prod-20261207-0100-aaaa");
    assert!(written.files >= 24, "{written:?}");

    let backups = repo.backups().unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].backup_id, "prod-20261207-0100-aaaa");
    assert_eq!(backups[0].environment, "prod");
    assert_eq!(backups[0].snapshot, written.snapshot);
    assert_eq!(backups[0].manifest, b"{\"id\":\"prod-20261207-0100-aaaa\"}");

    // Steward restores the tree and reads the dump.
    let restored = tempfile::tempdir().unwrap();
    repo.restore_part("prod-20261207-0100-aaaa", "site", &restored.path().join("site"))
        .unwrap();
    assert_eq!(tree_state(&restored.path().join("site")), tree_state(&fixture.tree));
    let mut dump = Vec::new();
    repo.read_file("prod-20261207-0100-aaaa", "/db/database.dump", &mut dump)
        .unwrap();
    assert_eq!(dump, fs::read(fixture.staged.join("database.dump")).unwrap());

    // restic, with no Steward: lists it with its tags, restores the tree, dumps the file.
    let listed = fixture.restic(&["snapshots", "--json", "--tag", "backup:prod-20261207-0100-aaaa"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let tags = listed[0]["tags"].as_array().unwrap();
    for tag in ["steward", "env:prod", "backup:prod-20261207-0100-aaaa"] {
        assert!(tags.iter().any(|t| t == tag), "{tags:?}");
    }
    let by_restic = tempfile::tempdir().unwrap();
    fixture.restic(&[
        "restore",
        &written.snapshot,
        "--target",
        by_restic.path().to_str().unwrap(),
        "--include",
        "/site",
    ]);
    assert_eq!(tree_state(&by_restic.path().join("site")), tree_state(&fixture.tree));
    let dumped = fixture.restic(&["dump", &written.snapshot, "/db/database.dump"]);
    assert_eq!(dumped.stdout, fs::read(fixture.staged.join("database.dump")).unwrap());
    let manifest = fixture.restic(&["dump", &written.snapshot, "/manifest.json"]);
    assert_eq!(manifest.stdout, b"{\"id\":\"prod-20261207-0100-aaaa\"}");
    fixture.restic(&["check", "--read-data"]);
}

#[test]
fn the_next_backup_reads_only_changed_files_and_stores_only_new_data() {
    let fixture = Fixture::new();
    let mut repo = fixture.open();
    let first = fixture.write(&mut repo, "prod-1");
    // One file changes, one is added: the rest is the parent's.
    fs::write(fixture.tree.join("conf/app.toml"), "port = 9090\n").unwrap();
    fs::write(fixture.tree.join("data/new.bin"), noise(99, 5000)).unwrap();
    let second = fixture.write(&mut repo, "prod-2");
    assert!(second.unchanged_files >= 20, "{second:?}");
    assert!(
        second.added_bytes * 10 < first.added_bytes,
        "the second backup stored {} bytes, the first {}",
        second.added_bytes,
        first.added_bytes
    );
    let restored = tempfile::tempdir().unwrap();
    repo.restore_part("prod-2", "site", restored.path()).unwrap();
    assert_eq!(tree_state(restored.path()), tree_state(&fixture.tree));
    assert_eq!(
        fs::read_to_string(restored.path().join("conf/app.toml")).unwrap(),
        "port = 9090\n"
    );
}

#[test]
fn only_what_the_globs_kept_is_stored() {
    let fixture = Fixture::new();
    let mut repo = fixture.open();
    let keep: HashSet<std::path::PathBuf> = ["conf", "conf/app.toml", "run.sh"].iter().map(Into::into).collect();
    fs::write(&fixture.manifest, "{}").unwrap();
    repo.write_backup(
        &BackupLabels {
            environment: "prod",
            backup_id: "prod-kept",
            manifest: b"{}",
        },
        vec![Part {
            name: "site".into(),
            source: fixture.tree.clone(),
            keep: Some(keep),
        }],
        &fixture.manifest,
        &Arc::new(AtomicBool::new(false)),
        &Arc::new(AtomicU64::new(0)),
    )
    .unwrap();
    let restored = tempfile::tempdir().unwrap();
    repo.restore_part("prod-kept", "site", restored.path()).unwrap();
    let names: Vec<_> = tree_state(restored.path()).into_keys().collect();
    assert_eq!(
        names,
        ["conf", "conf/app.toml", "run.sh"]
            .iter()
            .map(std::path::PathBuf::from)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_cancelled_backup_leaves_no_snapshot() {
    let fixture = Fixture::new();
    let mut repo = fixture.open();
    fs::write(&fixture.manifest, "{}").unwrap();
    let stop = Arc::new(AtomicBool::new(true));
    let result = repo.write_backup(
        &BackupLabels {
            environment: "prod",
            backup_id: "prod-cancelled",
            manifest: b"{}",
        },
        fixture.parts(),
        &fixture.manifest,
        &stop,
        &Arc::new(AtomicU64::new(0)),
    );
    assert!(matches!(result, Err(RepositoryError::Cancelled)), "{result:?}");
    assert!(repo.backups().unwrap().is_empty());
    repo.check(false).unwrap();
}

#[test]
fn forget_and_prune_give_the_space_back() {
    let fixture = Fixture::new();
    let mut repo = fixture.open();
    fixture.write(&mut repo, "prod-old");
    // Replace every data file: the old backup's data is needed by nothing else.
    fs::remove_dir_all(fixture.tree.join("data")).unwrap();
    fs::create_dir_all(fixture.tree.join("data")).unwrap();
    fs::write(fixture.tree.join("data/other.bin"), noise(77, 30_000)).unwrap();
    fixture.write(&mut repo, "prod-new");
    let before = repo.usage().unwrap();

    assert_eq!(repo.forget(&["prod-old"]).unwrap().len(), 1);
    let pruned = repo.prune().unwrap();
    assert!(pruned.bytes_removed + pruned.bytes_repacked > 0, "{pruned:?}");
    let after = repo.usage().unwrap();
    assert!(after.bytes < before.bytes, "{} → {}", before.bytes, after.bytes);

    let left: Vec<String> = repo.backups().unwrap().into_iter().map(|b| b.backup_id).collect();
    assert_eq!(left, ["prod-new"]);
    repo.check(true).unwrap();
    let verified = repo
        .verify_backup("prod-new", |_, _| {}, &AtomicBool::new(false))
        .unwrap();
    assert!(verified.files >= 4, "{verified:?}");
}

#[test]
fn a_damaged_pack_is_named_by_verify() {
    let fixture = Fixture::new();
    let mut repo = fixture.open();
    fixture.write(&mut repo, "prod-damaged");
    // Damage every data pack a little, in the middle (headers stay readable).
    crate::backups::testing::damage_packs(&fixture.repo_path);
    let mut repo = fixture.open();
    let error = repo
        .verify_backup("prod-damaged", |_, _| {}, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(error.contains("prod-damaged"), "{error}");
}

#[test]
fn a_wrong_password_and_a_missing_repository_say_so() {
    let fixture = Fixture::new();
    drop(fixture.open());
    let location = Location::Local(fixture.repo_path.clone());
    let error = open(&location, "not the password", None, false).err().unwrap();
    assert!(matches!(error, RepositoryError::WrongPassword { .. }), "{error}");
    assert!(error.to_string().contains("password"), "{error}");

    let nowhere = Location::Local(fixture.repo_path.join("nothing-here"));
    let error = open(&nowhere, PASSWORD, None, false).err().unwrap();
    assert!(matches!(error, RepositoryError::Missing { .. }), "{error}");
}
