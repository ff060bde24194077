//! Steward's backups in a restic-format repository: deduplicated, encrypted, on local disk or
//! in an S3 bucket, and readable by `restic` itself, so a disaster that leaves no Steward
//! behind is still survivable.
//!
//! The format and the work (chunking, packing, encryption, index, prune) are `rustic_core`'s;
//! this module decides how Steward's backups map onto it:
//!
//! - **One Steward backup is one snapshot.** Each resource is a top-level directory of the
//!   snapshot's tree, `/<resource>/…`: a directory resource's tree as it is on disk (so the
//!   next night deduplicates file by file and unchanged files are not even read), a database
//!   dump or a report as the file(s) its driver wrote into staging. `/manifest.json` is
//!   Steward's manifest, and the same manifest is the snapshot's `description`, so listing the
//!   backups needs no tree to be read. The snapshot is tagged `steward`, `env:<environment>`
//!   and `backup:<id>`; its `label` is the backup id. A snapshot is written last, after every
//!   pack and index it needs, so a backup is visible whole or not at all: there is no half
//!   backup to list.
//! - **One snapshot per backup rather than one per resource**, because retention, restore and
//!   export act on backups: forgetting one backup is deleting one snapshot file, and `restic
//!   snapshots --tag backup:<id>` finds a backup in one line.
//! - **The previous backup of the environment is the parent** (given explicitly, whatever its
//!   host or paths), so an unchanged file is recognised by its size, mtime, ctime and inode
//!   and not read again — restic's own speed-up.
//!
//! Everything here is blocking (rustic_core is): call it from `spawn_blocking`. What rustic
//! only logs and skips (an unreadable file, a file that vanished mid-backup) is collected by
//! [`Source`] and makes the backup fail, and its snapshot is removed again: a backup that
//! silently lacks a file is not one Steward promises.

use std::{
    collections::HashSet,
    ffi::OsString,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use rustic_backend::LocalBackend;
use rustic_core::{
    BackupOptions, CheckOptions, ConfigOptions, Credentials, Excludes, FileType, IndexedFullStatus, IndexedIdsStatus,
    KeyOptions, LocalDestination, LocalSource, LocalSourceFilterOptions, LocalSourceSaveOptions, LsOptions, OpenStatus,
    ParentOptions, PruneOptions, ReadSource, ReadSourceEntry, ReadSourceOpen, Repository as Rustic, RepositoryBackends,
    RepositoryOptions, RestoreOptions, RusticError, RusticResult, SnapshotGroupCriterion, SnapshotOptions,
    WriteBackend,
    repofile::{SnapshotFile, SnapshotId},
};

pub mod s3;

/// The tag every snapshot Steward writes carries; other snapshots in a shared repository
/// (someone's own restic backups) are left alone.
pub const TAG: &str = "steward";
/// The manifest's place in a snapshot's tree.
pub const MANIFEST_PATH: &str = "/manifest.json";

/// Where a repository is.
#[derive(Clone)]
pub enum Location {
    Local(PathBuf),
    S3(s3::S3Location),
}

impl Location {
    /// For people and logs: a path or an `s3:` URL, never a credential.
    pub fn describe(&self) -> String {
        match self {
            Location::Local(path) => path.display().to_string(),
            Location::S3(s3) => s3.describe(),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What went wrong, in the words an operator needs.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("the repository {location} cannot be opened with this password (no key matches it)")]
    WrongPassword { location: String },
    #[error("there is no repository at {location}")]
    Missing { location: String },
    #[error("the repository {location} cannot be reached: {reason}")]
    Unreachable { location: String, reason: String },
    #[error("{0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
}

fn failed(what: &str) -> impl FnOnce(Box<RusticError>) -> RepositoryError + '_ {
    move |e| RepositoryError::Failed(format!("{what}: {}", one_line(&e)))
}

/// rustic's errors are multi-line reports; the operator needs the message and its cause on one
/// line, without rustic's kind and code.
fn one_line(error: &RusticError) -> String {
    let text = error.display_log();
    let text = text.strip_prefix("Error: ").unwrap_or(&text);
    let text = match (text.find(" (kind: related to"), text.find(')')) {
        (Some(start), Some(end)) if end > start => format!("{}{}", &text[..start], &text[end + 1..]),
        _ => text.to_string(),
    };
    let text = text.replace(": caused by: ", ": ").replace(" : (source: ", " (");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An open repository.
pub struct Repository {
    /// `None` only while an operation holds it indexed (rustic's states are types, and a
    /// repository is not `Clone`), or after indexing it failed.
    inner: Option<Rustic<OpenStatus>>,
    location: String,
}

/// One Steward backup as the repository holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBackup {
    /// The snapshot's id (hex).
    pub snapshot: String,
    pub environment: String,
    pub backup_id: String,
    /// The manifest, as the backup was written with it.
    pub manifest: Vec<u8>,
    /// Bytes this backup added to the repository (new data, compressed): what removing it
    /// alone could give back at most.
    pub added_bytes: u64,
    /// Bytes the backup holds before deduplication and compression.
    pub full_bytes: u64,
}

/// What one part of a backup's snapshot is: `/<name>` holds the contents of `source` (a
/// directory), or is `source` (a file). `keep`, for a directory, lists the relative paths to
/// take (the directory driver's include and exclude globs, already applied); `None` takes all.
pub struct Part {
    pub name: String,
    pub source: PathBuf,
    pub keep: Option<HashSet<PathBuf>>,
}

/// What the repository reports after a backup.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub snapshot: String,
    pub files: u64,
    pub bytes: u64,
    /// New data stored, after deduplication and compression.
    pub added_bytes: u64,
    pub unchanged_files: u64,
}

