//! Export and import: one backup as one portable file, to move it between instances (separate
//! databases, separate repositories) or to keep it somewhere no Steward and no restic is needed
//! to read it.
//!
//! The file is a plain tar archive holding `<backup id>/manifest.json` and every artifact in
//! the standard formats Steward wrote before the repository: a directory as `files.tar.zst`
//! (tar + zstd), a PostgreSQL dump as `database.dump` (`pg_restore` reads it), a MySQL dump as
//! SQL, a SQLite copy as `database.sqlite`, a script's output as `output.tar.zst`. The
//! manifest gives each file's size and SHA-256, so `sha256sum` checks it by hand.
//!
//! An import reads the whole file into a work directory first and checks every artifact
//! against the manifest; one that differs refuses the import whole, before anything is written
//! to the repository or the catalog. A directory's archive is unpacked and stored as a tree, as
//! a backup stores it, so the imported backup deduplicates against this instance's own.

use std::{
    fs,
    io::Write,
    path::{Component, Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64},
    },
};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{BackupError, row_of};
use crate::{
    Engine,
    accounts::Actor,
    audit::{self, Outcome},
    db::{backups as rows, now_ms, repository_use::Mode},
    drivers::{self, Context, command, directory},
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
    let stop = CancellationToken::new();
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
        let partial = to.with_extension("partial");
        let file =
            fs::File::create(&partial).map_err(|e| failed(format!("cannot write {}: {e}", partial.display())))?;
        let written = self
            .export_backup_into(actor, id, std::io::BufWriter::new(file), &to.display().to_string())
            .await;
        let (file, artifacts) = match written {
            Ok(written) => written,
            Err(e) => {
                let _ = fs::remove_file(&partial);
                return Err(e);
            }
        };
        let keep = || {
            let file = file.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            fs::rename(&partial, to)?;
            fs::metadata(to).map(|m| m.len())
        };
        match keep() {
            Ok(bytes) => Ok(Exported {
                file: to.to_path_buf(),
                bytes,
                artifacts,
            }),
            Err(e) => {
                let _ = fs::remove_file(&partial);
                Err(failed(format!("cannot write {}: {e}", to.display())))
            }
        }
    }

    /// Writes backup `id` as one portable tar (see the module docs) into `sink` as it goes:
    /// each artifact as soon as it is fetched (and a tree packed), the manifest last. Audited
    /// as `backup.export` to `destination` once complete. Returns the sink and the number of
    /// artifacts; on an error the sink holds an incomplete archive that must not be kept.
    pub async fn export_backup_into<W: Write + Send + 'static>(
        &self,
        actor: &Actor,
        id: &str,
        sink: W,
        destination: &str,
    ) -> Result<(W, usize), BackupError> {
        let backup = self
            .backup(id)
            .await?
            .ok_or_else(|| BackupError::NotFound(id.to_string()))?;
        let manifest = self.stored_manifest(&backup).await.map_err(failed)?;
        // No prune may take the packs away while they are read.
        let user = (manifest.stored == Stored::Repository).then(synthetic_use_id);
        if let Some(user) = user {
            self.use_repository(user, Mode::Use, &CancellationToken::new(), &JobLog::channel().0)
                .await
                .map_err(|why| failed(why.unwrap_or_else(|| "stopped".into())))?;
        }
        let written = self.write_export(id, &manifest, sink).await;
        if let Some(user) = user {
            self.release_repository(user).await;
        }
        let (sink, bytes, artifacts) = written?;
        audit::record(
            self.db().pool(),
            &actor.event("backup.export", Some(id), Outcome::Ok).with_detail(json!({
                "environment": backup.environment,
                "file": destination,
                "bytes": bytes,
            })),
        )
        .await?;
        Ok((sink, artifacts))
    }

    /// The tar itself: returns the sink, the bytes written and the number of artifacts.
    async fn write_export<W: Write + Send + 'static>(
        &self,
        id: &str,
        manifest: &Manifest,
        sink: W,
    ) -> Result<(W, u64, usize), BackupError> {
        let work = Work::new(self, "export")?;
        let mut tar = Tar::new(sink);
        let mut exported = Vec::new();
        for artifact in &manifest.artifacts {
            let scratch = work.0.join("scratch").join(&artifact.resource);
            fs::create_dir_all(&scratch).map_err(|e| failed(format!("cannot create {}: {e}", scratch.display())))?;
            let fetched = self
                .fetch_artifact(manifest, artifact, &scratch)
                .await
                .map_err(failed)?;
            let mut artifact = artifact.clone();
            let file = if artifact.tree {
                // A tree leaves as the archive the directory driver writes.
                let into = work.0.join("packed").join(&artifact.resource);
                fs::create_dir_all(&into).map_err(|e| failed(format!("cannot create {}: {e}", into.display())))?;
                let packed = with_context(&scratch, id, async |ctx| {
                    directory::backup(&fetched, &[], &[], &into, ctx).await
                })
                .await
                .map_err(|e| failed(format!("{}: cannot pack the tree: {e}", artifact.resource)))?;
                // A script's output under the name the command driver gives its archive.
                let name = if artifact.driver == "command" {
                    PathBuf::from(command::ARTIFACT)
                } else {
                    packed.file.clone()
                };
                if name != packed.file {
                    fs::rename(into.join(&packed.file), into.join(&name))
                        .map_err(|e| failed(format!("{}: cannot name the archive: {e}", artifact.resource)))?;
                }
                artifact.file = Path::new(&artifact.resource).join(&name).display().to_string();
                artifact.size = packed.size;
                artifact.sha256 = packed.sha256;
                artifact.tool = packed.tool;
                artifact.tree = false;
                into.join(&name)
            } else {
                let (size, sha256) = drivers::sha256_of(&fetched)
                    .await
                    .map_err(|e| failed(format!("cannot read {} back: {e}", artifact.file)))?;
                if size != artifact.size || sha256 != artifact.sha256 {
                    return Err(failed(format!(
                        "{} does not match its manifest (the backup is damaged): not exported",
                        artifact.file
                    )));
                }
                fetched
            };
            tar = tar.append_file(file, format!("{id}/{}", artifact.file)).await?;
            // A restored tree can be large: removed off the async threads.
            let parts = [scratch, work.0.join("packed").join(&artifact.resource)];
            let _ =
                tokio::task::spawn_blocking(move || parts.iter().for_each(|p| drop(directory::remove_tree(p)))).await;
            exported.push(artifact);
        }
        let portable = Manifest {
            artifacts: exported,
            stored: Stored::Files,
            version: MANIFEST_VERSION,
            ..manifest.clone()
        };
        let json = portable
            .to_json()
            .map_err(|e| failed(format!("cannot write the manifest: {e}")))?;
        let (sink, bytes) = tar.finish(format!("{id}/{MANIFEST}"), json).await?;
        Ok((sink, bytes, portable.artifacts.len()))
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
        let quiet = JobLog::channel().0;
        self.import_backup_with(
            actor,
            from,
            environment,
            &Importer {
                job_id: None,
                log: &quiet,
                name: None,
            },
        )
        .await
    }

    /// [`Engine::import_backup`] as a job's step: the repository is used under the job's id,
    /// and the log says what was found and stored.
    pub(crate) async fn import_backup_with(
        &self,
        actor: &Actor,
        from: &Path,
        environment: Option<&str>,
        importer: &Importer<'_>,
    ) -> Result<Manifest, BackupError> {
        let log = importer.log;
        // How messages name the file: its name on the uploader's machine, or its path here.
        let named = importer.name.map_or_else(|| from.display().to_string(), str::to_string);
        let work = Work::new(self, "import")?;
        let (from_owned, into) = (from.to_path_buf(), work.0.join("in"));
        let top = tokio::task::spawn_blocking(move || read_tar(&from_owned, &into))
            .await
            .map_err(|e| failed(format!("reading {named} stopped: {e}")))?
            .map_err(|e| failed(format!("{named} is not a Steward export: {e}")))?;
        let root = work.0.join("in").join(&top);
        let bytes =
            fs::read(root.join(MANIFEST)).map_err(|e| failed(format!("{named} holds no {top}/{MANIFEST}: {e}")))?;
        let mut manifest = Manifest::from_json(&bytes).map_err(failed)?;
        if manifest.id != top {
            return Err(failed(format!(
                "the manifest names backup {}, the file's folder is {top}",
                manifest.id
            )));
        }
        BackupPath::new(&manifest.environment, &manifest.id).map_err(|e| failed(e.to_string()))?;
        log.info(format!(
            "The file holds backup {} of {}, taken {}: {} artifact(s).",
            manifest.id,
            manifest.environment,
            crate::text::local(manifest.started_at_ms, chrono_tz::UTC, "%Y-%m-%d %H:%M UTC"),
            manifest.artifacts.len()
        ))
        .await;
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
                named,
                problems.join("; ")
            )));
        }
        log.info("Every file matches the manifest's size and SHA-256.").await;
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
            // A directory's or a script's archive becomes a tree again, as a backup stores it.
            if matches!(artifact.driver.as_str(), "directory" | "command") && artifact.file.ends_with(".tar.zst") {
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
        let user = importer.job_id.unwrap_or_else(synthetic_use_id);
        self.use_repository(user, Mode::Use, &CancellationToken::new(), log)
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
        let written = written.map_err(|e| failed(format!("storing the imported backup failed: {e}")))?;
        log.info(format!(
            "Stored in the repository as snapshot {}: {} file(s), {} new after deduplication.",
            &written.snapshot[..written.snapshot.len().min(8)],
            written.files,
            crate::text::human_bytes(written.added_bytes)
        ))
        .await;
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
                    "file": named,
                    "size": row.total_size,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(manifest)
    }
}

