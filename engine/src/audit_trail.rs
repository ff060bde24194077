//! The audit log as people review it: proof that it is whole ([`Engine::verify_audit_chain`],
//! hourly by [`Engine::run_audit_watch`]).
//!
//! The SQL and the chain's rules live in [`crate::db::audit`]; this module adds what a reviewer
//! sees: every verification is kept (the audit page shows the last) and its head — the newest
//! event's id and hash — is written to Steward's log, outside the database, so that a tail cut
//! off later can be shown against it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{
    Engine,
    db::audit::chain::{self, Report, Verification},
};

/// How often Steward walks the chain by itself and logs its head.
const WATCH_EVERY: Duration = Duration::from_secs(3600);

impl Engine {
    /// Walks the whole chain, keeps the result (who asked: `by`) and logs the head.
    pub async fn verify_audit_chain(&self, by: &str) -> sqlx::Result<(Report, Verification)> {
        let report = chain::verify(self.db()).await?;
        let verification = chain::save_verification(self.db().pool(), &report, by).await?;
        let (head_id, head_hash) = report.head.clone().unwrap_or((0, chain::GENESIS.to_string()));
        match &report.problem {
            None => tracing::info!(head_id, head_hash, events = report.checked, by, "audit chain head"),
            Some(problem) => tracing::error!(
                head_id,
                head_hash,
                events = report.checked,
                by,
                problem = %problem,
                "audit chain broken"
            ),
        }
        Ok((report, verification))
    }

    /// Verifies the chain at start and every hour until `stop`.
    pub async fn run_audit_watch(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.verify_audit_chain("steward").await {
                tracing::warn!("verifying the audit chain: {e}");
            }
        }
    }

    /// The newest verification, for the audit page.
    pub async fn last_audit_verification(&self) -> sqlx::Result<Option<Verification>> {
        chain::last_verification(self.db().pool()).await
    }
}