/// Backups [`Repository::forget`] removed, as they were.
#[derive(Debug)]
pub struct Forgotten(Vec<SnapshotFile>);

impl Forgotten {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a prune gave back.
#[derive(Debug, Clone, Default)]
pub struct Pruned {
    pub packs_removed: u64,
    pub bytes_removed: u64,
    pub bytes_repacked: u64,
}

/// The whole repository's size.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub bytes: u64,
    pub packs: u64,
}

/// Opens the repository at `location`, creating it when `create` and nothing is there yet.
/// `cache` is a local directory for rustic's cache of index and snapshot files (`None`: no
/// cache).
pub fn open(
    location: &Location,
    password: &str,
    cache: Option<&Path>,
    create: bool,
) -> Result<Repository, RepositoryError> {
    let described = location.describe();
    let backend: Arc<dyn WriteBackend> = match location {
        Location::Local(path) => {
            let path = path.to_str().ok_or_else(|| {
                RepositoryError::Failed(format!("the repository path {described} is not valid UTF-8"))
            })?;
            Arc::new(LocalBackend::new(path, []).map_err(failed("the repository path"))?)
        }
        Location::S3(s3) => {
            Arc::new(s3::S3Backend::new(s3).map_err(|e| RepositoryError::Failed(format!("storage.s3: {e}")))?)
        }
    };
    let backends = RepositoryBackends::new(backend, None);
    let mut options = RepositoryOptions::default();
    match cache {
        Some(dir) => options.cache_dir = Some(dir.to_path_buf()),
        None => options.no_cache = true,
    }
    let repo = Rustic::new(&options, &backends).map_err(failed("the repository"))?;
    let unreachable = |e: Box<RusticError>| RepositoryError::Unreachable {
        location: described.clone(),
        reason: one_line(&e),
    };
    let credentials = Credentials::password(password);
    let exists = repo.config_id().map_err(unreachable)?.is_some();
    let inner = if exists {
        repo.open(&credentials).map_err(|e| {
            if e.is_incorrect_password() {
                RepositoryError::WrongPassword {
                    location: described.clone(),
                }
            } else {
                RepositoryError::Failed(format!("cannot open the repository {described}: {}", one_line(&e)))
            }
        })?
    } else if create {
        if let Location::Local(path) = location {
            std::fs::create_dir_all(path)
                .map_err(|e| RepositoryError::Failed(format!("cannot create {described}: {e}")))?;
        }
        repo.init(&credentials, &KeyOptions::default(), &ConfigOptions::default())
            .map_err(|e| {
                RepositoryError::Failed(format!("cannot create the repository {described}: {}", one_line(&e)))
            })?
    } else {
        return Err(RepositoryError::Missing { location: described });
    };
    Ok(Repository {
        inner: Some(inner),
        location: described,
    })
}

