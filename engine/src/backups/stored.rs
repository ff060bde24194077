//! The engine's way to its repository: opening it (and creating it, with a password file, on
//! the first backup of a new installation), running rustic's blocking work off the async
//! threads, and fetching a backup's artifacts to local disk for the drivers — from the
//! repository, or from the files of a backup taken before it.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::atomic::AtomicBool,
};

use sha2::{Digest, Sha256};

use super::{ArtifactCheck, VerifyReport};
use crate::{
    Config, Engine,
    config::storage::GENERATED_PASSWORD_FILE,
    db::repository_use::{self, Mode},
    manifest::{Manifest, ManifestArtifact, Stored},
    repository::{self, Location, Repository, RepositoryError},
    storage::BackupPath,
};

impl Engine {
    /// Where the repository is, for people (a path or an `s3:` URL without credentials).
    pub fn repository_location(&self) -> String {
        match self.config().storage.location(&self.config().data_dir) {
            Ok(location) => location.describe(),
            Err(why) => format!("(not readable: {why})"),
        }
    }

    /// Opens the repository and runs `work` on it, on a blocking thread. `create`: a missing
    /// repository is created (with a generated password when none is configured and it is
    /// local); otherwise a missing one is an error.
    pub async fn with_repository<T: Send + 'static>(
        &self,
        create: bool,
        work: impl FnOnce(&mut Repository) -> Result<T, RepositoryError> + Send + 'static,
    ) -> Result<T, RepositoryError> {
        let config = self.config().clone();
        tokio::task::spawn_blocking(move || {
            let mut repo = open_repository(&config, create)?;
            work(&mut repo)
        })
        .await
        .map_err(|e| RepositoryError::Failed(format!("the repository work stopped: {e}")))?
    }

    /// The manifest a restore or test restore follows: a backup in the repository carries its
    /// own in the catalog (and its snapshot); an older one the manifest in its directory,
    /// which is what its files match.
    pub async fn stored_manifest(&self, backup: &super::Backup) -> Result<Manifest, String> {
        if backup.manifest.stored == Stored::Repository {
            return Ok(backup.manifest.clone());
        }
        let path = BackupPath::new(&backup.environment, &backup.id).map_err(|e| e.to_string())?;
        let bytes = crate::storage::Storage::read_manifest(&self.storage(), &path)
            .await
            .map_err(|e| format!("the manifest of {} cannot be read: {e}", backup.id))?;
        Manifest::from_json(&bytes)
    }

    /// Puts artifact `artifact` of backup `manifest` where a driver can read it: the file's
    /// path, or the tree's directory. A backup in files is read where it lies; one in the
    /// repository is restored into `scratch`. (A directory restore does not come here: the
    /// repository writes its tree straight beside the live one, see `kinds::restore`.)
    pub async fn fetch_artifact(
        &self,
        manifest: &Manifest,
        artifact: &ManifestArtifact,
        scratch: &Path,
    ) -> Result<PathBuf, String> {
        match manifest.stored {
            Stored::Files => {
                let path = BackupPath::new(&manifest.environment, &manifest.id).map_err(|e| e.to_string())?;
                Ok(self.storage().backup_dir(&path).join(&artifact.file))
            }
            Stored::Repository => {
                let part = artifact.resource.clone();
                let into = scratch.join(&part);
                let fetched = if artifact.tree {
                    into.clone()
                } else {
                    into.join(Path::new(&artifact.file).file_name().unwrap_or_default())
                };
                let id = manifest.id.clone();
                self.with_repository(false, move |repo| repo.restore_part(&id, &part, &into))
                    .await
                    .map_err(|e| format!("cannot read {} from the repository: {e}", artifact.file))?;
                Ok(fetched)
            }
        }
    }
}

/// Opens the repository `config` names (blocking); see [`Engine::with_repository`].
pub(crate) fn open_repository(config: &Config, create: bool) -> Result<Repository, RepositoryError> {
    let data_dir = &config.data_dir;
    let location = config.storage.location(data_dir).map_err(RepositoryError::Failed)?;
    let password = password(&config.storage.password, &location, data_dir, create)?;
    repository::open(&location, &password, Some(&data_dir.join("cache")), create)
}

