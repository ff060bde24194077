//! `steward backup …`: take, list, show, verify backups, and rebuild the catalog.
//!
//! `create` queues a backup job for the workers of `steward serve` (and can follow it, like
//! `steward run`); `list` and `show` read the catalog; `verify` queues the same job as
//! `steward verify ENV --backup ID` (checksums and a test restore) and follows it;
//! `verify --checksums-only` and `reindex` do their work in this process, so they also work
//! while no server runs.

use anyhow::anyhow;
use clap::Subcommand;
use engine::{
    Config, Engine,
    accounts::Actor,
    backups::{Backup, Order, TestRestore, Verification},
    drivers::http::RemoteReport,
    jobs::Trigger,
    storage::{BackupPath, Storage},
    text::human_bytes,
};

use super::{
    jobs::{explain, follow, outcome},
    open_engine,
};

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Queue a backup of every resource of an environment (needs a running `steward serve`).
    Create {
        /// The environment, e.g. `prod`.
        env: String,
        /// What this backup is for, e.g. "before the 2.4 upgrade".
        #[arg(long, short, default_value = "")]
        description: String,
        /// Print the job's log until it ends; exit code 0 only if the backup succeeded.
        #[arg(long, short)]
        follow: bool,
    },
    /// List an environment's complete backups, newest first.
    List {
        /// The environment, e.g. `prod`.
        env: String,
        /// Show at most this many backups.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Show a backup: its manifest in words, artifacts and facts.
    Show {
        /// The backup's id, e.g. `prod-20261121-0102-7f3a`.
        id: String,
    },
    /// Read every artifact of a backup back and compare it with the manifest's checksums, then
    /// test-restore each resource into scratch (needs a running `steward serve`; the same as
    /// `steward verify ENV --backup ID`). Exit code 1 if anything is missing, changed or
    /// damaged, or does not restore.
    Verify {
        /// The backup's id, e.g. `prod-20261121-0102-7f3a`.
        id: String,
        /// Only the checksums, in this process (works without a running server).
        #[arg(long)]
        checksums_only: bool,
    },
    /// Pin a backup: retention never removes it until it is unpinned.
    Pin {
        /// The backup's id, e.g. `prod-20261121-0102-7f3a`.
        id: String,
        /// Why it must be kept, e.g. "before the migration".
        #[arg(long, short)]
        reason: String,
    },
    /// Unpin a backup: retention may remove it again.
    Unpin {
        /// The backup's id.
        id: String,
        #[arg(long, short)]
        reason: String,
    },
    /// Rebuild the backup catalog from the repository and the older backups' manifests (after
    /// losing or restoring the database): adds backups found, removes entries whose backup is
    /// gone.
    Reindex,
    /// Write a backup to one portable file: a tar of the manifest (with checksums) and the
    /// artifacts in standard formats (files.tar.zst, database.dump, database.sql, …), readable
    /// without Steward or restic.
    Export {
        /// The backup's id.
        id: String,
        /// The file to write (it appears only when complete).
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Store an exported backup in this instance's repository and catalog, after checking every
    /// checksum (one that differs refuses the whole file).
    Import {
        /// The file `steward backup export` wrote.
        file: std::path::PathBuf,
        /// The environment it belongs to here (default: the one it was taken of).
        #[arg(long, short)]
        environment: Option<String>,
    },
}

pub(super) async fn backup(config: Config, command: BackupCommand) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = match command {
        BackupCommand::Create {
            env,
            description,
            follow: follow_it,
        } => create(&engine, &env, &description, follow_it).await,
        BackupCommand::List { env, limit } => list(&engine, &env, limit).await,
        BackupCommand::Show { id } => show(&engine, &id).await,
        BackupCommand::Verify {
            id,
            checksums_only: true,
        } => verify(&engine, &id).await,
        BackupCommand::Verify {
            id,
            checksums_only: false,
        } => test_restore(&engine, &id).await,
        BackupCommand::Reindex => reindex(&engine).await,
        BackupCommand::Pin { id, reason } => pin(&engine, &id, true, &reason).await,
        BackupCommand::Unpin { id, reason } => pin(&engine, &id, false, &reason).await,
        BackupCommand::Export { id, to } => {
            let exported = engine.export_backup(&Actor::cli(), &id, &to).await?;
            println!(
                "Exported {id} to {}: {} artifact(s), {}.",
                exported.file.display(),
                exported.artifacts,
                human_bytes(exported.bytes)
            );
            Ok(())
        }
        BackupCommand::Import { file, environment } => {
            let manifest = engine
                .import_backup(&Actor::cli(), &file, environment.as_deref())
                .await?;
            println!(
                "Imported {} into {}: {} artifact(s), every checksum matched.",
                manifest.id,
                manifest.environment,
                manifest.artifacts.len()
            );
            Ok(())
        }
    };
    engine.db().close().await;
    result
}

