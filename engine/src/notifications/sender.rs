//! The sending side of the outbox: each instance looks for due deliveries once a second, takes
//! each under a lease (one conditional `UPDATE`, so one instance gets it), delivers it, and
//! records the attempt. A failed attempt is tried again after `retry_seconds`, doubling up to an
//! hour, until `max_attempts`; then the delivery is recorded as failed.
//!
//! The same loop runs the periodic checks ([`super::events`]) every [`CHECK_EVERY`].

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{NotifyError, Severity, send};
use crate::{
    Engine,
    db::{notifications as rows, now_ms},
};

const TICK: Duration = Duration::from_secs(1);
/// How often overdue backups and long maintenance are looked for.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(30);
/// Deliveries taken per look.
const BATCH: i64 = 20;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// How a test notification went.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub notification_id: i64,
    /// `None`: the target accepted it.
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl Engine {
    /// Delivers notifications and runs the periodic checks until `stop` is cancelled. `instance`
    /// names this instance on the leases it takes.
    pub async fn run_notifier(&self, instance: String, stop: CancellationToken) {
        tracing::info!(
            targets = self.config().notifications.targets.len(),
            "notification sender started"
        );
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_check: Option<Instant> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if last_check.is_none_or(|at| at.elapsed() >= CHECK_EVERY) {
                last_check = Some(Instant::now());
                if let Err(e) = self.check_conditions(now_ms()).await {
                    tracing::warn!("notification checks: {e}");
                }
            }
            if let Err(e) = self.deliver_due(&instance).await {
                tracing::warn!("notification sender: {e}");
            }
        }
    }

    /// Takes the deliveries that are due and delivers them: the targets at the same time (a slow
    /// mail server does not hold up a webhook), each target's oldest first. Returns how many
    /// were attempted.
    pub async fn deliver_due(&self, instance: &str) -> Result<usize, NotifyError> {
        let now = now_ms();
        let due = rows::due(self.db().pool(), now, BATCH).await?;
        let mut claimed = Vec::new();
        for (id, target) in due {
            if rows::claim(
                self.db().pool(),
                id,
                &target,
                instance,
                now,
                self.delivery_lease_until(now),
            )
            .await?
            {
                claimed.push((id, target));
            }
        }
        let count = claimed.len();
        // Targets at the same time; each target's notifications one after the other, oldest
        // first, so that a problem never arrives after its own recovery.
        let mut by_target: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
        for (id, target) in &claimed {
            by_target.entry(target.as_str()).or_default().push(*id);
        }
        let per_target = by_target.into_iter().map(|(target, mut ids)| async move {
            ids.sort_unstable();
            for id in ids {
                self.attempt(instance, id, target).await?;
            }
            Ok::<(), NotifyError>(())
        });
        for result in futures::future::join_all(per_target).await {
            result?;
        }
        Ok(count)
    }

    /// Claims and delivers one delivery at once (a test from the console).
    pub(super) async fn deliver_now(&self, id: i64, target: &str) -> Result<TestResult, NotifyError> {
        let instance = format!("test-{}", uuid::Uuid::new_v4());
        let now = now_ms();
        if !rows::claim(
            self.db().pool(),
            id,
            target,
            &instance,
            now,
            self.delivery_lease_until(now),
        )
        .await?
        {
            return Ok(TestResult {
                notification_id: id,
                error: Some("another Steward instance is sending it".into()),
                duration_ms: 0,
            });
        }
        let (error, duration_ms) = self.attempt(&instance, id, target).await?;
        Ok(TestResult {
            notification_id: id,
            error,
            duration_ms,
        })
    }

    /// One attempt of a delivery this instance holds the lease of; records it and what comes
    /// next. Returns the error, if it failed, and how long it took.
    async fn attempt(&self, instance: &str, id: i64, target_name: &str) -> Result<(Option<String>, i64), NotifyError> {
        let config = &self.config().notifications;
        // A full lease for this attempt: one waiting behind its target's earlier ones may have
        // used up the lease it was claimed with, and another instance may have taken it since.
        let now = now_ms();
        if !rows::renew(
            self.db().pool(),
            id,
            target_name,
            instance,
            self.delivery_lease_until(now),
        )
        .await?
        {
            tracing::info!(
                notification = id,
                target = target_name,
                "another instance took this delivery over"
            );
            return Ok((None, 0));
        }
        let Some(row) = rows::get(self.db().pool(), id).await? else {
            return Ok((None, 0));
        };
        let started = Instant::now();
        let result = match config.targets.get(target_name) {
            None => Err(format!(
                "the target \"{target_name}\" is no longer in the configuration"
            )),
            Some(target) => {
                let message = send::Message {
                    id: row.id,
                    kind: row.kind.clone(),
                    environment: row.environment.clone(),
                    severity: Severity::parse(&row.severity).unwrap_or(Severity::Critical),
                    recovery: row.recovery != 0,
                    summary: row.summary.clone(),
                    detail: row.detail.clone(),
                    url: self.console_link(&row.link),
                    at_ms: row.created_at,
                };
                let timeout = Duration::from_secs(u64::from(config.timeout_seconds));
                send::deliver(target, &message, timeout).await
            }
        };
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let error = result.err();

        let now = now_ms();
        let delivery = rows::delivery(self.db().pool(), id, target_name).await?;
        let attempts = delivery.map_or(0, |d| d.attempts) + 1;
        let give_up = attempts >= i64::from(config.max_attempts)
            || row.kind == "test"
            || !config.targets.contains_key(target_name);
        let (state, next) = match &error {
            None => ("delivered", now),
            Some(_) if give_up => ("failed", now),
            Some(_) => ("pending", now + backoff_ms(config.retry_seconds, attempts)),
        };
        let mut tx = self.db().begin_write().await?;
        rows::record_attempt(&mut *tx, id, target_name, instance, now, error.as_deref(), duration_ms).await?;
        let recorded =
            rows::after_attempt(&mut *tx, id, target_name, instance, state, next, error.as_deref(), now).await?;
        tx.commit().await?;
        if state != "pending" {
            crate::metrics::notification_delivery(target_name, state == "delivered");
        }
        match (&error, state) {
            (None, _) => tracing::info!(
                notification = id,
                target = target_name,
                attempts,
                "notification delivered"
            ),
            (Some(e), "failed") => tracing::error!(
                notification = id,
                target = target_name,
                attempts,
                "notification not delivered, giving up: {e}"
            ),
            (Some(e), _) => tracing::warn!(
                notification = id,
                target = target_name,
                attempts,
                "notification not delivered, trying again later: {e}"
            ),
        }
        if !recorded {
            tracing::warn!(
                notification = id,
                target = target_name,
                "the lease on a delivery ran out while it was being sent"
            );
        }
        Ok((error, duration_ms))
    }

    /// A lease long enough for one attempt, with its timeout, to finish and be recorded.
    fn delivery_lease_until(&self, now: i64) -> i64 {
        now + i64::from(self.config().notifications.timeout_seconds) * 2_000 + 10_000
    }
}

/// The wait after the `attempts`th failed attempt: `retry_seconds`, doubling, at most an hour.
pub(super) fn backoff_ms(retry_seconds: u32, attempts: i64) -> i64 {
    let doublings = u32::try_from((attempts - 1).clamp(0, 20)).unwrap_or(20);
    (i64::from(retry_seconds) * 1000)
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_MS)
}