/// The repository's password: the configured secret, or the generated file in `data_dir`
/// (written now when `create` and the repository is local and new).
fn password(
    configured: &Option<crate::config::SecretSource>,
    location: &Location,
    data_dir: &Path,
    create: bool,
) -> Result<String, RepositoryError> {
    if let Some(secret) = configured {
        return secret
            .read()
            .map_err(|why| RepositoryError::Failed(format!("storage.password: {why}")));
    }
    let file = data_dir.join(GENERATED_PASSWORD_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => Ok(text.lines().next().unwrap_or_default().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let Location::Local(repo) = location else {
                return Err(RepositoryError::Failed(
                    "storage.password is not set: an S3 repository needs a password configured (every instance that shares the bucket uses the same one)".into(),
                ));
            };
            if repo.join("config").exists() {
                return Err(RepositoryError::Failed(format!(
                    "storage.password is not set and {} is missing: without the password the repository {} cannot be opened",
                    file.display(),
                    repo.display()
                )));
            }
            if !create {
                return Err(RepositoryError::Missing {
                    location: repo.display().to_string(),
                });
            }
            write_generated_password(&file).map_err(|e| {
                RepositoryError::Failed(format!(
                    "cannot write the repository password to {}: {e}",
                    file.display()
                ))
            })
        }
        Err(e) => Err(RepositoryError::Failed(format!("cannot read {}: {e}", file.display()))),
    }
}

/// A new random password, written readable by Steward's user only.
fn write_generated_password(file: &Path) -> std::io::Result<String> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let password = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    writeln!(out, "{password}")?;
    out.sync_all()?;
    tracing::warn!(
        file = %file.display(),
        "created the backup repository's password file: keep a copy of it somewhere safe, away from this machine — without it no backup can be read"
    );
    Ok(password)
}

/// Reads every byte of a backup in the repository back (the repository's check of the
/// snapshot's structure, then every blob decrypted and authenticated) and compares each file
/// artifact with the manifest's size and checksum. A tree has no checksum of its own: every
/// blob of it is checked by the repository as it is read.
pub(crate) async fn check_in_repository(engine: &Engine, manifest: &Manifest) -> VerifyReport {
    let id = manifest.id.clone();
    let read = engine
        .with_repository(false, move |repo| {
            let mut hashes: HashMap<PathBuf, (u64, Sha256)> = HashMap::new();
            repo.verify_backup(
                &id,
                |path, bytes| {
                    // Paths as the manifest writes them: relative to the snapshot's root.
                    let path = path.strip_prefix("/").unwrap_or(path);
                    let entry = hashes.entry(path.to_path_buf()).or_insert_with(|| (0, Sha256::new()));
                    entry.0 += bytes.len() as u64;
                    entry.1.update(bytes);
                },
                &AtomicBool::new(false),
            )?;
            Ok(hashes
                .into_iter()
                .map(|(path, (size, hasher))| (path, (size, hex::encode(hasher.finalize()))))
                .collect::<HashMap<_, _>>())
        })
        .await;
    let artifacts = manifest
        .artifacts
        .iter()
        .map(|artifact| {
            let problem = match &read {
                Err(e) => Some(format!("cannot be read back from the repository: {e}")),
                Ok(_) if artifact.tree => None,
                Ok(files) => match files.get(Path::new(&artifact.file)) {
                    // An empty file has no bytes to hand over.
                    None if artifact.size == 0 => None,
                    None => Some("missing from the backup's snapshot".to_string()),
                    Some((size, _)) if *size != artifact.size => {
                        Some(format!("size is {size} bytes, the manifest says {}", artifact.size))
                    }
                    Some((_, sha256)) if *sha256 != artifact.sha256 => {
                        Some("checksum does not match the manifest (the data was changed or damaged)".to_string())
                    }
                    Some(_) => None,
                },
            };
            ArtifactCheck {
                resource: artifact.resource.clone(),
                file: artifact.file.clone(),
                problem,
            }
        })
        .collect();
    VerifyReport {
        backup_id: manifest.id.clone(),
        artifacts,
    }
}

