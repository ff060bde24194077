//! The `directory` driver: a directory tree becomes one `files.tar.zst`, and [`restore`] turns
//! it back into a tree.
//!
//! The archive is a GNU tar stream compressed by zstd (level 3, on worker threads) and written
//! straight to the artifact file through a [`HashingWriter`]: nothing is held in memory but a
//! read buffer and zstd's window, so a tree of any size backs up in constant memory, and the
//! SHA-256 is known the moment the last byte is written.
//!
//! What is kept, so that a restore gives back the same tree:
//! - every regular file's bytes, mode (including the executable and setuid bits), mtime, uid/gid;
//! - directories, empty ones too, with their modes and mtimes;
//! - symbolic links *as links* (never followed), dangling ones too, with their targets verbatim;
//! - any name a Linux file system allows: spaces, newlines, non-UTF-8 bytes, and paths or link
//!   targets longer than tar's 100 bytes (GNU long-name entries).
//!
//! Not kept: hard links (each name is stored as a file of its own), sockets, FIFOs and device
//! nodes (skipped with a warning in the job log), extended attributes and ACLs, sub-second mtimes
//! (tar stores whole seconds). The archived root itself is not an entry: a restore fills the
//! directory it is given.
//!
//! How it works: a first walk lists what is to be archived (a walk is cheap next to reading the
//! data) and so gives the total for the progress bar; then the tar stream is built on a blocking
//! thread. File bodies are copied by this module rather than by the `tar` crate so that the read
//! buffer is large (zstd works best with big writes), cancellation is checked every
//! [`CHECK_EVERY`] bytes inside a big file, and a file that changes size while it is read cannot
//! corrupt the archive: exactly the size in its header is written (a shrunken file is padded
//! with zeros, a grown one cut) and the job log says so.
//!
//! A restore is the reverse, built to be as fast as `zstd -d | tar -x` (its time is how long
//! production is down): see [`unpack`] for how, and [`restore_in_place`] for the swap.
//!
//! Include and exclude globs are matched against paths relative to the root (`conf/app.toml`),
//! with `*` not crossing `/` and `**` crossing any number of directories. A glob without a `/`
//! also matches a name at any depth, as in `.gitignore` (`*.tmp`, `node_modules`). A matching
//! directory brings (include) or drops (exclude) everything under it; exclude wins. With include
//! globs, the directories leading to an included entry are archived too, so their modes and
//! mtimes come back.

use std::{
    ffi::OsStr,
    fs::{self, File},
    io::{self, Read, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Artifact, BackgroundWriter, Context, DriverError};

mod remove;
mod unpack;

pub use remove::remove_tree;

/// The artifact's file name inside the output directory.
pub const ARCHIVE_NAME: &str = "files.tar.zst";
/// zstd's default level: close to the best speed with a good ratio.
const ZSTD_LEVEL: i32 = 3;
/// Bytes read from a file at a time.
const READ_BUFFER: usize = 1 << 20;
/// Inside a big file, cancellation is checked after this many bytes.
const CHECK_EVERY: u64 = 8 << 20;
/// How often the progress bar is updated.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// tar's block size: every entry's body is padded to a multiple of it.
const TAR_BLOCK: u64 = 512;

/// Archives the tree at `path` into `out_dir/files.tar.zst`.
pub async fn backup(
    path: &Path,
    include: &[String],
    exclude: &[String],
    out_dir: &Path,
    ctx: &Context<'_>,
) -> Result<Artifact, DriverError> {
    let filter = Filter::new(path, include, exclude)?;
    // A token of our own, cancelled with the job's and also when this future is dropped, so the
    // blocking thread never outlives the backup that started it.
    let stop = ctx.stop.child_token();
    let _stop_when_dropped = stop.clone().drop_guard();

    let plan = {
        let (root, out_dir, stop) = (path.to_path_buf(), out_dir.to_path_buf(), stop.clone());
        tokio::task::spawn_blocking(move || Plan::walk(&root, &filter, &out_dir, &stop))
            .await
            .map_err(|e| DriverError::Failed(format!("directory {}: the walk stopped: {e}", path.display())))??
    };
    for note in &plan.notes {
        ctx.log.warn(note.clone()).await;
    }
    ctx.log
        .info(format!(
            "directory {}: {} files ({} bytes), {} directories, {} symbolic links",
            path.display(),
            plan.files,
            plan.total,
            plan.directories,
            plan.symlinks
        ))
        .await;
    if stop.is_cancelled() {
        return Err(DriverError::Cancelled);
    }
    (ctx.progress)(0, Some(plan.total));

    let out = out_dir.join(ARCHIVE_NAME);
    let read = Arc::new(AtomicU64::new(0));
    let (warnings, mut warnings_rx) = mpsc::unbounded_channel::<String>();
    let total = plan.total;
    let (files, directories, symlinks) = (plan.files, plan.directories, plan.symlinks);
    let mut task = {
        let (root, out, stop, read) = (path.to_path_buf(), out.clone(), stop.clone(), read.clone());
        tokio::task::spawn_blocking(move || write_archive(&root, &plan.entries, &out, &stop, &read, &warnings))
    };
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let joined = loop {
        tokio::select! {
            joined = &mut task => break joined,
            _ = tick.tick() => {
                (ctx.progress)(read.load(Ordering::Relaxed), Some(total));
                while let Ok(warning) = warnings_rx.try_recv() {
                    ctx.log.warn(warning).await;
                }
            }
        }
    };
    while let Some(warning) = warnings_rx.recv().await {
        ctx.log.warn(warning).await;
    }
    let written = joined
        .map_err(|e| DriverError::Failed(format!("directory {}: archiving stopped: {e}", path.display())))
        .and_then(|result| result);
    let (size, sha256) = match written {
        Ok(written) => written,
        Err(error) => {
            // The caller removes the staging area too; this frees the space at once.
            let _ = tokio::fs::remove_file(&out).await;
            return Err(error);
        }
    };
    let bytes_in = read.load(Ordering::Relaxed);
    (ctx.progress)(bytes_in, Some(total));
    ctx.log
        .info(format!(
            "directory {}: wrote {ARCHIVE_NAME}, {size} bytes from {bytes_in}",
            path.display()
        ))
        .await;
    Ok(Artifact {
        file: PathBuf::from(ARCHIVE_NAME),
        size,
        sha256,
        tool: Some(format!("zstd {} (library)", zstd::zstd_safe::version_string())),
        details: serde_json::json!({
            "files": files,
            "directories": directories,
            "symlinks": symlinks,
            "bytes_in": bytes_in,
        }),
    })
}

/// What of a tree a backup into the repository takes: the relative paths the globs select
/// (the directories leading to them included), counted as the archive would count them.
#[derive(Debug, Default)]
pub struct Selection {
    pub paths: std::collections::HashSet<PathBuf>,
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    /// Bytes of the regular files.
    pub bytes: u64,
    /// What was skipped (sockets, FIFOs, devices), for the job log.
    pub notes: Vec<String>,
}

impl Selection {
    /// The manifest's details of the tree, as [`backup`] writes them for an archive.
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "files": self.files,
            "directories": self.directories,
            "symlinks": self.symlinks,
            "bytes_in": self.bytes,
        })
    }
}