async fn create(engine: &Engine, env: &str, description: &str, follow_it: bool) -> anyhow::Result<()> {
    let job = engine
        .request_backup(&Actor::cli(), env, description, Trigger::Manual)
        .await
        .map_err(|e| explain(engine, e))?;
    let backup_id = job.spec.as_ref().and_then(|spec| spec.backup_id()).unwrap_or_default();
    if !follow_it {
        println!(
            "Queued {} of {env} (backup {backup_id}). Follow it with `steward job log {} --follow`.",
            job.title(),
            job.id
        );
        return Ok(());
    }
    println!(
        "Queued {} of {env} (backup {backup_id}); following its log (Ctrl-C stops following, not the backup).",
        job.title()
    );
    let job = follow(engine, job.id).await?;
    outcome(&job)
}

async fn pin(engine: &Engine, id: &str, pin: bool, reason: &str) -> anyhow::Result<()> {
    engine.set_backup_pinned(&Actor::cli(), id, pin, reason).await?;
    if pin {
        println!("Pinned {id}: retention keeps it until it is unpinned.");
    } else {
        println!("Unpinned {id}: retention may remove it again (see `steward retention preview`).");
    }
    Ok(())
}

async fn list(engine: &Engine, env: &str, limit: i64) -> anyhow::Result<()> {
    if engine.config().environment(env).is_none() {
        return Err(explain(
            engine,
            engine::jobs::JobError::UnknownEnvironment(env.to_string()),
        ));
    }
    let (backups, total) = engine.backups(env, Order::NewestFirst, 0, limit).await?;
    if backups.is_empty() {
        println!("{env} has no backups yet. Take one with `steward backup create {env}`.");
        return Ok(());
    }
    println!(
        "{:<26} {:<20} {:<11} {:<10} {:>9}  {:<8} {:<8} DESCRIPTION",
        "ID", "TAKEN", "TRIGGER", "BY", "SIZE", "VERIFIED", "RESTORES"
    );
    for backup in &backups {
        println!(
            "{:<26} {:<20} {:<11} {:<10} {:>9}  {:<8} {:<8} {}",
            backup.id,
            app::format::utc(backup.created_at_ms),
            backup.trigger,
            backup.requested_by,
            human_bytes(backup.total_size),
            verification_word(&backup.verification),
            match backup.test_restore {
                TestRestore::Never => "untested",
                TestRestore::Passed { .. } => "proven",
                TestRestore::Failed { .. } => "FAILED",
            },
            backup.description
        );
    }
    if total > i64::try_from(backups.len()).unwrap_or(i64::MAX) {
        println!("({} of {total} shown; --limit shows more)", backups.len());
    }
    Ok(())
}

fn verification_word(verification: &Verification) -> &'static str {
    match verification {
        Verification::Never => "never",
        Verification::Passed { .. } => "ok",
        Verification::Failed { .. } => "FAILED",
    }
}

async fn find(engine: &Engine, id: &str) -> anyhow::Result<Backup> {
    engine
        .backup(id)
        .await?
        .ok_or_else(|| anyhow!("there is no backup \"{id}\" (`steward backup list ENV` lists them)"))
}

