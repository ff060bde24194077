//! The staging area every backup is written into, and the backups taken before the repository
//! (plain files under `storage.path`): still listed, read, verified and removed here. New backups
//! live in the repository ([`crate::repository`]); their non-tree artifacts pass through
//! [`Storage::stage`] on the way.
//!
//! A files backup was written into a *staging* area first and *published* in one step when every
//! artifact and, last, its manifest are complete, so a backup that is visible is whole. What an
//! interrupted backup left in staging is removed by [`LocalStorage::clean_staging`] at start and
//! is never seen as restorable.
//!
//! Layout of the local backend (`<data_dir>/backups` by default):
//!
//! ```text
//! <root>/<environment>/<backup id>/<artifact files…>
//! <root>/<environment>/<backup id>/manifest.json   (written last, before publishing)
//! <root>/.staging/<backup id>/…                    (work in progress)
//! <root>/.removed/<environment>/<backup id>/…       (being removed by retention)
//! ```
//!
//! Removal is the mirror of publishing: [`Storage::withdraw`] moves a backup out of sight in
//! one rename, the catalog row goes in one transaction, and only then are the files deleted
//! ([`Storage::purge_withdrawn`]). A removal interrupted half-way is finished or undone at the
//! next start, by whether the catalog still has the row.
//!
//! The [`Storage`] trait, shaped after object_store (paths, put, list, get), has one backend,
//! [`LocalStorage`]; the repository took the object-store role it was kept open for.

use std::{
    io,
    path::{Path, PathBuf},
};

use tokio::io::AsyncRead;

/// The file that marks a published backup as complete.
pub const MANIFEST: &str = "manifest.json";
const STAGING: &str = ".staging";
const REMOVED: &str = ".removed";

/// A backup's place in storage: environment and backup id, both validated slugs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPath {
    pub environment: String,
    pub backup_id: String,
}

impl BackupPath {
    /// Refuses anything that could leave its directory (`..`, `/`, empty, hidden names).
    pub fn new(environment: &str, backup_id: &str) -> io::Result<BackupPath> {
        for part in [environment, backup_id] {
            let valid = !part.is_empty()
                && part.len() <= 64
                && !part.starts_with('.')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("\"{part}\" is not a valid environment or backup id"),
                ));
            }
        }
        Ok(BackupPath {
            environment: environment.to_string(),
            backup_id: backup_id.to_string(),
        })
    }
}

/// A readable artifact.
pub type ArtifactReader = Box<dyn AsyncRead + Send + Unpin>;

/// Where backups are kept.
pub trait Storage: Send + Sync {
    /// A fresh, empty local directory where the drivers write `backup`'s artifacts.
    fn stage(&self, backup: &BackupPath) -> impl Future<Output = io::Result<PathBuf>> + Send;

    /// Makes the staged backup visible as a whole, its manifest written last. Fails, changing
    /// nothing visible, if a backup with that id exists.
    fn publish(&self, backup: &BackupPath, manifest: &[u8]) -> impl Future<Output = io::Result<()>> + Send;

    /// Removes a staged backup (a failed or cancelled one).
    fn discard(&self, backup: &BackupPath) -> impl Future<Output = io::Result<()>> + Send;

    /// Removes what interrupted backups left in staging, except those in `keep` (still being
    /// written). Returns how many were removed.
    fn clean_staging(&self, keep: &[String]) -> impl Future<Output = io::Result<usize>> + Send;

    /// The environments that have backups.
    fn environments(&self) -> impl Future<Output = io::Result<Vec<String>>> + Send;

    /// The published backups of `environment` (those with a manifest), by id.
    fn list(&self, environment: &str) -> impl Future<Output = io::Result<Vec<String>>> + Send;

    /// A published backup's manifest, as stored.
    fn read_manifest(&self, backup: &BackupPath) -> impl Future<Output = io::Result<Vec<u8>>> + Send;

    /// Reads one artifact of a published backup (`file` as the manifest names it).
    fn open(&self, backup: &BackupPath, file: &str) -> impl Future<Output = io::Result<ArtifactReader>> + Send;