/// Walks the tree at `path` with the include and exclude globs (see the module docs) and says
/// what a backup takes of it; `skip` (the staging area, should it lie inside the tree) is never
/// taken. Blocking: call it from `spawn_blocking`.
pub fn select(
    path: &Path,
    include: &[String],
    exclude: &[String],
    skip: &Path,
    stop: &CancellationToken,
) -> Result<Selection, DriverError> {
    let filter = Filter::new(path, include, exclude)?;
    let plan = Plan::walk(path, &filter, skip, stop)?;
    Ok(Selection {
        paths: plan.entries.into_iter().map(|entry| entry.rel).collect(),
        files: plan.files,
        directories: plan.directories,
        symlinks: plan.symlinks,
        bytes: plan.total,
        notes: plan.notes,
    })
}

/// Unpacks an archive written by [`backup`] into `into` (created if missing): contents, modes,
/// mtimes and links. Blocking: call it from `spawn_blocking`. Ownership is not restored (the
/// files belong to whoever runs the restore); entries that would land outside `into` (`..`,
/// absolute paths, through a symbolic link) are refused. Nothing is synced to disk: this is for
/// scratch space; [`restore_in_place`] is the durable restore.
pub fn restore(archive: &Path, into: &Path) -> Result<(), DriverError> {
    unpack::unpack(archive, into, &CancellationToken::new()).map(drop)
}

/// Test-restores an archive written by [`backup`]: unpacks it into `ctx.scratch` (the whole
/// archive read, zstd's checksum verified), compares what came out with what the manifest's
/// `details` say was archived (files, directories, symbolic links), and removes the tree. The
/// live directory is never read or written. Returns what was checked, in words.
pub async fn test_restore(
    archive: &Path,
    details: &serde_json::Value,
    ctx: &Context<'_>,
) -> Result<String, DriverError> {
    let label = super::command::label(ctx);
    let into = ctx.scratch.join("tree");
    ctx.log
        .info(format!(
            "{label}: unpacking the archive into the temporary tree {}",
            into.display()
        ))
        .await;
    let (archive_owned, into_owned, stop) = (archive.to_path_buf(), into.clone(), ctx.stop.clone());
    let unpacked = tokio::task::spawn_blocking(move || {
        let unpacked = unpack::unpack(&archive_owned, &into_owned, &stop);
        let _ = remove::remove_tree(&into_owned);
        unpacked
    })
    .await
    .map_err(|e| DriverError::Failed(format!("{label}: unpacking failed: {e}")))?;
    let unpacked = match unpacked {
        Err(_) if ctx.stop.is_cancelled() => return Err(DriverError::Cancelled),
        other => other?,
    };
    let differences = differences(
        details,
        [unpacked.files, unpacked.directories, unpacked.symlinks],
        "unpacked",
    );
    if !differences.is_empty() {
        return Err(DriverError::Failed(format!(
            "{label}: the archive does not hold what the manifest says: {}",
            differences.join("; ")
        )));
    }
    if let Some(read) = details.get("bytes_in").and_then(serde_json::Value::as_u64)
        && read != unpacked.bytes
    {
        // A file that changed size while it was archived: the backup's log warned then.
        ctx.log
            .warn(format!(
                "{label}: {} of file contents unpacked, {} were read when the backup was taken (a file changed size meanwhile)",
                crate::text::human_bytes(unpacked.bytes),
                crate::text::human_bytes(read)
            ))
            .await;
    }
    Ok(format!(
        "{} files, {} directories, {} symbolic links ({}) unpacked and compared with the manifest",
        unpacked.files,
        unpacked.directories,
        unpacked.symlinks,
        crate::text::human_bytes(unpacked.bytes)
    ))
}

/// How the files, directories and symbolic links found differ from what the manifest's
/// `details` say, in words ("3 files restored, the manifest says 4").
fn differences(details: &serde_json::Value, found: [u64; 3], how: &str) -> Vec<String> {
    ["files", "directories", "symlinks"]
        .into_iter()
        .zip(found)
        .filter_map(
            |(what, count)| match details.get(what).and_then(serde_json::Value::as_u64) {
                Some(expected) if expected != count => {
                    Some(format!("{count} {what} {how}, the manifest says {expected}"))
                }
                _ => None,
            },
        )
        .collect()
}