async fn show(engine: &Engine, id: &str) -> anyhow::Result<()> {
    let backup = find(engine, id).await?;
    let manifest = &backup.manifest;
    println!("Backup {}", backup.id);
    println!("  environment:  {}", backup.environment);
    println!(
        "  taken:        {}, in {}",
        app::format::utc(backup.created_at_ms),
        app::format::duration(backup.created_at_ms, backup.finished_at_ms)
    );
    println!("  trigger:      {} by {}", backup.trigger, backup.requested_by);
    if !backup.description.is_empty() {
        println!("  description:  {}", backup.description);
    }
    println!("  size:         {}", human_bytes(backup.total_size));
    match &backup.verification {
        Verification::Never => println!("  verified:     never"),
        // `app::format::utc` says "UTC" itself.
        Verification::Passed { at_ms } => println!("  verified:     ok, {}", app::format::utc(*at_ms)),
        Verification::Failed { at_ms, problem } => {
            println!("  verified:     FAILED, {}: {problem}", app::format::utc(*at_ms));
        }
    }
    println!("  test restore: {}", super::verify::badge(&backup.test_restore));
    if let Some(job) = backup.job_id {
        println!("  job:          #{job}");
    }
    if manifest.stored == engine::manifest::Stored::Repository {
        println!(
            "  location:     snapshot tagged backup:{} in the repository {}",
            backup.id,
            engine.repository_location()
        );
    } else if let Ok(path) = BackupPath::new(&backup.environment, &backup.id) {
        println!("  location:     {}", engine.storage().location(&path));
    }
    println!("  artifacts:");
    for artifact in &manifest.artifacts {
        let (file, checksum) = if artifact.tree {
            (
                format!("{}/", artifact.file),
                "a tree: every block checked by the repository".to_string(),
            )
        } else {
            (artifact.file.clone(), format!("sha256 {}", artifact.sha256))
        };
        println!(
            "    {:<14} {:<10} {:<32} {:>9}  {checksum}",
            artifact.resource,
            artifact.driver,
            file,
            human_bytes(artifact.size),
        );
        if let Some(tool) = &artifact.tool {
            println!("    {:<14} tool: {tool}", "");
        }
        if let Some(report) = RemoteReport::of(&artifact.driver, &artifact.details) {
            println!("    {:<14} the remote system reported: {report}", "");
        }
    }
    if !manifest.facts.is_empty() {
        println!("  facts:");
        for (name, value) in &manifest.facts {
            println!("    {name}: {value}");
        }
    }
    Ok(())
}

async fn verify(engine: &Engine, id: &str) -> anyhow::Result<()> {
    find(engine, id).await?;
    let report = engine.verify_backup(&Actor::cli(), id).await?;
    for artifact in &report.artifacts {
        match &artifact.problem {
            None => println!("ok      {} ({})", artifact.file, artifact.resource),
            Some(problem) => println!("FAILED  {} ({}): {problem}", artifact.file, artifact.resource),
        }
    }
    if report.ok() {
        println!("Backup {id} is intact: {}.", report.summary());
        Ok(())
    } else {
        Err(anyhow!("backup {id} is damaged: {}", report.summary()))
    }
}

async fn test_restore(engine: &Engine, id: &str) -> anyhow::Result<()> {
    find(engine, id).await?;
    let job = engine.request_verify(&Actor::cli(), id).await.map_err(|e| match e {
        engine::backups::BackupError::Job(e) => explain(engine, e),
        other => other.into(),
    })?;
    super::verify::follow_verification(engine, job).await
}

async fn reindex(engine: &Engine) -> anyhow::Result<()> {
    let report = engine.reindex_backups(&Actor::cli()).await?;
    for problem in &report.unreadable {
        eprintln!("skipped {problem}");
    }
    println!(
        "Catalog rebuilt from {}: {} backup(s) indexed, {} entr{} whose files are gone removed.",
        engine.storage().root().display(),
        report.indexed,
        report.removed,
        if report.removed == 1 { "y" } else { "ies" }
    );
    Ok(())
}
