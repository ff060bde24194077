//! `steward audit verify`: walk the audit log's hash chain and name the first event that was
//! changed, removed or inserted by hand.

use clap::Subcommand;
use engine::Config;

use super::open_engine;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit log's hash chain from the first event to the last and check every link;
    /// names the first event that was changed, removed or inserted outside Steward, and compares
    /// the head with the one the previous verification saw (a cut tail). Prints the head (last
    /// id and hash) — keep it somewhere else to prove later that nothing was cut. Exit code 0
    /// only if the chain holds. The result shows on the audit page.
    Verify,
}

pub(super) async fn audit(config: Config, command: AuditCommand) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = match command {
        AuditCommand::Verify => verify(&engine).await,
    };
    engine.db().close().await;
    result
}

async fn verify(engine: &engine::Engine) -> anyhow::Result<()> {
    let (report, _) = engine.verify_audit_chain("cli").await?;
    let head = match &report.head {
        Some((id, hash)) => format!("event {id}, hash {hash}"),
        None => "none (no event holds)".to_string(),
    };
    match &report.problem {
        None => {
            println!("The audit log's chain holds: {} events.", report.checked);
            println!("Head: {head}");
            Ok(())
        }
        Some(problem) => {
            println!(
                "The audit log's chain holds for its first {} events, up to {head}.",
                report.checked
            );
            anyhow::bail!("the audit log was tampered with: {problem}")
        }
    }
}
