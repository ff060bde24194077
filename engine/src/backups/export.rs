//! Export and import: one backup as one portable file, to move it between instances (separate
//! databases, separate repositories) or to keep it somewhere no Steward and no restic is needed
//! to read it.
//!
//! The file is a plain tar archive holding `<backup id>/manifest.json` and every artifact in
//! the standard formats Steward wrote before the repository: a directory as `files.tar.zst`
//! (tar + zstd), a PostgreSQL dump as `database.dump` (`pg_restore` reads it), a MySQL dump as
//! SQL, a SQLite copy as `database.sqlite.zst`, a script's output as `output.tar.zst`. The
//! manifest gives each file's size and SHA-256, so `sha256sum` checks it by hand.
//!
//! An import reads the whole file into a work directory first and checks every artifact
//! against the manifest; one that differs refuses the import whole, before anything is written
//! to the repository or the catalog. A directory's archive is unpacked and stored as a tree, as
//! a backup stores it, so the imported backup deduplicates against this instance's own.

use std::{
    fs,
    path::{Component, Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64},
    },
};

use serde_json::json;

use super::{BackupError, row_of};
use crate::{
    Engine,
    accounts::Actor,
    audit::{self, Outcome},
    db::{backups as rows, now_ms, repository_use::Mode},
    drivers::{self, Context, directory},
    manifest::{MANIFEST_VERSION, Manifest, Stored},
    output::JobLog,
    repository::{BackupLabels, Part},
    storage::{BackupPath, MANIFEST},
};

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub file: PathBuf,
    pub bytes: u64,
    pub artifacts: usize,
}

fn failed(what: impl std::fmt::Display) -> BackupError {
    BackupError::Storage(what.to_string())
}

/// A work directory under the data directory, removed when dropped.
struct Work(PathBuf);