/// How often a job waiting for the repository asks again.
const REPOSITORY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Engine {
    /// Takes the repository for job `job_id` — to use (beside other users) or to prune
    /// (alone) — waiting while another running job's use conflicts, on any instance. The log
    /// says once what it waits for. `Err(None)` when `stop` fired while waiting.
    pub(crate) async fn use_repository(
        &self,
        job_id: i64,
        mode: Mode,
        stop: &tokio_util::sync::CancellationToken,
        log: &crate::output::JobLog,
    ) -> Result<(), Option<String>> {
        let mut said = false;
        loop {
            let taken = async {
                let mut tx = self.db().begin_write().await?;
                let conflicts =
                    repository_use::try_take(&mut tx, self.db().backend(), job_id, mode, crate::db::now_ms()).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(conflicts)
            }
            .await
            .map_err(|e| Some(format!("cannot take the repository: {e}")))?;
            if taken.is_empty() {
                return Ok(());
            }
            if !said {
                let jobs: Vec<String> = taken.iter().map(|(id, how)| format!("#{id} ({how})")).collect();
                log.info(format!(
                    "Waiting for the repository: job {} is using it.",
                    jobs.join(", ")
                ))
                .await;
                said = true;
            }
            tokio::select! {
                () = stop.cancelled() => return Err(None),
                () = tokio::time::sleep(REPOSITORY_WAIT) => {}
            }
        }
    }

    /// Gives the repository back (a crash gives it back when the job stops running).
    pub(crate) async fn release_repository(&self, job_id: i64) {
        if let Err(e) = repository_use::release(self.db().pool(), job_id).await {
            tracing::warn!(job = job_id, error = %e, "giving the repository back failed; it is freed when the job ends");
        }
    }
}

/// What `steward config check` says of the repository: `Ok` with a line about it (opened
/// with the password; or not created yet, which the first backup does), `Err` with why it
/// cannot be used (a wrong password, an unreachable bucket, an unreadable secret).
pub async fn check_repository(config: &Config) -> Result<String, String> {
    let config = config.clone();
    let described = match config.storage.location(&config.data_dir) {
        Ok(location) => location.describe(),
        Err(why) => return Err(why),
    };
    let opened = tokio::task::spawn_blocking(move || {
        open_repository(&config, false).and_then(|repo| Ok((repo.backups()?.len(), repo.usage()?)))
    })
    .await
    .map_err(|e| format!("checking the repository stopped: {e}"))?;
    match opened {
        Ok((backups, usage)) => Ok(format!(
            "{described}: opened with the password; {backups} backup(s), {}",
            crate::text::human_bytes(usage.bytes)
        )),
        Err(RepositoryError::Missing { .. }) => {
            Ok(format!("{described}: not created yet (the first backup creates it)"))
        }
        Err(e) => Err(format!("storage: {e}")),
    }
}

/// What one environment's backups take in the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvironmentUsage {
    pub environment: String,
    pub backups: usize,
    /// What the backups hold: what they would take as full copies, before deduplication and
    /// compression.
    pub full_bytes: u64,
    /// What the backups added to the repository when they were written (new data after
    /// deduplication and compression): their share of it. Data a removed backup added and a
    /// kept one still needs is counted nowhere, so the sum may be below the repository's size.
    pub stored_bytes: u64,
}

/// The repository's use: per environment, and as a whole.
#[derive(Debug, Clone, Default)]
pub struct StorageUsage {
    pub location: String,
    pub environments: Vec<EnvironmentUsage>,
    /// Every file of the repository (packs, index, snapshots, keys).
    pub repository_bytes: u64,
}

impl Engine {
    /// The space each environment's backups take in the repository, and what they would take
    /// without deduplication; empty before the first backup created the repository.
    pub async fn storage_usage(&self) -> Result<StorageUsage, RepositoryError> {
        let listed = self
            .with_repository(false, |repo| Ok((repo.backups()?, repo.usage()?)))
            .await;
        let (backups, usage) = match listed {
            Ok(found) => found,
            Err(RepositoryError::Missing { .. }) => (Vec::new(), repository::Usage::default()),
            Err(e) => return Err(e),
        };
        let mut environments: Vec<EnvironmentUsage> = Vec::new();
        for backup in backups {
            let index = match environments.iter().position(|e| e.environment == backup.environment) {
                Some(index) => index,
                None => {
                    environments.push(EnvironmentUsage {
                        environment: backup.environment.clone(),
                        ..EnvironmentUsage::default()
                    });
                    environments.len() - 1
                }
            };
            let entry = &mut environments[index];
            entry.backups += 1;
            entry.full_bytes += backup.full_bytes;
            entry.stored_bytes += backup.added_bytes;
        }
        environments.sort_by(|a, b| a.environment.cmp(&b.environment));
        Ok(StorageUsage {
            location: self.repository_location(),
            environments,
            repository_bytes: usage.bytes,
        })
    }

    /// The repository's own check (`read_data`: every pack read and authenticated too):
    /// `Ok` with its warnings, `Err` naming the damage.
    pub async fn check_repository(&self, read_data: bool) -> Result<Vec<String>, RepositoryError> {
        self.with_repository(false, move |repo| repo.check(read_data)).await
    }
}