/// Test-restores a tree the repository restored into scratch: counts what is there and
/// compares it with what the manifest's `details` say was selected, then removes it.
pub async fn check_tree(tree: &Path, details: &serde_json::Value, ctx: &Context<'_>) -> Result<String, DriverError> {
    let label = super::command::label(ctx);
    let (root, stop) = (tree.to_path_buf(), ctx.stop.clone());
    let found = tokio::task::spawn_blocking(move || {
        let found = select(&root, &[], &[], Path::new("/nonexistent"), &stop);
        let _ = remove::remove_tree(&root);
        found
    })
    .await
    .map_err(|e| DriverError::Failed(format!("{label}: counting the restored tree failed: {e}")))??;
    let differences = differences(details, [found.files, found.directories, found.symlinks], "restored");
    if !differences.is_empty() {
        return Err(DriverError::Failed(format!(
            "{label}: the repository's tree does not hold what the manifest says: {}",
            differences.join("; ")
        )));
    }
    Ok(format!(
        "{} files, {} directories, {} symbolic links ({}) restored from the repository and compared with the manifest",
        found.files,
        found.directories,
        found.symlinks,
        crate::text::human_bytes(found.bytes)
    ))
}

/// Unpacks an archive written by [`backup`] into `into` and says what it wrote (see
/// [`restore`]; the `command` driver's verify script reads its output this way).
pub(crate) fn unpack_counting(
    archive: &Path,
    into: &Path,
    stop: &CancellationToken,
) -> Result<unpack::Unpacked, DriverError> {
    unpack::unpack(archive, into, stop)
}

/// Where a restore's new tree comes from.
pub enum TreeSource {
    /// A `files.tar.zst` written by [`backup`] (a backup taken before the repository).
    Archive(PathBuf),
    /// Writes the whole tree into the (new, empty) directory it is given and says how: the
    /// repository's restore of the backup's tree. Blocking.
    Fill(Fill),
}

/// What [`TreeSource::Fill`] calls with the new tree's directory; says what it wrote.
pub type Fill = Box<dyn FnOnce(&Path) -> Result<String, DriverError> + Send>;

/// Restores the tree at `target` from an archive written by [`backup`] (or a tree the
/// repository writes) with the same globs, keeping the old tree until the new one is in
/// place: the archive is unpacked beside `target` ([`unpack`]), what the backup did not select (excluded or not included) is carried
/// over from the old tree by hard links, the new tree is synced to disk (one `syncfs`), then
/// two renames swap the trees (the parent directory is fsynced after them) and the old tree is
/// removed ([`remove`], on several threads). A failure or a cancellation before the swap
/// leaves `target` untouched and nothing beside it.
pub async fn restore_in_place(
    source: TreeSource,
    target: &Path,
    include: &[String],
    exclude: &[String],
    ctx: &Context<'_>,
) -> Result<(), DriverError> {
    let filter = Filter::new(target, include, exclude)?;
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(DriverError::Failed(format!(
            "directory {}: cannot restore the root of the file system",
            target.display()
        )));
    };
    let hidden = |what: &str| parent.join(format!(".{}.steward-{what}-{}", name.to_string_lossy(), ctx.backup_id));
    let (fresh, old) = (hidden("restore"), hidden("old"));
    ctx.log
        .info(format!(
            "directory {}: unpacking the backup beside it",
            target.display()
        ))
        .await;
    let (target_owned, fresh_owned) = (target.to_path_buf(), fresh.clone());
    let stop = ctx.stop.clone();
    let (unpacked, carried) = tokio::task::spawn_blocking(move || -> Result<(String, usize), DriverError> {
        if fresh_owned.exists() {
            remove::remove_tree(&fresh_owned)
                .map_err(DriverError::io(format!("clearing {}", fresh_owned.display())))?;
        }
        let built = (|| {
            let unpacked = match source {
                TreeSource::Archive(archive) => {
                    let unpacked = unpack::unpack(&archive, &fresh_owned, &stop)?;
                    format!(
                        "unpacked {} files ({} bytes), {} directories, {} symbolic links",
                        unpacked.files, unpacked.bytes, unpacked.directories, unpacked.symlinks
                    )
                }
                TreeSource::Fill(fill) => fill(&fresh_owned)?,
            };
            let carried = if target_owned.exists() && !(filter.include.empty && filter.exclude.empty) {
                carry_over(&target_owned, &fresh_owned, Path::new(""), false, &filter)?
            } else {
                0
            };
            if stop.is_cancelled() {
                return Err(DriverError::Cancelled);
            }
            // The new tree reaches the disk before it replaces the old one, or a crash soon
            // after a restore that reported success could leave empty files behind. One syncfs
            // for the whole tree costs one journal commit where an fsync per file costs one
            // each (it also writes out whatever else of that file system is waiting).
            let root =
                File::open(&fresh_owned).map_err(DriverError::io(format!("opening {}", fresh_owned.display())))?;
            nix::unistd::syncfs(&root)
                .map_err(|e| DriverError::io(format!("syncing {} to disk", fresh_owned.display()))(e.into()))?;
            Ok((unpacked, carried))
        })();
        if built.is_err() {
            let _ = remove::remove_tree(&fresh_owned);
        }
        built
    })
    .await
    .map_err(|e| DriverError::Failed(format!("directory {}: unpacking failed: {e}", target.display())))??;
    ctx.log
        .info(format!("directory {}: {unpacked}", target.display()))
        .await;
    if carried > 0 {
        ctx.log
            .info(format!(
                "directory {}: kept {carried} entries the backup does not cover (include/exclude globs)",
                target.display()
            ))
            .await;
    }

    let existed = tokio::fs::try_exists(target).await.unwrap_or(false);
    if existed {
        let leftover = old.clone();
        let _ = tokio::task::spawn_blocking(move || remove::remove_tree(&leftover)).await;
        tokio::fs::rename(target, &old)
            .await
            .map_err(DriverError::io(format!("moving {} aside", target.display())))?;
    }
    if let Err(e) = tokio::fs::rename(&fresh, target).await {
        // Put the old tree back: the target is as it was.
        if existed {
            let _ = tokio::fs::rename(&old, target).await;
        }
        let _ = tokio::fs::remove_dir_all(&fresh).await;
        return Err(DriverError::io(format!(
            "moving the restored tree into {}",
            target.display()
        ))(e));
    }
    // The renames themselves are durable once the parent directory is.
    let parent_synced = match tokio::fs::File::open(parent).await {
        Ok(dir) => dir.sync_all().await,
        Err(e) => Err(e),
    };
    if let Err(e) = parent_synced {
        ctx.log
            .warn(format!(
                "directory {}: the restored tree is in place, but syncing {} failed: {e}",
                target.display(),
                parent.display()
            ))
            .await;
    }
    // Production is back once the swap is done, but the restore step (and so the maintenance
    // window) lasts until the old tree is gone: removed on several threads.
    let removed = if existed {
        let old = old.clone();
        tokio::task::spawn_blocking(move || remove::remove_tree(&old))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
    } else {
        Ok(())
    };
    if let Err(e) = removed {
        ctx.log
            .warn(format!(
                "directory {}: the old tree {} could not be removed: {e}",
                target.display(),
                old.display()
            ))
            .await;
    }
    ctx.log.info(format!("directory {}: restored", target.display())).await;
    Ok(())
}