impl Repository {
    pub fn location(&self) -> &str {
        &self.location
    }

    fn open_repo(&self) -> Result<&Rustic<OpenStatus>, RepositoryError> {
        self.inner.as_ref().ok_or_else(|| self.closed())
    }

    fn closed(&self) -> RepositoryError {
        RepositoryError::Failed(format!(
            "the repository {} could not be indexed before; open it again",
            self.location
        ))
    }

    /// Runs `work` on the repository with its full index loaded (to read trees and files).
    fn with_full_index<T>(
        &mut self,
        work: impl FnOnce(&Rustic<IndexedFullStatus>) -> Result<T, RepositoryError>,
    ) -> Result<T, RepositoryError> {
        let repo = self.inner.take().ok_or_else(|| self.closed())?;
        let indexed = repo
            .to_indexed()
            .map_err(failed("cannot read the repository's index"))?;
        let result = work(&indexed);
        self.inner = Some(indexed.drop_index());
        result
    }

    /// Runs `work` on the repository with the blob ids of its index loaded (to write).
    fn with_id_index<T>(
        &mut self,
        work: impl FnOnce(&Rustic<IndexedIdsStatus>) -> Result<T, RepositoryError>,
    ) -> Result<T, RepositoryError> {
        let repo = self.inner.take().ok_or_else(|| self.closed())?;
        let indexed = repo
            .to_indexed_ids()
            .map_err(failed("cannot read the repository's index"))?;
        let result = work(&indexed);
        self.inner = Some(indexed.drop_index());
        result
    }

    /// Every Steward backup in the repository, oldest first.
    pub fn backups(&self) -> Result<Vec<StoredBackup>, RepositoryError> {
        let mut snapshots = self.steward_snapshots(|_| true)?;
        snapshots.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(snapshots.iter().filter_map(stored).collect())
    }

    /// Steward's snapshots that `also` accepts.
    fn steward_snapshots(&self, also: impl Fn(&SnapshotFile) -> bool) -> Result<Vec<SnapshotFile>, RepositoryError> {
        self.open_repo()?
            .get_matching_snapshots(|snap| snap.tags.contains(TAG) && also(snap))
            .map_err(failed("cannot list the snapshots"))
    }

    /// The snapshot of backup `backup_id` (the newest, should an import have written it twice).
    fn snapshot_of(&self, backup_id: &str) -> Result<SnapshotFile, RepositoryError> {
        let tag = format!("backup:{backup_id}");
        self.steward_snapshots(|snap| snap.tags.contains(&tag))?
            .into_iter()
            .max_by(|a, b| a.time.cmp(&b.time))
            .ok_or_else(|| {
                RepositoryError::Failed(format!("backup {backup_id} is not in the repository {}", self.location))
            })
    }

    /// The environment's newest backup, the parent of its next one.
    fn latest_of(&self, environment: &str) -> Result<Option<SnapshotFile>, RepositoryError> {
        let tag = format!("env:{environment}");
        Ok(self
            .steward_snapshots(|snap| snap.tags.contains(&tag))?
            .into_iter()
            .max_by(|a, b| a.time.cmp(&b.time)))
    }