    /// Moves a published backup out of sight (no longer listed, read or restorable), in one
    /// step, ready to be deleted or put back.
    fn withdraw(&self, backup: &BackupPath) -> impl Future<Output = io::Result<()>> + Send;
    /// Puts a withdrawn backup back where it was.
    fn reinstate(&self, backup: &BackupPath) -> impl Future<Output = io::Result<()>> + Send;
    /// Deletes a withdrawn backup's files.
    fn purge_withdrawn(&self, backup: &BackupPath) -> impl Future<Output = io::Result<()>> + Send;
    /// The withdrawn backups an interrupted removal left.
    fn withdrawn(&self) -> impl Future<Output = io::Result<Vec<BackupPath>>> + Send;
    /// Where a backup is, for people: a path or a URL.
    fn location(&self, backup: &BackupPath) -> String;

    /// Where staged backups are, for people.
    fn staging_location(&self, backup: &BackupPath) -> String;
}

/// Backups on the local file system.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> LocalStorage {
        LocalStorage { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A published backup's directory.
    pub fn backup_dir(&self, backup: &BackupPath) -> PathBuf {
        self.root.join(&backup.environment).join(&backup.backup_id)
    }

    fn staging_dir(&self, backup: &BackupPath) -> PathBuf {
        self.root.join(STAGING).join(&backup.backup_id)
    }

    fn withdrawn_dir(&self, backup: &BackupPath) -> PathBuf {
        self.root
            .join(REMOVED)
            .join(&backup.environment)
            .join(&backup.backup_id)
    }
}

impl Storage for LocalStorage {
    async fn stage(&self, backup: &BackupPath) -> io::Result<PathBuf> {
        let dir = self.staging_dir(backup);
        if tokio::fs::try_exists(&dir).await? {
            tokio::fs::remove_dir_all(&dir).await?;
        }
        tokio::fs::create_dir_all(&dir).await?;
        Ok(dir)
    }