/// Hard-links into `fresh` what of `old` the backup's globs did not select, so a restore
/// replaces only what the backup holds. Returns how many entries were carried.
fn carry_over(old: &Path, fresh: &Path, rel: &Path, covered: bool, filter: &Filter) -> Result<usize, DriverError> {
    let dir = old.join(rel);
    let listing = fs::read_dir(&dir).map_err(DriverError::io(format!("listing {}", dir.display())))?;
    let mut carried = 0;
    for child in listing {
        let child = child.map_err(DriverError::io(format!("listing {}", dir.display())))?;
        let name = child.file_name();
        let child_rel = rel.join(&name);
        let meta = child
            .metadata()
            .map_err(DriverError::io(format!("reading {}", child.path().display())))?;
        if filter.excluded(&child_rel, &name) {
            link_tree(&child.path(), &fresh.join(&child_rel))?;
            carried += 1;
            continue;
        }
        let selected = covered || filter.included(&child_rel, &name);
        if meta.is_dir() {
            carried += carry_over(old, fresh, &child_rel, selected, filter)?;
        } else if !selected {
            link_tree(&child.path(), &fresh.join(&child_rel))?;
            carried += 1;
        }
    }
    Ok(carried)
}

/// Recreates `from` at `to` with hard links for files, new directories and copied symbolic links.
fn link_tree(from: &Path, to: &Path) -> Result<(), DriverError> {
    let failed = |what: &str| DriverError::io(format!("{what} {} as {}", from.display(), to.display()));
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(failed("keeping"))?;
    }
    let meta = fs::symlink_metadata(from).map_err(failed("reading"))?;
    if meta.is_dir() {
        fs::create_dir_all(to).map_err(failed("keeping"))?;
        for child in fs::read_dir(from).map_err(failed("listing"))? {
            let child = child.map_err(failed("listing"))?;
            link_tree(&child.path(), &to.join(child.file_name()))?;
        }
        fs::set_permissions(to, meta.permissions()).map_err(failed("keeping"))?;
    } else if meta.is_symlink() {
        let link = fs::read_link(from).map_err(failed("reading"))?;
        std::os::unix::fs::symlink(link, to).map_err(failed("keeping"))?;
    } else if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).map_err(failed("copying"))?;
    }
    Ok(())
}

/// The compiled include and exclude globs.
struct Filter {
    include: Patterns,
    exclude: Patterns,
}

/// Globs matched against the whole relative path, and those (without a `/`) matched against a
/// name at any depth.
struct Patterns {
    paths: GlobSet,
    names: GlobSet,
    empty: bool,
}

impl Filter {
    fn new(root: &Path, include: &[String], exclude: &[String]) -> Result<Filter, DriverError> {
        Ok(Filter {
            include: Patterns::new(root, "include", include)?,
            exclude: Patterns::new(root, "exclude", exclude)?,
        })
    }

    fn excluded(&self, rel: &Path, name: &OsStr) -> bool {
        self.exclude.matches(rel, name)
    }

    /// Without include globs everything is included.
    fn included(&self, rel: &Path, name: &OsStr) -> bool {
        self.include.empty || self.include.matches(rel, name)
    }
}

impl Patterns {
    fn new(root: &Path, which: &str, globs: &[String]) -> Result<Patterns, DriverError> {
        let mut paths = GlobSetBuilder::new();
        let mut names = GlobSetBuilder::new();
        for text in globs {
            let pattern = text.trim_start_matches("./").trim_end_matches('/');
            let glob = GlobBuilder::new(pattern).literal_separator(true).build().map_err(|e| {
                DriverError::Failed(format!("directory {}: {which} glob {text:?}: {e}", root.display()))
            })?;
            if !pattern.contains('/') {
                names.add(glob.clone());
            }
            paths.add(glob);
        }
        let build = |set: GlobSetBuilder| {
            set.build()
                .map_err(|e| DriverError::Failed(format!("directory {}: {which} globs: {e}", root.display())))
        };
        Ok(Patterns {
            paths: build(paths)?,
            names: build(names)?,
            empty: globs.is_empty(),
        })
    }

    fn matches(&self, rel: &Path, name: &OsStr) -> bool {
        !self.empty && (self.paths.is_match(rel) || self.names.is_match(Path::new(name)))
    }
}

/// What the first walk found.
#[derive(Debug, Default)]
struct Plan {
    entries: Vec<Entry>,
    /// Bytes of the regular files: the progress bar's total.
    total: u64,
    files: u64,
    directories: u64,
    symlinks: u64,
    /// Things skipped, for the job log.
    notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Directory,
    File,
    Symlink,
}

#[derive(Debug)]
struct Entry {
    /// Relative to the root.
    rel: PathBuf,
    kind: Kind,
}