impl Work {
    fn new(engine: &Engine, what: &str) -> Result<Work, BackupError> {
        let dir = engine
            .config()
            .data_dir
            .join(format!(".{what}-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&dir).map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Work(dir))
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = directory::remove_tree(&self.0);
    }
}

/// A driver context for work outside a job: its log goes to Steward's log.
async fn with_context<T>(scratch: &Path, backup_id: &str, work: impl AsyncFnOnce(&Context<'_>) -> T) -> T {
    let (log, mut lines) = JobLog::channel();
    let drain = tokio::spawn(async move {
        while let Some((level, line)) = lines.recv().await {
            tracing::debug!(level = level.as_str(), "{line}");
        }
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let ignore = |_: u64, _: Option<u64>| {};
    let ctx = Context {
        environment: "",
        resource: "",
        backup_id,
        description: "",
        log: &log,
        stop: &stop,
        progress: &ignore,
        scratch,
        tool_env: &[],
        grace: std::time::Duration::from_secs(10),
    };
    let result = work(&ctx).await;
    drop(log);
    let _ = drain.await;
    result
}

impl Engine {
    /// Writes backup `id` to `to` as one portable tar file (see the module docs), audited as
    /// `backup.export`. `to` appears only when complete.
    pub async fn export_backup(&self, actor: &Actor, id: &str, to: &Path) -> Result<Exported, BackupError> {
        let backup = self
            .backup(id)
            .await?
            .ok_or_else(|| BackupError::NotFound(id.to_string()))?;
        let manifest = self.stored_manifest(&backup).await.map_err(failed)?;
        let work = Work::new(self, "export")?;
        let out = work.0.join("out");
        let mut exported = Vec::new();
        for artifact in &manifest.artifacts {
            let scratch = work.0.join("scratch").join(&artifact.resource);
            fs::create_dir_all(&scratch).map_err(|e| failed(format!("cannot create {}: {e}", scratch.display())))?;
            let fetched = self
                .fetch_artifact(&manifest, artifact, &scratch)
                .await
                .map_err(failed)?;
            let mut artifact = artifact.clone();
            if artifact.tree {
                // A tree leaves as the archive the directory driver writes.
                let into = out.join(&artifact.resource);
                fs::create_dir_all(&into).map_err(|e| failed(format!("cannot create {}: {e}", into.display())))?;
                let packed = with_context(&scratch, id, async |ctx| {
                    directory::backup(&fetched, &[], &[], &into, ctx).await
                })
                .await
                .map_err(|e| failed(format!("{}: cannot pack the tree: {e}", artifact.resource)))?;
                artifact.file = Path::new(&artifact.resource).join(&packed.file).display().to_string();
                artifact.size = packed.size;
                artifact.sha256 = packed.sha256;
                artifact.tool = packed.tool;
                artifact.tree = false;
            } else {
                let target = out.join(&artifact.file);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| failed(format!("cannot create {}: {e}", parent.display())))?;
                }
                tokio::fs::copy(&fetched, &target)
                    .await
                    .map_err(|e| failed(format!("cannot copy {}: {e}", artifact.file)))?;
                let (size, sha256) = drivers::sha256_of(&target)
                    .await
                    .map_err(|e| failed(format!("cannot read {} back: {e}", artifact.file)))?;
                if size != artifact.size || sha256 != artifact.sha256 {
                    return Err(failed(format!(
                        "{} does not match its manifest (the backup is damaged): not exported",
                        artifact.file
                    )));
                }
            }
            // A restored tree can be large: removed off the async threads.
            let _ = tokio::task::spawn_blocking(move || directory::remove_tree(&scratch)).await;
            exported.push(artifact);
        }
        let portable = Manifest {
            artifacts: exported,
            stored: Stored::Files,
            version: MANIFEST_VERSION,
            ..manifest
        };
        let json = portable
            .to_json()
            .map_err(|e| failed(format!("cannot write the manifest: {e}")))?;
        fs::write(out.join(MANIFEST), &json).map_err(|e| failed(format!("cannot write the manifest: {e}")))?;
        let (out_owned, to_owned, id_owned) = (out.clone(), to.to_path_buf(), id.to_string());
        let bytes = tokio::task::spawn_blocking(move || write_tar(&out_owned, &id_owned, &to_owned))
            .await
            .map_err(|e| failed(format!("writing {} stopped: {e}", to.display())))?
            .map_err(|e| failed(format!("cannot write {}: {e}", to.display())))?;
        audit::record(
            self.db().pool(),
            &actor.event("backup.export", Some(id), Outcome::Ok).with_detail(json!({
                "environment": backup.environment,
                "file": to.display().to_string(),
                "bytes": bytes,
            })),
        )
        .await?;
        Ok(Exported {
            file: to.to_path_buf(),
            bytes,
            artifacts: portable.artifacts.len(),
        })
    }

    /// Imports an export into this instance's repository and catalog, into `environment` (by
    /// default the one the backup was taken of; it must be configured here), audited as
    /// `backup.import`. Every checksum is checked first: a file that differs refuses it whole.
    pub async fn import_backup(
        &self,
        actor: &Actor,
        from: &Path,
        environment: Option<&str>,
    ) -> Result<Manifest, BackupError> {
        let work = Work::new(self, "import")?;
        let (from_owned, into) = (from.to_path_buf(), work.0.join("in"));
        let top = tokio::task::spawn_blocking(move || read_tar(&from_owned, &into))
            .await
            .map_err(|e| failed(format!("reading {} stopped: {e}", from.display())))?
            .map_err(|e| failed(format!("{} is not a Steward export: {e}", from.display())))?;
        let root = work.0.join("in").join(&top);
        let bytes = fs::read(root.join(MANIFEST))
            .map_err(|e| failed(format!("{} holds no {top}/{MANIFEST}: {e}", from.display())))?;
        let mut manifest = Manifest::from_json(&bytes).map_err(failed)?;
        if manifest.id != top {
            return Err(failed(format!(
                "the manifest names backup {}, the file's folder is {top}",
                manifest.id
            )));
        }
        BackupPath::new(&manifest.environment, &manifest.id).map_err(|e| failed(e.to_string()))?;
        // Every artifact as the manifest says, or nothing is imported.
        let mut problems = Vec::new();
        for artifact in &manifest.artifacts {
            let path = safe_join(&root, &artifact.file).map_err(failed)?;
            match drivers::sha256_of(&path).await {
                Err(e) => problems.push(format!("{}: {e}", artifact.file)),
                Ok((size, sha256)) if size != artifact.size || sha256 != artifact.sha256 => problems.push(format!(
                    "{}: {size} bytes with another checksum than the manifest's (changed or damaged)",
                    artifact.file
                )),
                Ok(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(failed(format!(
                "{} was not imported, it does not match its manifest: {}",
                from.display(),
                problems.join("; ")
            )));
        }
        let environment = environment.unwrap_or(&manifest.environment).to_string();
        if self.config().environment(&environment).is_none() {
            return Err(failed(format!(
                "there is no environment \"{environment}\" here: import it into one with --environment"
            )));
        }
        if rows::get(self.db().pool(), &manifest.id).await?.is_some() {
            return Err(failed(format!("backup {} is already in this catalog", manifest.id)));
        }
        let original_environment = std::mem::replace(&mut manifest.environment, environment.clone());

        // Trees go into the repository as trees; the rest as files.
        let parts_dir = work.0.join("parts");
        let mut parts = Vec::new();
        for artifact in &mut manifest.artifacts {
            let file = safe_join(&root, &artifact.file).map_err(failed)?;
            let part = parts_dir.join(&artifact.resource);
            if artifact.driver == "directory" && artifact.file.ends_with(".tar.zst") {
                let (archive, tree) = (file.clone(), part.clone());
                tokio::task::spawn_blocking(move || directory::restore(&archive, &tree))
                    .await
                    .map_err(|e| failed(format!("unpacking {} stopped: {e}", artifact.file)))?
                    .map_err(|e| failed(format!("cannot unpack {}: {e}", artifact.file)))?;
                artifact.file = artifact.resource.clone();
                artifact.sha256 = String::new();
                artifact.tree = true;
                if let Some(bytes) = artifact.details.get("bytes_in").and_then(serde_json::Value::as_u64) {
                    artifact.size = bytes;
                }
            } else {
                fs::create_dir_all(&part).map_err(|e| failed(format!("cannot create {}: {e}", part.display())))?;
                let name = file.file_name().unwrap_or_default();
                fs::rename(&file, part.join(name))
                    .map_err(|e| failed(format!("cannot stage {}: {e}", artifact.file)))?;
            }
            parts.push(Part {
                name: artifact.resource.clone(),
                source: part,
                keep: None,
            });
        }
        manifest.stored = Stored::Repository;
        manifest.version = MANIFEST_VERSION;
        let json = manifest
            .to_json()
            .map_err(|e| failed(format!("cannot write the manifest: {e}")))?;
        let manifest_file = work.0.join(MANIFEST);
        fs::write(&manifest_file, &json).map_err(|e| failed(format!("cannot write the manifest: {e}")))?;
        // No prune may run while the import writes (it would take the new data, not yet in any
        // snapshot, for garbage): the import uses the repository as a backup job does.
        let user = -i64::from(uuid::Uuid::new_v4().as_u128() as u32 >> 1).max(1);
        let (log, _lines) = JobLog::channel();
        self.use_repository(user, Mode::Use, &tokio_util::sync::CancellationToken::new(), &log)
            .await
            .map_err(|why| failed(why.unwrap_or_else(|| "stopped".into())))?;
        let (labels_env, labels_id, labels_json) = (environment.clone(), manifest.id.clone(), json.clone());
        let written = self
            .with_repository(true, move |repo| {
                repo.write_backup(
                    &BackupLabels {
                        environment: &labels_env,
                        backup_id: &labels_id,
                        manifest: &labels_json,
                    },
                    parts,
                    &manifest_file,
                    &Arc::new(AtomicBool::new(false)),
                    &Arc::new(AtomicU64::new(0)),
                )
            })
            .await;
        self.release_repository(user).await;
        written.map_err(|e| failed(format!("storing the imported backup failed: {e}")))?;
        let row = row_of(&manifest, &json, None, Some(now_ms()));
        let mut tx = self.db().begin_write().await?;
        rows::upsert(&mut *tx, &row).await?;
        rows::record_usage(&mut *tx, &environment, now_ms(), Some(&row.id)).await?;
        audit::record(
            &mut *tx,
            &actor
                .event("backup.import", Some(&manifest.id), Outcome::Ok)
                .with_detail(json!({
                    "environment": environment,
                    "exported_from": original_environment,
                    "file": from.display().to_string(),
                    "size": row.total_size,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(manifest)
    }
}

/// `base/rel` when `rel` is a plain relative path (no `..`, not absolute).
fn safe_join(base: &Path, rel: &str) -> Result<PathBuf, String> {
    let path = Path::new(rel);
    if path.as_os_str().is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("\"{rel}\" is not a file inside the export"));
    }
    Ok(base.join(path))
}

/// Writes `dir`'s files into a tar at `to` under `top/` (through `to.partial`, renamed when
/// complete and synced). Returns the file's size.
fn write_tar(dir: &Path, top: &str, to: &Path) -> std::io::Result<u64> {
    let partial = to.with_extension("partial");
    let file = fs::File::create(&partial)?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.mode(tar::HeaderMode::Deterministic);
    builder.append_dir_all(top, dir)?;
    let file = builder.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&partial, to)?;
    Ok(fs::metadata(to)?.len())
}

/// Unpacks an export into `into`: only regular files and directories, all below one top
/// folder (the backup id), none leading out of it. Returns the top folder's name.
fn read_tar(from: &Path, into: &Path) -> Result<String, String> {
    let file = fs::File::open(from).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut top: Option<String> = None;
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!("it holds {}, which leads out of it", path.display()));
        }
        let first = path
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        match &top {
            None => top = Some(first),
            Some(known) if *known != first => {
                return Err(format!("it holds {known} and {first}: one backup per file"));
            }
            Some(_) => {}
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            fs::create_dir_all(into.join(&path)).map_err(|e| e.to_string())?;
        } else if kind.is_file() {
            let target = into.join(&path);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let mut out = fs::File::create(&target).map_err(|e| e.to_string())?;
            std::io::copy(&mut entry, &mut out).map_err(|e| e.to_string())?;
        } else {
            return Err(format!("it holds {}, which is not a file or a folder", path.display()));
        }
    }
    top.ok_or_else(|| "it is empty".to_string())
}
