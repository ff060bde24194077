//! The `import` job kind: a backup exported by another instance (`steward backup export`, the
//! console's Download) and uploaded through the console, stored in this instance's repository
//! and catalogued ([`Engine::import_backup`]'s checks: every checksum first, refused whole).
//!
//! The upload is saved under `<data_dir>/uploads/` before the job is queued ([`Engine::
//! receive_upload`] names the file); the job removes it when it ends, whatever the outcome —
//! a failed import is uploaded again. It does not hold the environment's slot: it changes no
//! live system, it only adds a backup.

use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    Engine,
    accounts::Actor,
    backups::export::Importer,
    config::Environment,
    jobs::{Failure, Job, JobContext, JobError, JobKind, JobRequest, JobSpec, Outcome, Plan},
    text::human_bytes,
};

/// Where uploads wait for their import job, under the data directory.
pub const UPLOADS_DIR: &str = "uploads";

/// An upload still being received ends so; it becomes `<name>.tar` when complete.
const PARTIAL: &str = "partial";

/// Uploads cut off (a closed browser, a crash) are removed after this long.
const PARTIAL_KEPT_MS: u128 = 24 * 3600 * 1000;

/// Import an uploaded export into the job's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// The saved upload's file name in [`UPLOADS_DIR`].
    pub upload: String,
    /// The name the file had on the uploader's machine, for the log.
    pub original_name: String,
    pub bytes: u64,
}

impl Import {
    fn path(&self, engine: &Engine) -> Result<PathBuf, String> {
        let name = Path::new(&self.upload);
        if name.components().count() != 1 || name.file_name().is_none() {
            return Err(format!("\"{}\" is not an upload's name", self.upload));
        }
        Ok(engine.config().data_dir.join(UPLOADS_DIR).join(name))
    }
}

impl JobKind for Import {
    const NAME: &'static str = "import";

    fn title(&self) -> String {
        "import".to_string()
    }

    fn plan<'a>(&'a self, engine: &'a Engine, _environment: &'a Environment) -> BoxFuture<'a, Result<Plan, JobError>> {
        Box::pin(async move {
            let path = self.path(engine).map_err(JobError::Refused)?;
            if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return Err(JobError::Refused(format!(
                    "the uploaded file {} is no longer here (an import removes it when it ends): upload it again",
                    self.original_name
                )));
            }
            Ok(Plan {
                exclusive: false,
                steps: vec![
                    "Check every file against the manifest".to_string(),
                    "Store in the repository".to_string(),
                ],
            })
        })
    }

    fn retry_refusal(&self) -> Option<&'static str> {
        Some("an import removes its upload when it ends; upload the file again")
    }

    fn run<'a>(&'a self, ctx: &'a JobContext<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let result = import(ctx, self).await;
            if let Ok(path) = self.path(ctx.engine) {
                let _ = tokio::fs::remove_file(&path).await;
            }
            result.into()
        })
    }

    fn recover(engine: &Engine) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let dir = engine.config().data_dir.join(UPLOADS_DIR);
            let _ = tokio::task::spawn_blocking(move || remove_cut_off_uploads(&dir)).await;
        })
    }
}

async fn import(ctx: &JobContext<'_>, input: &Import) -> Result<(), Failure> {
    let (engine, job) = (ctx.engine, ctx.job);
    let path = input.path(engine)?;
    ctx.log
        .info(format!(
            "Importing {} ({}), uploaded by {}.",
            input.original_name,
            human_bytes(input.bytes),
            job.requested_by
        ))
        .await;
    let importer = Importer {
        job_id: Some(job.id),
        log: ctx.log,
        name: Some(&input.original_name),
    };
    let manifest = engine
        .import_backup_with(&job.actor(), &path, Some(&job.environment), &importer)
        .await
        .map_err(|e| Failure::from(e.to_string()))?;
    crate::kinds::backup::record_step(engine, job.id, 2).await;
    ctx.log
        .info(format!(
            "Backup {} is in {}'s list now; it restores like the environment's own.",
            manifest.id, job.environment
        ))
        .await;
    Ok(())
}

/// Removes `.partial` uploads older than [`PARTIAL_KEPT_MS`] (one being received now is
/// younger).
fn remove_cut_off_uploads(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_millis() > PARTIAL_KEPT_MS);
        if old && path.extension().is_some_and(|e| e == PARTIAL) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// An upload being saved: `<data_dir>/uploads/<uuid>.partial` until [`Upload::keep`] names
/// it `<uuid>.tar`; removed when dropped before that.
pub struct Upload {
    partial: PathBuf,
    kept: bool,
}

impl Upload {
    /// Where the bytes go.
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// The upload is complete: it becomes the file an import job reads.
    pub async fn keep(mut self) -> std::io::Result<String> {
        let name = self
            .partial
            .with_extension("tar")
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        tokio::fs::rename(&self.partial, self.partial.with_extension("tar")).await?;
        self.kept = true;
        Ok(name)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

impl Engine {
    /// A new file for an upload, under the data directory.
    pub async fn receive_upload(&self) -> std::io::Result<Upload> {
        let dir = self.config().data_dir.join(UPLOADS_DIR);
        tokio::fs::create_dir_all(&dir).await?;
        let partial = dir.join(format!("{}.{PARTIAL}", uuid::Uuid::new_v4().simple()));
        tokio::fs::File::create(&partial).await?;
        Ok(Upload { partial, kept: false })
    }

    /// Queues the import of a received upload into `environment` (admins). The upload is
    /// removed when the request is refused.
    pub async fn request_import(
        &self,
        actor: &Actor,
        environment: &str,
        import: Import,
        reason: &str,
    ) -> Result<Job, JobError> {
        let path = import.path(self).map_err(JobError::Refused)?;
        let requested = self
            .request_job(
                actor,
                JobRequest {
                    environment: environment.to_string(),
                    spec: JobSpec::new(import),
                    reason: reason.to_string(),
                    parent_id: None,
                },
            )
            .await;
        if requested.is_err() {
            let _ = tokio::fs::remove_file(&path).await;
        }
        requested
    }
}