impl Plan {
    /// Lists what is to be archived, in a stable (byte-wise sorted) order. `out_dir` is never
    /// archived, should it lie inside the tree: the archive would contain itself.
    fn walk(root: &Path, filter: &Filter, out_dir: &Path, stop: &CancellationToken) -> Result<Plan, DriverError> {
        let meta = match fs::metadata(root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DriverError::Failed(format!(
                    "directory {} does not exist",
                    root.display()
                )));
            }
            Err(e) => return Err(DriverError::io(format!("directory {}", root.display()))(e)),
        };
        if !meta.is_dir() {
            return Err(DriverError::Failed(format!(
                "directory {} is not a directory",
                root.display()
            )));
        }
        let out_id = fs::metadata(out_dir).ok().map(|m| (m.dev(), m.ino()));
        let mut plan = Plan::default();
        plan.descend(root, Path::new(""), false, filter, out_id, stop)?;
        for entry in &plan.entries {
            match entry.kind {
                Kind::Directory => plan.directories += 1,
                Kind::File => plan.files += 1,
                Kind::Symlink => plan.symlinks += 1,
            }
        }
        Ok(plan)
    }

    /// Adds what is below `root/rel`; `covered` when an ancestor matched an include glob.
    /// Returns whether anything was added.
    fn descend(
        &mut self,
        root: &Path,
        rel: &Path,
        covered: bool,
        filter: &Filter,
        out_id: Option<(u64, u64)>,
        stop: &CancellationToken,
    ) -> Result<bool, DriverError> {
        if stop.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        let dir = root.join(rel);
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            // Removed since its parent was listed.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !rel.as_os_str().is_empty() => return Ok(false),
            Err(e) => return Err(DriverError::io(format!("listing {}", dir.display()))(e)),
        };
        let mut children = listing
            .collect::<Result<Vec<_>, _>>()
            .map_err(DriverError::io(format!("listing {}", dir.display())))?;
        children.sort_by_key(|child| child.file_name());
        let mut added = false;
        for child in children {
            let name = child.file_name();
            let child_rel = rel.join(&name);
            if filter.excluded(&child_rel, &name) {
                continue;
            }
            // `DirEntry::metadata` does not follow symbolic links.
            let meta = match child.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(DriverError::io(format!("reading {}", child.path().display()))(e)),
            };
            let selected = covered || filter.included(&child_rel, &name);
            let file_type = meta.file_type();
            if file_type.is_dir() {
                if out_id == Some((meta.dev(), meta.ino())) {
                    self.notes.push(format!(
                        "directory {}: not archiving {}, the backup's own output directory",
                        root.display(),
                        child.path().display()
                    ));
                    continue;
                }
                self.entries.push(Entry {
                    rel: child_rel.clone(),
                    kind: Kind::Directory,
                });
                let below = self.descend(root, &child_rel, selected, filter, out_id, stop)?;
                if selected || below {
                    added = true;
                } else {
                    // Neither included nor leading to anything included: nothing was pushed
                    // after it, so it is the last entry.
                    self.entries.pop();
                }
            } else if !selected {
                continue;
            } else if file_type.is_file() {
                self.total += meta.len();
                self.entries.push(Entry {
                    rel: child_rel,
                    kind: Kind::File,
                });
                added = true;
            } else if file_type.is_symlink() {
                self.entries.push(Entry {
                    rel: child_rel,
                    kind: Kind::Symlink,
                });
                added = true;
            } else {
                self.notes.push(format!(
                    "directory {}: skipping {}: not a file, directory or symbolic link",
                    root.display(),
                    child.path().display()
                ));
            }
        }
        Ok(added)
    }
}

/// Writes the tar + zstd stream of `entries` to `out`; returns its size and SHA-256.
fn write_archive(
    root: &Path,
    entries: &[Entry],
    out: &Path,
    stop: &CancellationToken,
    read: &AtomicU64,
    warnings: &mpsc::UnboundedSender<String>,
) -> Result<(u64, String), DriverError> {
    let writing = || DriverError::io(format!("writing {}", out.display()));
    let file = File::create(out).map_err(writing())?;
    let mut encoder = zstd::Encoder::new(BackgroundWriter::new(file), ZSTD_LEVEL).map_err(writing())?;
    encoder.include_checksum(true).map_err(writing())?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    if let Err(e) = encoder.set_parameter(zstd::zstd_safe::CParameter::NbWorkers(workers)) {
        let _ = warnings.send(format!("zstd without worker threads: {e}"));
    }
    let mut tar = tar::Builder::new(encoder);
    let mut buffer = vec![0u8; READ_BUFFER];
    let vanished = |path: &Path| {
        let _ = warnings.send(format!("{} was removed while archiving; skipped", path.display()));
    };
    for entry in entries {
        if stop.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        let path = root.join(&entry.rel);
        let reading = || DriverError::io(format!("reading {}", path.display()));
        let mut header = tar::Header::new_gnu();
        match entry.kind {
            Kind::Directory | Kind::Symlink => {
                let meta = match fs::symlink_metadata(&path) {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        vanished(&path);
                        continue;
                    }
                    Err(e) => return Err(reading()(e)),
                };
                header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                header.set_size(0);
                if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).map_err(reading())?;
                    tar.append_link(&mut header, &entry.rel, &target).map_err(writing())?;
                } else if meta.is_dir() {
                    tar.append_data(&mut header, &entry.rel, io::empty())
                        .map_err(writing())?;
                } else {
                    let _ = warnings.send(format!("{} changed type while archiving; skipped", path.display()));
                }
            }
            Kind::File => {
                let mut file = match File::open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        vanished(&path);
                        continue;
                    }
                    Err(e) => return Err(reading()(e)),
                };
                let meta = file.metadata().map_err(reading())?;
                if !meta.is_file() {
                    let _ = warnings.send(format!("{} changed type while archiving; skipped", path.display()));
                    continue;
                }
                header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                // The header alone (an empty body adds no padding); the body follows.
                tar.append_data(&mut header, &entry.rel, io::empty())
                    .map_err(writing())?;
                copy_body(
                    &mut file,
                    tar.get_mut(),
                    meta.len(),
                    &mut buffer,
                    stop,
                    read,
                    &path,
                    out,
                    warnings,
                )?;
            }
        }
    }
    let encoder = tar.into_inner().map_err(writing())?;
    let background = encoder.finish().map_err(writing())?;
    let (file, size, sha256) = background.finish().map_err(writing())?;
    file.sync_all().map_err(writing())?;
    Ok((size, sha256))
}