    async fn publish(&self, backup: &BackupPath, manifest: &[u8]) -> io::Result<()> {
        let staged = self.staging_dir(backup);
        let target = self.backup_dir(backup);
        if tokio::fs::try_exists(&target).await? {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("backup {} already exists", backup.backup_id),
            ));
        }
        let temporary = staged.join(format!("{MANIFEST}.partial"));
        tokio::fs::write(&temporary, manifest).await?;
        tokio::fs::File::open(&temporary).await?.sync_all().await?;
        tokio::fs::rename(&temporary, staged.join(MANIFEST)).await?;
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(&staged, &target).await
    }

    async fn discard(&self, backup: &BackupPath) -> io::Result<()> {
        match tokio::fs::remove_dir_all(self.staging_dir(backup)).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn clean_staging(&self, keep: &[String]) -> io::Result<usize> {
        let staging = self.root.join(STAGING);
        let mut entries = match tokio::fs::read_dir(&staging).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await? {
            if keep.iter().any(|id| entry.file_name() == id.as_str()) {
                continue;
            }
            tokio::fs::remove_dir_all(entry.path()).await?;
            removed += 1;
        }
        Ok(removed)
    }

    async fn environments(&self) -> io::Result<Vec<String>> {
        let mut entries = match tokio::fs::read_dir(&self.root).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.file_type().await?.is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    async fn list(&self, environment: &str) -> io::Result<Vec<String>> {
        let mut entries = match tokio::fs::read_dir(self.root.join(environment)).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut ids = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            if tokio::fs::try_exists(entry.path().join(MANIFEST)).await? {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    async fn read_manifest(&self, backup: &BackupPath) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.backup_dir(backup).join(MANIFEST)).await
    }

    async fn open(&self, backup: &BackupPath, file: &str) -> io::Result<ArtifactReader> {
        // The manifest names files inside the backup; nothing may lead out of it.
        let relative = Path::new(file);
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("\"{file}\" is not a file inside the backup"),
            ));
        }
        let opened = tokio::fs::File::open(self.backup_dir(backup).join(relative)).await?;
        Ok(Box::new(opened))
    }

    async fn withdraw(&self, backup: &BackupPath) -> io::Result<()> {
        let target = self.withdrawn_dir(backup);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(self.backup_dir(backup), target).await
    }

    async fn reinstate(&self, backup: &BackupPath) -> io::Result<()> {
        tokio::fs::rename(self.withdrawn_dir(backup), self.backup_dir(backup)).await
    }

    async fn purge_withdrawn(&self, backup: &BackupPath) -> io::Result<()> {
        match tokio::fs::remove_dir_all(self.withdrawn_dir(backup)).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn withdrawn(&self) -> io::Result<Vec<BackupPath>> {
        let mut found = Vec::new();
        let mut environments = match tokio::fs::read_dir(self.root.join(REMOVED)).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        while let Some(environment) = environments.next_entry().await? {
            let mut backups = tokio::fs::read_dir(environment.path()).await?;
            while let Some(backup) = backups.next_entry().await? {
                if let Ok(path) = BackupPath::new(
                    &environment.file_name().to_string_lossy(),
                    &backup.file_name().to_string_lossy(),
                ) {
                    found.push(path);
                }
            }
        }
        Ok(found)
    }

    fn location(&self, backup: &BackupPath) -> String {
        self.backup_dir(backup).display().to_string()
    }

    fn staging_location(&self, backup: &BackupPath) -> String {
        self.staging_dir(backup).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_backup_is_visible_only_once_published_with_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        let backup = BackupPath::new("prod", "prod-20261122-0530-7f3a").unwrap();
        let staged = storage.stage(&backup).await.unwrap();
        tokio::fs::write(staged.join("files.tar.zst"), b"archive")
            .await
            .unwrap();
        assert!(storage.list("prod").await.unwrap().is_empty(), "staged is not listed");

        storage.publish(&backup, b"{}").await.unwrap();
        let published = storage.backup_dir(&backup);
        assert_eq!(storage.list("prod").await.unwrap(), vec!["prod-20261122-0530-7f3a"]);
        assert_eq!(
            tokio::fs::read(published.join("files.tar.zst")).await.unwrap(),
            b"archive"
        );
        assert_eq!(tokio::fs::read(published.join(MANIFEST)).await.unwrap(), b"{}");
        assert!(!published.join("manifest.json.partial").exists());

        // The same id twice: refused, the published backup untouched.
        storage.stage(&backup).await.unwrap();
        assert_eq!(
            storage.publish(&backup, b"{\"other\":1}").await.unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(tokio::fs::read(published.join(MANIFEST)).await.unwrap(), b"{}");
    }

    #[tokio::test]
    async fn leftovers_of_interrupted_backups_are_cleaned_and_never_listed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        for id in ["dev-1", "dev-2"] {
            let staged = storage.stage(&BackupPath::new("dev", id).unwrap()).await.unwrap();
            tokio::fs::write(staged.join("half"), b"x").await.unwrap();
        }
        // A directory without a manifest in the published area (a crash mid-copy by hand).
        tokio::fs::create_dir_all(dir.path().join("dev").join("dev-3"))
            .await
            .unwrap();
        assert!(storage.list("dev").await.unwrap().is_empty());
        // dev-2 is still being written by a running job: kept.
        assert_eq!(storage.clean_staging(&["dev-2".to_string()]).await.unwrap(), 1);
        assert_eq!(storage.clean_staging(&[]).await.unwrap(), 1);
        assert_eq!(storage.clean_staging(&[]).await.unwrap(), 0);
        storage
            .discard(&BackupPath::new("dev", "dev-1").unwrap())
            .await
            .unwrap();
    }

    #[test]
    fn paths_cannot_leave_the_storage() {
        for (env, id) in [
            ("..", "x"),
            ("prod", "../etc"),
            ("prod", "a/b"),
            ("", "x"),
            ("prod", ".staging"),
        ] {
            assert!(BackupPath::new(env, id).is_err(), "{env}/{id}");
        }
        assert!(BackupPath::new("prod", "prod-20261122-0530-7f3a").is_ok());
    }
}
