//! `[storage]`: where backups are kept — a restic-format repository on local disk or in an
//! S3-compatible bucket, opened with a password from a secret — and where the backups taken
//! before the repository existed (plain files) are still read from.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SecretSource, WRITTEN_SECRET};
use crate::repository::{Location, s3::S3Location};

/// The password file Steward writes next to the database when it creates a local repository
/// and no password is configured.
pub const GENERATED_PASSWORD_FILE: &str = "repository.password";

/// Where backups are kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Backups taken before the repository (a directory of plain files, `<data_dir>/backups`
    /// by default): still listed, verified, restored and pruned; new backups go to the
    /// repository. Relative paths are relative to the file.
    pub path: Option<PathBuf>,
    /// A local repository directory; default `<data_dir>/repository`. Not with `s3`.
    pub repository: Option<PathBuf>,
    /// The repository is in an S3-compatible bucket.
    pub s3: Option<S3Config>,
    /// The repository's password. Without it, Steward creates `<data_dir>/repository.password`
    /// when it creates the repository. **Losing it loses every backup.**
    pub password: Option<SecretSource>,
    /// The largest export the console accepts as an upload, in MiB (default 20 GiB). The
    /// upload is saved under the data directory until its import job ends.
    pub upload_limit_mib: Option<u64>,
}

/// [`StorageConfig::upload_limit_mib`]'s default: 20 GiB.
const DEFAULT_UPLOAD_LIMIT_MIB: u64 = 20 * 1024;

/// An S3-compatible bucket (AWS S3, MinIO, Ceph, Garage, …).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `https://s3.eu-central-1.amazonaws.com` or `http://minio.internal:9000`.
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// A folder inside the bucket, so several repositories can share one (`""`: the root).
    #[serde(default)]
    pub prefix: String,
    pub access_key_id: SecretSource,
    pub secret_access_key: SecretSource,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl StorageConfig {
    /// The largest upload, in bytes.
    pub fn upload_limit_bytes(&self) -> u64 {
        self.upload_limit_mib
            .unwrap_or(DEFAULT_UPLOAD_LIMIT_MIB)
            .saturating_mul(1024 * 1024)
    }

    /// Checks what serde cannot; returns the offending key (below `storage.`) and why.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        if self.repository.is_some() && self.s3.is_some() {
            return Err((
                "repository".into(),
                "give either a local repository or [storage.s3], not both".into(),
            ));
        }
        if self.upload_limit_mib == Some(0) {
            return Err(("upload_limit_mib".into(), "must be at least 1".into()));
        }
        if self.password == Some(SecretSource::Written) {
            return Err(("password".into(), WRITTEN_SECRET.into()));
        }
        if let Some(s3) = &self.s3 {
            if !(s3.endpoint.starts_with("http://") || s3.endpoint.starts_with("https://")) {
                return Err(("s3.endpoint".into(), "must start with http:// or https://".into()));
            }
            if s3.bucket.is_empty() {
                return Err(("s3.bucket".into(), "must not be empty".into()));
            }
            for (key, secret) in [
                ("s3.access_key_id", &s3.access_key_id),
                ("s3.secret_access_key", &s3.secret_access_key),
            ] {
                if *secret == SecretSource::Written {
                    return Err((key.into(), WRITTEN_SECRET.into()));
                }
            }
        }
        Ok(())
    }

    /// Makes relative paths relative to the configuration file's directory.
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.path, &mut self.repository].into_iter().flatten() {
            *path = base.join(&*path);
        }
    }

    /// Where the repository is, its S3 credentials read from their secrets.
    pub fn location(&self, data_dir: &Path) -> Result<Location, String> {
        match &self.s3 {
            Some(s3) => Ok(Location::S3(S3Location {
                endpoint: s3.endpoint.trim_end_matches('/').to_string(),
                bucket: s3.bucket.clone(),
                region: s3.region.clone(),
                prefix: s3.prefix.trim_matches('/').to_string(),
                access_key_id: s3
                    .access_key_id
                    .read()
                    .map_err(|e| format!("storage.s3.access_key_id: {e}"))?,
                secret_access_key: s3
                    .secret_access_key
                    .read()
                    .map_err(|e| format!("storage.s3.secret_access_key: {e}"))?,
            })),
            None => Ok(Location::Local(
                self.repository.clone().unwrap_or_else(|| data_dir.join("repository")),
            )),
        }
    }

    /// The secrets `config check` proves readable, by key.
    pub fn secret_sources(&self) -> Vec<(String, &SecretSource)> {
        let mut all: Vec<(String, &SecretSource)> = self
            .password
            .iter()
            .map(|p| ("storage.password".to_string(), p))
            .collect();
        if let Some(s3) = &self.s3 {
            all.push(("storage.s3.access_key_id".into(), &s3.access_key_id));
            all.push(("storage.s3.secret_access_key".into(), &s3.secret_access_key));
        }
        all
    }
}