/// Copies exactly `size` bytes of `src` (and the tar padding) to `dst`, whatever the file does
/// meanwhile, checking for cancellation every [`CHECK_EVERY`] bytes.
#[allow(clippy::too_many_arguments)]
fn copy_body(
    src: &mut impl Read,
    dst: &mut impl Write,
    size: u64,
    buffer: &mut [u8],
    stop: &CancellationToken,
    read: &AtomicU64,
    path: &Path,
    out: &Path,
    warnings: &mpsc::UnboundedSender<String>,
) -> Result<(), DriverError> {
    let writing = || DriverError::io(format!("writing {}", out.display()));
    let mut left = size;
    let mut unchecked = 0u64;
    while left > 0 {
        let want = left.min(buffer.len() as u64) as usize;
        let n = match src.read(&mut buffer[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DriverError::io(format!("reading {}", path.display()))(e)),
        };
        if n == 0 {
            let _ = warnings.send(format!(
                "{} shrank while archiving: the missing {left} of {size} bytes were stored as zeros",
                path.display()
            ));
            buffer.fill(0);
            while left > 0 {
                let n = left.min(buffer.len() as u64) as usize;
                dst.write_all(&buffer[..n]).map_err(writing())?;
                left -= n as u64;
            }
            break;
        }
        dst.write_all(&buffer[..n]).map_err(writing())?;
        left -= n as u64;
        read.fetch_add(n as u64, Ordering::Relaxed);
        unchecked += n as u64;
        if unchecked >= CHECK_EVERY {
            unchecked = 0;
            if stop.is_cancelled() {
                return Err(DriverError::Cancelled);
            }
        }
    }
    if size > 0 && matches!(src.read(&mut buffer[..1]), Ok(n) if n > 0) {
        let _ = warnings.send(format!(
            "{} grew while archiving: its first {size} bytes were stored",
            path.display()
        ));
    }
    let padding = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
    dst.write_all(&[0u8; TAR_BLOCK as usize][..padding as usize])
        .map_err(writing())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{
        os::unix::{
            ffi::OsStrExt,
            fs::{PermissionsExt, symlink},
        },
        time::{Instant, UNIX_EPOCH},
    };

    use super::*;
    use crate::drivers::{
        sha256_of,
        testing::{Harness, tree_state as snapshot},
    };

    /// Backs up `root` with the given globs into the harness's output directory.
    async fn backup_with(
        harness: &Harness,
        root: &Path,
        include: &[&str],
        exclude: &[&str],
    ) -> Result<Artifact, DriverError> {
        let include: Vec<String> = include.iter().map(|s| s.to_string()).collect();
        let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        backup(root, &include, &exclude, harness.out.path(), &harness.ctx()).await
    }

    fn write(path: &Path, content: &[u8], mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn set_mtime(path: &Path, seconds: u64) {
        let time = UNIX_EPOCH + Duration::from_secs(seconds);
        File::open(path).unwrap().set_modified(time).unwrap();
    }

    /// The entry names in an archive.
    fn listing(archive: &Path) -> Vec<String> {
        let decoder = zstd::Decoder::new(File::open(archive).unwrap()).unwrap();
        let mut tar = tar::Archive::new(decoder);
        let mut names: Vec<String> = tar
            .entries()
            .unwrap()
            .map(|entry| {
                entry
                    .unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        names.sort();
        names
    }

    /// A tree with every kind of entry and name the driver promises to keep.
    fn odd_tree(root: &Path) {
        write(&root.join("plain.txt"), b"plain\n", 0o644);
        write(&root.join("with space.txt"), b"space", 0o600);
        write(&root.join("ünïcødé ☃.txt"), "snow ☃".as_bytes(), 0o644);
        write(&root.join("new\nline.txt"), b"newline", 0o644);
        write(
            &root.join(OsStr::from_bytes(b"latin1-\xe9t\xe9.bin")),
            &[0, 1, 2, 255],
            0o640,
        );
        write(&root.join("bin/run.sh"), b"#!/bin/sh\necho hi\n", 0o755);
        write(&root.join("bin/setuid"), b"x", 0o4750);
        // Longer than tar's 100-byte name field, in a deep path: GNU long names.
        let deep = root
            .join("a".repeat(60))
            .join("b".repeat(60))
            .join(format!("{}.txt", "c".repeat(200)));
        write(&deep, b"long", 0o644);
        // Not a multiple of 512, several read buffers long.
        let big: Vec<u8> = (0..(3 * READ_BUFFER + 123)).map(|i| (i * 31 % 251) as u8).collect();
        write(&root.join("data/big.bin"), &big, 0o644);
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("plain.txt", root.join("link")).unwrap();
        symlink("does/not/exist", root.join("dangling")).unwrap();
        symlink("/etc", root.join("absolute")).unwrap();
        symlink(format!("{}/target", "t".repeat(150)), root.join("long-target")).unwrap();
        // A link's own mtime, not its target's.
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &root.join("link"),
            &nix::sys::time::TimeSpec::UTIME_OMIT,
            &nix::sys::time::TimeSpec::new(1_300_000_000, 0),
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        set_mtime(&root.join("plain.txt"), 1_000_000_000);
        set_mtime(&root.join("bin/run.sh"), 1_234_567_890);
        // Directories last: adding a child changes a directory's mtime.
        set_mtime(&root.join("empty"), 946_684_800);
        set_mtime(&root.join("bin"), 1_100_000_000);
    }

    #[tokio::test]
    async fn a_tree_with_odd_names_links_and_modes_comes_back_the_same() {
        let source = tempfile::tempdir().unwrap();
        odd_tree(source.path());
        let harness = Harness::new();

        let artifact = backup_with(&harness, source.path(), &[], &[]).await.unwrap();

        assert_eq!(artifact.file, PathBuf::from(ARCHIVE_NAME));
        assert_eq!(artifact.details["symlinks"], 4);
        assert_eq!(artifact.details["directories"], 5, "{}", artifact.details);
        assert_eq!(artifact.details["files"], 9, "{}", artifact.details);
        let restored = tempfile::tempdir().unwrap();
        restore(&harness.out.path().join(ARCHIVE_NAME), restored.path()).unwrap();
        let (before, after) = (snapshot(source.path()), snapshot(restored.path()));
        assert_eq!(before.len(), 18, "{:?}", before.keys());
        assert_eq!(before, after);
        // The progress bar ends full.
        let total = 6 + 5 + "snow ☃".len() + 7 + 4 + 18 + 1 + 4 + 3 * READ_BUFFER + 123;
        let last = *harness.progress.lock().unwrap().last().unwrap();
        assert_eq!(last, (total as u64, Some(total as u64)));
        let lines: Vec<String> = harness.logged.lock().unwrap().iter().map(|(_, l)| l.clone()).collect();
        assert!(lines.iter().any(|l| l.contains("9 files")), "{lines:?}");
    }

    #[tokio::test]
    async fn a_restore_in_place_brings_back_the_tree_and_keeps_what_the_globs_left_out() {
        let parent = tempfile::tempdir().unwrap();
        let site = parent.path().join("site");
        fs::create_dir_all(site.join("sub")).unwrap();
        fs::create_dir_all(site.join("cache")).unwrap();
        fs::write(site.join("a.txt"), "original").unwrap();
        fs::write(site.join("sub/b.txt"), "bee").unwrap();
        fs::write(site.join("cache/x.tmp"), "cached").unwrap();
        symlink("sub/b.txt", site.join("link")).unwrap();
        let harness = Harness::new();
        let artifact = backup_with(&harness, &site, &[], &["cache"]).await.unwrap();
        let archive = harness.out.path().join(&artifact.file);
        let backed_up = snapshot(&site);

        // Changed, deleted, added after the backup; the cache (excluded) changes too.
        fs::write(site.join("a.txt"), "changed").unwrap();
        fs::remove_file(site.join("sub/b.txt")).unwrap();
        fs::write(site.join("new.txt"), "new").unwrap();
        fs::write(site.join("cache/x.tmp"), "cached later").unwrap();
        let cache_now = fs::read(site.join("cache/x.tmp")).unwrap();

        restore_in_place(
            TreeSource::Archive(archive.clone()),
            &site,
            &[],
            &["cache".to_string()],
            &harness.ctx(),
        )
        .await
        .unwrap();
        let mut restored = snapshot(&site);
        // The excluded cache is the one of now, not of the backup (which does not hold it).
        let cache = restored.remove(Path::new("cache/x.tmp")).unwrap();
        assert_eq!(cache.3, cache_now);
        restored.remove(Path::new("cache"));
        let mut expected = backed_up.clone();
        expected.remove(Path::new("cache/x.tmp"));
        expected.remove(Path::new("cache"));
        assert_eq!(restored, expected);
        assert!(!site.join("new.txt").exists());
        // Nothing left beside it.
        let beside: Vec<_> = fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, vec![std::ffi::OsString::from("site")]);

        // A damaged archive: the tree is untouched.
        let damaged = harness.scratch.path().join("damaged.tar.zst");
        let bytes = fs::read(&archive).unwrap();
        fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
        fs::write(site.join("after.txt"), "after").unwrap();
        let before = snapshot(&site);
        assert!(
            restore_in_place(TreeSource::Archive(damaged.clone()), &site, &[], &[], &harness.ctx())
                .await
                .is_err()
        );
        assert_eq!(snapshot(&site), before);
        let beside: Vec<_> = fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, vec![std::ffi::OsString::from("site")]);
    }

    #[tokio::test]
    async fn a_cancelled_restore_leaves_the_tree_as_it_was() {
        let parent = tempfile::tempdir().unwrap();
        let site = parent.path().join("site");
        odd_tree(&site);
        let harness = Harness::new();
        let artifact = backup_with(&harness, &site, &[], &[]).await.unwrap();
        fs::write(site.join("plain.txt"), "changed since").unwrap();
        let before = snapshot(&site);
        harness.stop.cancel();

        let error = restore_in_place(
            TreeSource::Archive(harness.out.path().join(&artifact.file)),
            &site,
            &[],
            &[],
            &harness.ctx(),
        )
        .await
        .unwrap_err();

        assert!(matches!(error, DriverError::Cancelled), "{error}");
        assert_eq!(snapshot(&site), before);
        let beside: Vec<_> = fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, vec![std::ffi::OsString::from("site")]);
    }

    #[tokio::test]
    async fn the_artifact_checksum_is_the_files_checksum() {
        let source = tempfile::tempdir().unwrap();
        odd_tree(source.path());
        let harness = Harness::new();

        let artifact = backup_with(&harness, source.path(), &[], &[]).await.unwrap();

        let (size, sha256) = sha256_of(&harness.out.path().join(&artifact.file)).await.unwrap();
        assert_eq!((artifact.size, artifact.sha256), (size, sha256));
        assert!(artifact.tool.unwrap().starts_with("zstd 1."));
    }

    fn filter_tree(root: &Path) {
        for name in [
            "a.txt",
            "a.tmp",
            "logs/x.log",
            "logs/keep/y.txt",
            "conf/app.toml",
            "conf/sub/deep.toml",
            "conf/sub/deep.tmp",
            "node_modules/pkg/index.js",
            "src/node_modules/x.js",
        ] {
            write(&root.join(name), name.as_bytes(), 0o644);
        }
        fs::create_dir_all(root.join("conf/empty")).unwrap();
    }

    #[tokio::test]
    async fn include_and_exclude_globs_choose_what_is_archived() {
        let source = tempfile::tempdir().unwrap();
        filter_tree(source.path());
        let cases: [(&[&str], &[&str], &[&str]); 4] = [
            (
                &[],
                &["*.tmp", "node_modules"],
                &[
                    "a.txt",
                    "conf",
                    "conf/app.toml",
                    "conf/empty",
                    "conf/sub",
                    "conf/sub/deep.toml",
                    "logs",
                    "logs/keep",
                    "logs/keep/y.txt",
                    "logs/x.log",
                    "src",
                ],
            ),
            (
                &["conf"],
                &["*.tmp"],
                &["conf", "conf/app.toml", "conf/empty", "conf/sub", "conf/sub/deep.toml"],
            ),
            (&["**/*.toml"], &["conf/sub"], &["conf", "conf/app.toml"]),
            (&["logs/*"], &["logs/keep/"], &["logs", "logs/x.log"]),
        ];
        for (include, exclude, expected) in cases {
            let harness = Harness::new();
            backup_with(&harness, source.path(), include, exclude).await.unwrap();
            let names = listing(&harness.out.path().join(ARCHIVE_NAME));
            assert_eq!(names, expected, "include {include:?} exclude {exclude:?}");
        }
    }

    #[tokio::test]
    async fn a_bad_glob_names_the_directory_and_the_glob() {
        let source = tempfile::tempdir().unwrap();
        let harness = Harness::new();
        let error = backup_with(&harness, source.path(), &["a[b"], &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&source.path().display().to_string()) && error.contains("a[b"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_missing_directory_is_a_clear_error() {
        let harness = Harness::new();
        let error = backup_with(&harness, Path::new("/no/such/dir"), &[], &[])
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "directory /no/such/dir does not exist");
        let file = tempfile::NamedTempFile::new().unwrap();
        let error = backup_with(&harness, file.path(), &[], &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(error.ends_with("is not a directory"), "{error}");
    }

    #[tokio::test]
    async fn the_output_directory_inside_the_tree_is_not_archived() {
        let source = tempfile::tempdir().unwrap();
        write(&source.path().join("a.txt"), b"a", 0o644);
        let out = source.path().join("backups/1");
        fs::create_dir_all(&out).unwrap();
        let harness = Harness::new();
        backup(source.path(), &[], &[], &out, &harness.ctx()).await.unwrap();
        assert_eq!(listing(&out.join(ARCHIVE_NAME)), ["a.txt", "backups"]);
    }

    #[tokio::test]
    async fn a_cancelled_backup_stops_and_leaves_no_archive() {
        let source = tempfile::tempdir().unwrap();
        odd_tree(source.path());
        let harness = Harness::new();
        harness.stop.cancel();
        let error = backup_with(&harness, source.path(), &[], &[]).await.unwrap_err();
        assert!(matches!(error, DriverError::Cancelled), "{error}");
        assert!(!harness.out.path().join(ARCHIVE_NAME).exists());
    }

    #[test]
    fn cancellation_is_noticed_inside_a_big_file() {
        let stop = CancellationToken::new();
        stop.cancel();
        let read = AtomicU64::new(0);
        let (warnings, _) = mpsc::unbounded_channel();
        let mut source = io::repeat(7).take(64 << 20);
        let mut buffer = vec![0u8; READ_BUFFER];
        let result = copy_body(
            &mut source,
            &mut io::sink(),
            64 << 20,
            &mut buffer,
            &stop,
            &read,
            Path::new("big"),
            Path::new("out"),
            &warnings,
        );
        assert!(matches!(result, Err(DriverError::Cancelled)));
        assert_eq!(read.load(Ordering::Relaxed), CHECK_EVERY);
    }

    #[test]
    fn a_file_that_changes_size_keeps_the_size_in_its_header() {
        let stop = CancellationToken::new();
        let read = AtomicU64::new(0);
        let (warnings, mut notes) = mpsc::unbounded_channel();
        let mut buffer = vec![0u8; 64];
        for (actual, header) in [(100u64, 700u64), (900, 700)] {
            let mut out = Vec::new();
            copy_body(
                &mut io::repeat(1).take(actual),
                &mut out,
                header,
                &mut buffer,
                &stop,
                &read,
                Path::new("moving"),
                Path::new("out"),
                &warnings,
            )
            .unwrap();
            assert_eq!(out.len(), 1024, "700 bytes padded to two blocks");
            assert_eq!(out.iter().filter(|&&b| b == 1).count() as u64, actual.min(header));
            let note = notes.try_recv().unwrap();
            assert!(note.starts_with("moving"), "{note}");
        }
    }

    /// 1 GiB of half-random data through backup and restore, with the throughput printed
    /// (`--nocapture`). About 20 s in the test build (zstd and sha2 are optimised there too);
    /// needs about 2.6 GiB of temporary disk, freed at the end.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_one_gib_file_round_trips() {
        let source = tempfile::tempdir().unwrap();
        let path = source.path().join("big.bin");
        {
            let mut file = io::BufWriter::new(File::create(&path).unwrap());
            let mut state = 0x2545_f491_4f6c_dd1du64;
            let mut block = vec![0u8; 1 << 20];
            for _ in 0..1024 {
                for (i, chunk) in block.chunks_mut(8).enumerate() {
                    // Half random, half text-like, so zstd has something to do.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let word = if i % 2 == 0 { state } else { 0x6f6c_6c65_6820_6120 };
                    chunk.copy_from_slice(&word.to_le_bytes());
                }
                file.write_all(&block).unwrap();
            }
            file.flush().unwrap();
        }
        let harness = Harness::new();
        let started = Instant::now();
        let artifact = backup_with(&harness, source.path(), &[], &[]).await.unwrap();
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "1 GiB in {seconds:.2} s ({:.0} MiB/s), archive {} MiB",
            1024.0 / seconds,
            artifact.size >> 20
        );
        let restored = tempfile::tempdir().unwrap();
        restore(&harness.out.path().join(ARCHIVE_NAME), restored.path()).unwrap();
        let original = sha256_of(&path).await.unwrap();
        assert_eq!(sha256_of(&restored.path().join("big.bin")).await.unwrap(), original);
    }
}