/// Who imports: a job (its id holds the repository, its log tells) or the command line.
pub(crate) struct Importer<'a> {
    pub job_id: Option<i64>,
    pub log: &'a JobLog,
    /// The file's name in messages, when not its path (an upload's original name).
    pub name: Option<&'a str>,
}

/// `base/rel` when `rel` is a plain relative path (no `..`, not absolute).
fn safe_join(base: &Path, rel: &str) -> Result<PathBuf, String> {
    let path = Path::new(rel);
    if path.as_os_str().is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("\"{rel}\" is not a file inside the export"));
    }
    Ok(base.join(path))
}

/// A tar archive written into a sink off the async threads, counting what it wrote.
struct Tar<W: Write> {
    builder: tar::Builder<Counted<W>>,
}

impl<W: Write + Send + 'static> Tar<W> {
    fn new(sink: W) -> Tar<W> {
        let mut builder = tar::Builder::new(Counted { inner: sink, bytes: 0 });
        builder.mode(tar::HeaderMode::Deterministic);
        Tar { builder }
    }

    /// Appends the file at `path` as `name`.
    async fn append_file(self, path: PathBuf, name: String) -> Result<Tar<W>, BackupError> {
        let mut builder = self.builder;
        tokio::task::spawn_blocking(move || {
            builder
                .append_path_with_name(&path, &name)
                .map(|()| Tar { builder })
                .map_err(|e| failed(format!("cannot write {name} into the export: {e}")))
        })
        .await
        .map_err(|e| failed(format!("writing the export stopped: {e}")))?
    }

    /// Appends `data` as `name`, ends the archive and returns the sink with the bytes written.
    async fn finish(self, name: String, data: Vec<u8>) -> Result<(W, u64), BackupError> {
        let mut builder = self.builder;
        tokio::task::spawn_blocking(move || {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, &name, data.as_slice())?;
            let mut counted = builder.into_inner()?;
            counted.flush()?;
            Ok::<_, std::io::Error>((counted.inner, counted.bytes))
        })
        .await
        .map_err(|e| failed(format!("writing the export stopped: {e}")))?
        .map_err(|e| failed(format!("cannot end the export: {e}")))
    }
}

/// A writer counting the bytes written through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An id for a use of the repository outside a job (an export, an import from the command
/// line): negative, so never a job's.
fn synthetic_use_id() -> i64 {
    -i64::from(uuid::Uuid::new_v4().as_u128() as u32 >> 1).max(1)
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
