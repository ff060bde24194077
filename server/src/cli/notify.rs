//! `steward notify test TARGET` and `steward notify history [--failed]`: try a notification
//! target, and see what was sent where and how it went.

use clap::Subcommand;
use engine::{
    Config,
    accounts::Actor,
    notifications::{NotificationFilter, NotifyError},
    schedules::{Tz, local},
};

use super::open_engine;

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test notification to a target ([notifications.targets.NAME]) now and say how it
    /// went. Exit code 0 only if the target accepted it.
    Test {
        /// The target's name.
        target: String,
    },
    /// List notifications, newest first, with each target's delivery: state, attempts, error.
    History {
        /// Only notifications with a delivery that failed for good.
        #[arg(long)]
        failed: bool,
        /// Only notifications with a delivery still waiting for a retry.
        #[arg(long, conflicts_with = "failed")]
        pending: bool,
        /// Only this environment's.
        #[arg(long, short)]
        environment: Option<String>,
        /// Only deliveries to this target.
        #[arg(long, short)]
        target: Option<String>,
        /// How many notifications.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: i64,
    },
}

pub(super) async fn notify(config: Config, command: NotifyCommand) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = async {
        match command {
            NotifyCommand::Test { target } => {
                let result = engine
                    .send_test_notification(&Actor::cli(), &target)
                    .await
                    .map_err(|e| match e {
                        NotifyError::UnknownTarget(_) => {
                            let known: Vec<String> =
                                engine.notification_targets().into_iter().map(|t| t.name).collect();
                            anyhow::anyhow!(
                                "{e}; the configured targets are: {}",
                                if known.is_empty() {
                                    "(none)".to_string()
                                } else {
                                    known.join(", ")
                                }
                            )
                        }
                        other => other.into(),
                    })?;
                match result.error {
                    None => {
                        println!(
                            "Delivered test notification #{} to {target} in {} ms.",
                            result.notification_id, result.duration_ms
                        );
                        Ok(())
                    }
                    Some(error) => anyhow::bail!(
                        "test notification #{} was not delivered to {target}: {error}",
                        result.notification_id
                    ),
                }
            }
            NotifyCommand::History {
                failed,
                pending,
                environment,
                target,
                limit,
            } => {
                let state = if failed {
                    "failed"
                } else if pending {
                    "pending"
                } else {
                    ""
                };
                let filter = NotificationFilter {
                    environment: environment.unwrap_or_default(),
                    state: state.into(),
                    target: target.unwrap_or_default(),
                    ..Default::default()
                };
                let found = engine.notification_history(&filter, None, limit).await?;
                if found.is_empty() {
                    println!("No notifications.");
                }
                for n in found {
                    println!(
                        "#{} {}  {:<8} {:<20} {}",
                        n.id,
                        when(n.at_ms),
                        n.severity,
                        n.kind,
                        n.summary
                    );
                    if n.deliveries.is_empty() {
                        println!("    (no target: no rule matched)");
                    }
                    for d in n.deliveries {
                        let attempts = if d.attempts == 1 { "attempt" } else { "attempts" };
                        let next = d
                            .next_attempt_ms
                            .map(|at| format!(", next at {}", when(at)))
                            .unwrap_or_default();
                        let error = d.last_error.map(|e| format!(": {e}")).unwrap_or_default();
                        println!(
                            "    {:<16} {:<9} {} {attempts}{next}{error}",
                            d.target, d.state, d.attempts
                        );
                    }
                }
                Ok(())
            }
        }
    }
    .await;
    engine.db().close().await;
    result
}

fn when(ms: i64) -> String {
    local(ms, Tz::UTC, "%Y-%m-%d %H:%M:%S UTC")
}
