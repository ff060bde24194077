//! The gauges `/metrics` reads from the database at each scrape: the dashboard's facts (see
//! [`crate::metrics`] for the names and why state is read, not recorded). Here, beside the
//! dashboard, because it reads what the dashboard reads (the catalog, the queue, maintenance):
//! `metrics` itself stays a leaf every module may record into.

use std::{
    collections::BTreeSet,
    sync::{LazyLock, Mutex},
};

use metrics::{counter, gauge};

use crate::{
    Engine,
    db::{backups as backup_rows, jobs as job_rows, maintenance as maintenance_rows},
    jobs::kind::registry,
    metrics::{
        BACKUP_EXPECTED_WITHIN, BACKUP_SIZE, BACKUPS, BUILD_INFO, JOBS, LAST_BACKUP, LAST_TEST_RESTORE, MAINTENANCE,
        NOTIFICATION_DELIVERIES, NOTIFICATION_FAILURES, STORAGE_USED, seconds,
    },
};

/// The job states [`JOBS`] counts.
const ACTIVE_STATES: [&str; 2] = ["running", "queued"];

/// Every `kind` [`JOBS`] has shown: a kind this build does not know (queued by a newer instance)
/// is set back to 0 once its jobs are gone, rather than left at its last count.
static SEEN_KINDS: LazyLock<Mutex<BTreeSet<String>>> = LazyLock::new(Mutex::default);

impl Engine {
    /// Sets the gauges that come from the database (see the module docs), for every configured
    /// environment. Called when `/metrics` is scraped, so the answer is as fresh as the
    /// database; a few small queries per environment.
    pub async fn refresh_metrics(&self) -> sqlx::Result<()> {
        let pool = self.db().pool();
        gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        for environment in &self.config().environments {
            let name = environment.name.clone();
            let latest = backup_rows::latest(pool, &name).await?;
            let (bytes, count) = backup_rows::usage(pool, &name).await?;
            let proven = backup_rows::newest_proven_at(pool, &name).await?;
            let in_maintenance = maintenance_rows::get(pool, &name).await?.is_some();

            // Nothing to back up and nothing backed up: no age to alert on.
            if !environment.resources.is_empty() || latest.is_some() {
                let taken = latest.as_ref().map_or(0.0, |backup| seconds(backup.created_at));
                gauge!(LAST_BACKUP, "environment" => name.clone()).set(taken);
                let proven = proven.map_or(0.0, |(_, at)| seconds(at));
                gauge!(LAST_TEST_RESTORE, "environment" => name.clone()).set(proven);
            }
            if let Some(backup) = &latest {
                gauge!(BACKUP_SIZE, "environment" => name.clone()).set(backup.total_size as f64);
            }
            if let Some(hours) = environment.backup_expected_within_hours {
                gauge!(BACKUP_EXPECTED_WITHIN, "environment" => name.clone()).set(f64::from(hours) * 3600.0);
            }
            gauge!(STORAGE_USED, "environment" => name.clone()).set(bytes as f64);
            gauge!(BACKUPS, "environment" => name.clone()).set(count as f64);
            gauge!(MAINTENANCE, "environment" => name).set(if in_maintenance { 1.0 } else { 0.0 });
        }

        // Targets nobody has notified yet read 0, so that `increase()` works from the start.
        for target in self.config().notifications.targets.keys() {
            counter!(NOTIFICATION_DELIVERIES, "target" => target.clone()).increment(0);
            counter!(NOTIFICATION_FAILURES, "target" => target.clone()).increment(0);
        }

        let active = job_rows::active_counts(pool).await?;
        let kinds: Vec<String> = {
            let mut seen = SEEN_KINDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            seen.extend(registry().iter().map(|kind| kind.name.to_string()));
            seen.extend(active.iter().map(|(kind, _, _)| kind.clone()));
            seen.iter().cloned().collect()
        };
        for kind in kinds {
            for state in ACTIVE_STATES {
                let count = active
                    .iter()
                    .find(|(k, s, _)| *k == kind && s == state)
                    .map_or(0, |(_, _, count)| *count);
                gauge!(JOBS, "state" => state, "kind" => kind.clone()).set(count as f64);
            }
        }
        Ok(())
    }
}
