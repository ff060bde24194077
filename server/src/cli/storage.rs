//! `steward storage usage` and `steward storage check`: what the backup repository holds per
//! environment, and whether it is intact.

use clap::Subcommand;
use engine::{Config, text::human_bytes};

use super::open_engine;

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Per environment: its backups, what they hold (as full copies) and what they take in the
    /// repository after deduplication and compression; and the repository's size.
    Usage,
    /// Run the repository's check: its index, snapshots and trees are consistent (with
    /// --read-data also every pack read back and authenticated). Exit code 0 only if intact.
    Check {
        #[arg(long)]
        read_data: bool,
    },
}

pub(super) async fn storage(config: Config, command: StorageCommand) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = async {
        match command {
            StorageCommand::Usage => {
                let usage = engine.storage_usage().await?;
                println!("Repository {}: {}", usage.location, human_bytes(usage.repository_bytes));
                if usage.environments.is_empty() {
                    println!("  no backups in it yet");
                }
                println!(
                    "  {:<14} {:>8} {:>14} {:>14} {:>8}",
                    "environment", "backups", "as full copies", "stored", "ratio"
                );
                for env in &usage.environments {
                    let ratio = if env.stored_bytes == 0 {
                        "-".to_string()
                    } else {
                        format!("{:.1}×", env.full_bytes as f64 / env.stored_bytes as f64)
                    };
                    println!(
                        "  {:<14} {:>8} {:>14} {:>14} {:>8}",
                        env.environment,
                        env.backups,
                        human_bytes(env.full_bytes),
                        human_bytes(env.stored_bytes),
                        ratio
                    );
                }
                Ok(())
            }
            StorageCommand::Check { read_data } => {
                let warnings = engine.check_repository(read_data).await?;
                for warning in &warnings {
                    println!("warning: {warning}");
                }
                println!(
                    "The repository {} is intact{}.",
                    engine.repository_location(),
                    if read_data { " (every pack read back)" } else { "" }
                );
                Ok(())
            }
        }
    }
    .await;
    engine.db().close().await;
    result
}