    /// Writes one backup as one snapshot of `parts` (sorted here by name; a part named like
    /// the manifest is refused). `manifest` is stored as `/manifest.json` (from the file
    /// `manifest_file`) and as the snapshot's description. `stop` cancels: what was written so
    /// far becomes unreferenced data that the next prune removes, and no snapshot remains.
    /// `read` counts the bytes read from the sources, for a progress bar.
    pub fn write_backup(
        &mut self,
        backup: &BackupLabels<'_>,
        mut parts: Vec<Part>,
        manifest_file: &Path,
        stop: &Arc<AtomicBool>,
        read: &Arc<AtomicU64>,
    ) -> Result<Written, RepositoryError> {
        parts.push(Part {
            name: MANIFEST_PATH.trim_start_matches('/').to_string(),
            source: manifest_file.to_path_buf(),
            keep: None,
        });
        parts.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        if parts.windows(2).any(|pair| pair[0].name == pair[1].name) {
            return Err(RepositoryError::Failed(
                "two parts of the backup have the same name".into(),
            ));
        }
        let parent = self.latest_of(backup.environment)?;
        let mut snap = SnapshotOptions::default()
            .add_tags(&format!("{TAG},env:{},backup:{}", backup.environment, backup.backup_id))
            .and_then(|options| options.label(backup.backup_id.to_string()).to_snapshot())
            .map_err(failed("cannot describe the snapshot"))?;
        snap.description = Some(String::from_utf8_lossy(backup.manifest).into_owned());
        let mut options = BackupOptions::default();
        options.parent_opts = ParentOptions::default()
            .group_by(Some(SnapshotGroupCriterion::new()))
            .parents(parent.as_ref().map(|p| vec![p.id.to_string()]).unwrap_or_default())
            .force(parent.is_none());
        let problems = Arc::new(Mutex::new(Vec::new()));
        let backup_paths: Vec<PathBuf> = parts.iter().map(|p| PathBuf::from(format!("/{}", p.name))).collect();
        let source = Source {
            parts: Arc::new(parts),
            problems: problems.clone(),
            stop: stop.clone(),
            read: read.clone(),
        };
        let snap = self.with_id_index(|indexed| {
            indexed
                .archive(&options, &source, snap, &backup_paths)
                .map_err(failed("the backup could not be written"))
        })?;
        let found: Vec<String> = problems.lock().map(|p| p.clone()).unwrap_or_default();
        if stop.load(Ordering::Relaxed) || !found.is_empty() {
            // The snapshot exists but is not a whole backup: remove it again.
            let _ = self.open_repo()?.delete_snapshots(&[snap.id]);
            if stop.load(Ordering::Relaxed) {
                return Err(RepositoryError::Cancelled);
            }
            let shown: Vec<&str> = found.iter().take(5).map(String::as_str).collect();
            let more = found.len().saturating_sub(shown.len());
            return Err(RepositoryError::Failed(format!(
                "{}{}",
                shown.join("; "),
                if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                }
            )));
        }
        let summary = snap.summary.clone().unwrap_or_default();
        Ok(Written {
            snapshot: snap.id.to_string(),
            files: summary.total_files_processed,
            bytes: summary.total_bytes_processed,
            added_bytes: summary.data_added_packed,
            unchanged_files: summary.files_unmodified,
        })
    }

    /// Restores part `name` of backup `backup_id` into the directory `into` (created; for a
    /// file part, the file is written into it under its own name). Contents, modes, mtimes,
    /// links and (when run as root) owners come back.
    pub fn restore_part(&mut self, backup_id: &str, name: &str, into: &Path) -> Result<(), RepositoryError> {
        let snap = self.snapshot_of(backup_id)?;
        std::fs::create_dir_all(into)
            .map_err(|e| RepositoryError::Failed(format!("cannot create {}: {e}", into.display())))?;
        self.with_full_index(|indexed| {
            let node = indexed
                .node_from_snapshot_and_path(&snap, &format!("/{name}"))
                .map_err(failed(&format!("backup {backup_id} has no {name}")))?;
            let destination = if node.is_dir() {
                into.to_path_buf()
            } else {
                into.join(node.name())
            };
            let text = destination
                .to_str()
                .ok_or_else(|| RepositoryError::Failed(format!("{} is not valid UTF-8", destination.display())))?;
            let dest = LocalDestination::new(text, true, !node.is_dir())
                .map_err(failed(&format!("cannot restore into {}", destination.display())))?;
            let options = RestoreOptions::default();
            let listing = indexed
                .ls(&node, &LsOptions::default())
                .map_err(failed("cannot list the backup"))?;
            let plan = indexed
                .prepare_restore(&options, listing.clone(), &dest, false)
                .map_err(failed("cannot plan the restore"))?;
            indexed
                .restore(plan, &options, listing, &dest)
                .map_err(failed("the restore failed"))
        })
    }

    /// Reads the file at `path` (`/<part>/<file>`) of backup `backup_id` into `out`.
    pub fn read_file(&mut self, backup_id: &str, path: &str, out: &mut impl Write) -> Result<(), RepositoryError> {
        let snap = self.snapshot_of(backup_id)?;
        self.with_full_index(|indexed| {
            let node = indexed
                .node_from_snapshot_and_path(&snap, path)
                .map_err(failed(&format!("backup {backup_id} has no {path}")))?;
            indexed
                .dump(&node, out)
                .map_err(failed(&format!("cannot read {path} of backup {backup_id}")))
        })
    }

    /// Reads every byte of backup `backup_id` back (each blob decrypted and its MAC and hash
    /// checked) after checking the structure its snapshot refers to; each file's bytes go to
    /// `each_file(path, bytes)` in order, so the caller can compare checksums. `Err` names
    /// what is damaged.
    pub fn verify_backup(
        &mut self,
        backup_id: &str,
        mut each_file: impl FnMut(&Path, &[u8]),
        stop: &AtomicBool,
    ) -> Result<VerifiedData, RepositoryError> {
        let snap = self.snapshot_of(backup_id)?;
        let results = self
            .open_repo()?
            .check_with_trees(CheckOptions::default(), vec![snap.tree])
            .map_err(failed(&format!("checking backup {backup_id}")))?;
        if let Err(e) = results.is_ok() {
            let details: Vec<String> = results.0.iter().take(3).map(|(_, error)| error.to_string()).collect();
            return Err(RepositoryError::Failed(format!(
                "the repository's check found damage in backup {backup_id}: {} ({})",
                details.join("; "),
                one_line(&e)
            )));
        }
        self.with_full_index(|indexed| {
            let root = indexed
                .node_from_snapshot_and_path(&snap, "/")
                .map_err(failed(&format!("backup {backup_id}")))?;
            let mut verified = VerifiedData::default();
            let listing = indexed
                .ls(&root, &LsOptions::default().recursive(true))
                .map_err(failed("cannot list the backup"))?;
            for item in listing {
                if stop.load(Ordering::Relaxed) {
                    return Err(RepositoryError::Cancelled);
                }
                let (path, node) = item.map_err(failed(&format!("backup {backup_id} is damaged")))?;
                if !node.is_file() {
                    continue;
                }
                let open = indexed
                    .open_file(&node)
                    .map_err(failed(&format!("backup {backup_id}: {} is damaged", path.display())))?;
                let size = usize::try_from(node.meta.size).unwrap_or(usize::MAX);
                let mut offset = 0usize;
                while offset < size {
                    let length = (size - offset).min(VERIFY_CHUNK);
                    let bytes = indexed.read_file_at(&open, offset, length).map_err(|e| {
                        RepositoryError::Failed(format!(
                            "backup {backup_id}: {} cannot be read back: {}",
                            path.display(),
                            one_line(&e)
                        ))
                    })?;
                    if bytes.is_empty() {
                        break;
                    }
                    each_file(&path, &bytes);
                    offset += bytes.len();
                }
                verified.files += 1;
                verified.bytes += offset as u64;
            }
            Ok(verified)
        })
    }

    /// Forgets backups (deletes their snapshots); their data goes at the next [`prune`].
    /// Returns what was forgotten, which [`reinstate`] can put back.
    ///
    /// [`prune`]: Repository::prune
    /// [`reinstate`]: Repository::reinstate
    pub fn forget(&self, backup_ids: &[&str]) -> Result<Forgotten, RepositoryError> {
        let wanted: HashSet<String> = backup_ids.iter().map(|id| format!("backup:{id}")).collect();
        let snapshots = self.steward_snapshots(|snap| snap.tags.iter().any(|tag| wanted.contains(tag)))?;
        let ids: Vec<SnapshotId> = snapshots.iter().map(|snap| snap.id).collect();
        self.open_repo()?
            .delete_snapshots(&ids)
            .map_err(failed("cannot forget the backups"))?;
        Ok(Forgotten(snapshots))
    }

    /// Puts forgotten backups back (a removal whose catalog change failed).
    pub fn reinstate(&self, forgotten: Forgotten) -> Result<(), RepositoryError> {
        self.open_repo()?
            .save_snapshots(forgotten.0)
            .map_err(failed("cannot put the forgotten backups back"))
    }

    /// Removes the data no snapshot needs any more, at once: the caller makes sure no backup
    /// is being written meanwhile (see the module docs of `kinds::prune`).
    pub fn prune(&self) -> Result<Pruned, RepositoryError> {
        let repo = self.open_repo()?;
        let options = PruneOptions::default().instant_delete(true);
        let plan = repo.prune_plan(&options).map_err(failed("cannot plan the prune"))?;
        let size = plan.stats.size_sum();
        let pruned = Pruned {
            packs_removed: plan.stats.packs_to_delete.remove,
            bytes_removed: size.remove + size.repackrm,
            bytes_repacked: size.repack,
        };
        repo.prune(&options, plan).map_err(failed("the prune failed"))?;
        Ok(pruned)
    }

    /// Checks the whole repository's structure (and, with `read_data`, every pack's bytes).
    /// `Ok` lists the warnings; `Err` the damage.
    pub fn check(&self, read_data: bool) -> Result<Vec<String>, RepositoryError> {
        let results = self
            .open_repo()?
            .check(CheckOptions::default().read_data(read_data))
            .map_err(failed("the check could not run"))?;
        let findings: Vec<String> = results.0.iter().map(|(_, error)| error.to_string()).collect();
        match results.is_ok() {
            Ok(()) => Ok(findings),
            Err(_) => Err(RepositoryError::Failed(format!(
                "the repository {} is damaged: {}",
                self.location,
                findings.join("; ")
            ))),
        }
    }

    /// The repository's size: the data packs as stored.
    pub fn usage(&self) -> Result<Usage, RepositoryError> {
        let infos = self
            .open_repo()?
            .infos_files()
            .map_err(failed("cannot list the repository's files"))?;
        let packs = infos.repo.iter().find(|info| info.tpe == FileType::Pack);
        Ok(Usage {
            bytes: infos.repo.iter().map(|info| info.size).sum(),
            packs: packs.map_or(0, |info| info.count),
        })
    }
}

