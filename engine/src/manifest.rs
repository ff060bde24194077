//! A backup's manifest: the JSON file written last into a backup, describing everything in it.
//! The catalog in the database can be rebuilt from manifests alone, so losing the database
//! does not lose the backups; `steward backup verify` checks artifacts against it.

use serde::{Deserialize, Serialize};

/// The manifest format; a reader refuses a newer one rather than misread it. Version 2: the
/// backup may be in the repository (`stored`) and an artifact may be a tree (`tree`).
pub const MANIFEST_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// e.g. `prod-20261121-0102-7f3a`.
    pub id: String,
    pub environment: String,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    /// `manual`, `scheduled` or `pre-restore`.
    pub trigger: String,
    pub requested_by: String,
    pub description: String,
    pub artifacts: Vec<ManifestArtifact>,
    /// What the environment looked like: fact name → command output (e.g. the deployment's
    /// git hash).
    #[serde(default)]
    pub facts: std::collections::BTreeMap<String, String>,
    /// Steward's version that wrote it.
    pub steward_version: String,
    /// Where the backup's artifacts are.
    #[serde(default)]
    pub stored: Stored,
}

/// Where a backup's artifacts are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stored {
    /// Files in a directory of their own (`storage.path`): backups taken before the repository.
    #[default]
    Files,
    /// A snapshot in the repository, tagged `backup:<id>`.
    Repository,
}

/// One resource's artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestArtifact {
    pub resource: String,
    pub driver: String,
    /// File name inside the backup's directory.
    pub file: String,
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub details: serde_json::Value,
    /// A directory tree (`file` is its folder in the backup; `size` the bytes of its files,
    /// `sha256` empty: the repository checks every blob of it), not one file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tree: bool,
}

impl Manifest {
    pub fn total_size(&self) -> u64 {
        self.artifacts.iter().map(|a| a.size).sum()
    }

    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
    }

    /// Reads a manifest; a newer format or a malformed file is an error that says which.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("unreadable manifest: {e}"))?;
        if manifest.version > MANIFEST_VERSION {
            return Err(format!(
                "manifest version {} is newer than this Steward understands ({MANIFEST_VERSION})",
                manifest.version
            ));
        }
        Ok(manifest)
    }
}

/// A short, readable, unique backup id: `<environment>-<yyyymmdd>-<hhmm>-<4 hex>`, in UTC,
/// e.g. `prod-20261121-0102-7f3a`. Sorts by time within an environment.
pub fn new_backup_id(environment: &str, at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..4];
    format!(
        "{environment}-{year:04}{month:02}{day:02}-{:02}{:02}-{suffix}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (the same as `app::format`, which the engine
/// cannot depend on).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Manual,
    Scheduled,
    PreRestore,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Scheduled => "scheduled",
            Trigger::PreRestore => "pre-restore",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        [Trigger::Manual, Trigger::Scheduled, Trigger::PreRestore]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_ids_are_readable_and_unique() {
        // 2026-11-21 01:02 UTC
        let at = 1_795_222_920_000;
        let id = new_backup_id("prod", at);
        assert!(id.starts_with("prod-20261121-0102-"), "{id}");
        assert_eq!(id.len(), "prod-20261121-0102-7f3a".len());
        assert_ne!(id, new_backup_id("prod", at));
        assert!(crate::storage::BackupPath::new("prod", &id).is_ok());
    }

    #[test]
    fn a_manifest_round_trips_and_a_newer_one_is_refused() {
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            id: "prod-20261121-0102-7f3a".into(),
            environment: "prod".into(),
            started_at_ms: 1,
            finished_at_ms: 2,
            trigger: "manual".into(),
            requested_by: "alice".into(),
            description: "before the upgrade".into(),
            artifacts: vec![ManifestArtifact {
                resource: "files".into(),
                driver: "directory".into(),
                file: "files.tar.zst".into(),
                size: 10,
                sha256: "ab".into(),
                tool: None,
                details: serde_json::Value::Null,
                tree: false,
            }],
            facts: [("git".to_string(), "0123abc".to_string())].into(),
            steward_version: "0.1.0".into(),
            stored: crate::manifest::Stored::Files,
        };
        let json = manifest.to_json().unwrap();
        assert_eq!(Manifest::from_json(&json).unwrap(), manifest);
        assert_eq!(manifest.total_size(), 10);
        let newer = String::from_utf8(json)
            .unwrap()
            .replace("\"version\": 2", "\"version\": 99");
        assert!(Manifest::from_json(newer.as_bytes()).unwrap_err().contains("newer"));
        assert!(
            Manifest::from_json(b"{")
                .unwrap_err()
                .starts_with("unreadable manifest")
        );
    }
}
