//! `steward verify ENV [--count N] [--backup ID]`: proves that backups restore. Queues a
//! `verify` job (a running `steward serve` takes it) that re-checks every checksum of each
//! chosen backup and test-restores each resource into scratch, prints its log until it ends,
//! then each backup's badge. Exit code 0 only when every backup passed.

use anyhow::anyhow;
use clap::Args;
use engine::{Config, Engine, accounts::Actor, backups::TestRestore, jobs::Job, kinds::verify::Verify};

use super::{
    jobs::{explain, follow, outcome},
    open_engine,
};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The environment, e.g. `prod`.
    pub env: String,
    /// How many of its backups: never test-restored first, then those whose last test restore
    /// is the oldest (ties at random).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100), conflicts_with = "backup")]
    pub count: u32,
    /// This backup of ENV instead, e.g. `prod-20261121-0102-7f3a`.
    #[arg(long)]
    pub backup: Option<String>,
}

pub(super) async fn verify(config: Config, args: VerifyArgs) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = run(&engine, &args).await;
    engine.db().close().await;
    result
}

async fn run(engine: &Engine, args: &VerifyArgs) -> anyhow::Result<()> {
    let env = &args.env;
    if engine.config().environment(env).is_none() {
        return Err(explain(engine, engine::jobs::JobError::UnknownEnvironment(env.clone())));
    }
    let job = match &args.backup {
        Some(id) => {
            let backup = engine
                .backup(id)
                .await?
                .ok_or_else(|| anyhow!("there is no backup \"{id}\" (`steward backup list {env}` lists them)"))?;
            if &backup.environment != env {
                return Err(anyhow!("backup {id} is of {}, not of {env}", backup.environment));
            }
            engine.request_verify(&Actor::cli(), id).await
        }
        None => engine.request_verification(&Actor::cli(), env, args.count).await,
    }
    .map_err(|e| match e {
        engine::backups::BackupError::Job(e) => explain(engine, e),
        other => other.into(),
    })?;
    follow_verification(engine, job).await
}

/// Prints the job's log until it ends, then each backup's badge; `Err` unless it succeeded.
pub(super) async fn follow_verification(engine: &Engine, job: Job) -> anyhow::Result<()> {
    let targets: Vec<String> = job
        .spec
        .as_ref()
        .and_then(|spec| spec.get::<Verify>())
        .map(|verify| verify.targets().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
    println!(
        "Queued verify #{} of {} ({}); following its log (Ctrl-C stops following, not the verification).",
        job.id,
        job.environment,
        targets.join(", ")
    );
    let job = follow(engine, job.id).await?;
    for id in &targets {
        if let Some(backup) = engine.backup(id).await? {
            println!("{id}: {}", badge(&backup.test_restore));
        }
    }
    outcome(&job)
}

/// A backup's newest test restore in words.
pub(super) fn badge(test_restore: &TestRestore) -> String {
    match test_restore {
        TestRestore::Never => "never test-restored".to_string(),
        TestRestore::Passed { at_ms, checked, .. } => {
            format!("proven restorable, {} — {checked}", app::format::utc(*at_ms))
        }
        TestRestore::Failed { at_ms, error, .. } => {
            format!("test restore FAILED, {}: {error}", app::format::utc(*at_ms))
        }
    }
}