/// Bytes handed to `verify_backup`'s callback at a time.
const VERIFY_CHUNK: usize = 4 << 20;

/// What [`Repository::verify_backup`] read.
#[derive(Debug, Clone, Default)]
pub struct VerifiedData {
    pub files: u64,
    pub bytes: u64,
}

/// What a backup's snapshot says about it.
pub struct BackupLabels<'a> {
    pub environment: &'a str,
    pub backup_id: &'a str,
    pub manifest: &'a [u8],
}

/// A snapshot read as a Steward backup; `None` for one that is not (no manifest).
fn stored(snap: &SnapshotFile) -> Option<StoredBackup> {
    let tag = |prefix: &str| {
        snap.tags
            .iter()
            .find_map(|tag| tag.strip_prefix(prefix).map(str::to_string))
    };
    let summary = snap.summary.clone().unwrap_or_default();
    Some(StoredBackup {
        snapshot: snap.id.to_string(),
        environment: tag("env:")?,
        backup_id: tag("backup:")?,
        manifest: snap.description.clone()?.into_bytes(),
        added_bytes: summary.data_added_packed,
        full_bytes: summary.total_bytes_processed,
    })
}

/// The parts of a backup as one source for rustic's archiver: each part's entries, in order,
/// under `/<name>`, with what rustic would only log and skip collected in `problems`.
struct Source {
    parts: Arc<Vec<Part>>,
    problems: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
}

type LocalOpen = <LocalSource as ReadSource>::Open;

impl ReadSource for Source {
    type Open = Checked;
    type Iter = Box<dyn Iterator<Item = RusticResult<ReadSourceEntry<Checked>>> + Send>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        let parts = self.parts.clone();
        let (problems, stop, read) = (self.problems.clone(), self.stop.clone(), self.read.clone());
        let iter = (0..parts.len()).flat_map(move |index| {
            let part = &parts[index];
            let note = |message: String| {
                if let Ok(mut list) = problems.lock() {
                    list.push(message);
                }
            };
            let source = match LocalSource::new(
                LocalSourceSaveOptions::default(),
                &Excludes::default(),
                &LocalSourceFilterOptions::default(),
                &[&part.source],
            ) {
                Ok(source) => source,
                Err(e) => {
                    note(format!("{}: {}", part.source.display(), one_line(&e)));
                    return Vec::new();
                }
            };
            let mut entries = Vec::new();
            for entry in source.entries() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let ReadSourceEntry { path, node, open } = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        note(format!("{}: {}", part.source.display(), one_line(&e)));
                        continue;
                    }
                };
                let Ok(rel) = path.strip_prefix(&part.source).map(Path::to_path_buf) else {
                    note(format!("{} is outside {}", path.display(), part.source.display()));
                    continue;
                };
                if let Some(keep) = &part.keep
                    && !rel.as_os_str().is_empty()
                    && !keep.contains(&rel)
                {
                    continue;
                }
                let mut target = OsString::from("/");
                target.push(&part.name);
                let mut target = PathBuf::from(target);
                if !rel.as_os_str().is_empty() {
                    target.push(&rel);
                }
                let open = open.map(|inner| Checked {
                    inner,
                    path: path.clone(),
                    problems: problems.clone(),
                    stop: stop.clone(),
                    read: read.clone(),
                });
                entries.push(Ok(ReadSourceEntry {
                    path: target,
                    node,
                    open,
                }));
            }
            entries
        });
        Box::new(iter)
    }
}

/// A file of a [`Source`], opened when the archiver reads it.
pub struct Checked {
    inner: LocalOpen,
    path: PathBuf,
    problems: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
}

impl ReadSourceOpen for Checked {
    type Reader = CheckedReader;

    fn open(self) -> RusticResult<Self::Reader> {
        match self.inner.open() {
            Ok(file) => Ok(CheckedReader {
                inner: file,
                path: self.path,
                problems: self.problems,
                stop: self.stop,
                read: self.read,
            }),
            Err(e) => {
                if let Ok(mut list) = self.problems.lock() {
                    list.push(format!("cannot read {}: {}", self.path.display(), one_line(&e)));
                }
                Err(e)
            }
        }
    }
}

/// Reads a source file, counting bytes, stopping on cancel and noting read errors.
pub struct CheckedReader {
    inner: <LocalOpen as ReadSourceOpen>::Reader,
    path: PathBuf,
    problems: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        match self.inner.read(buf) {
            Ok(n) => {
                self.read.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                if let Ok(mut list) = self.problems.lock() {
                    list.push(format!("cannot read {}: {e}", self.path.display()));
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;
