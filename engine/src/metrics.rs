//! Steward's Prometheus metrics: every name in one place, their descriptions, and the small
//! functions the rest of the engine records them with.
//!
//! Recording goes through the `metrics` facade, so the engine knows no exporter: the server
//! installs the Prometheus recorder and renders it at `/metrics`; without a recorder (the CLI,
//! most tests) every call here costs next to nothing. Names follow Prometheus' conventions:
//! the `steward_` prefix, the unit in the name (`_seconds`, `_bytes`, `_timestamp_seconds`),
//! `_total` on counters.
//!
//! Two sources, on purpose:
//!
//! - **Events** are recorded where they happen, in the process that saw them: how long each job
//!   took ([`job_finished`], a histogram by kind and outcome), each backup's size and duration
//!   ([`backup_stored`]), notification deliveries ([`notification_delivery`]). With several
//!   instances on one PostgreSQL database each instance counts its own; sum them in queries.
//! - **State** is read from the database when Prometheus scrapes ([`crate::Engine::refresh_metrics`], in `health`):
//!   the last backup and the last proven test restore, storage used, maintenance mode, running
//!   and queued jobs. The database is the truth, so these survive a restart and read the same
//!   from every instance.
//!
//! A timestamp that has never happened (no backup yet, never a passing test restore) is `0`,
//! not absent: `time() - steward_last_backup_success_timestamp_seconds > 26 * 3600` then fires
//! for an environment that was never backed up, which is what such an alert is for. Only an
//! environment with nothing to back up (no resources) and no backups has no timestamp series.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// Histogram: how long jobs ran, from claim to end; labels `kind`, `outcome` (`succeeded`,
/// `failed`, `cancelled`, `interrupted`).
pub const JOB_DURATION: &str = "steward_job_duration_seconds";
/// Gauge: jobs now `running` or `queued`; labels `state`, `kind`.
pub const JOBS: &str = "steward_jobs";
/// Gauge: the size of an environment's newest backup; label `environment`.
pub const BACKUP_SIZE: &str = "steward_backup_size_bytes";
/// Histogram: how long backups took, from the first byte to the catalog; label `environment`.
pub const BACKUP_DURATION: &str = "steward_backup_duration_seconds";
/// Gauge: when the newest backup in the catalog was taken (its start: the age of the data it
/// holds, as the dashboard's "last backup"), Unix seconds, 0 for never; label `environment`.
pub const LAST_BACKUP: &str = "steward_last_backup_success_timestamp_seconds";
/// Gauge: when the newest backup whose latest test restore passed was proven (the dashboard's
/// "last proven restore"), Unix seconds, 0 for never; label `environment`.
pub const LAST_TEST_RESTORE: &str = "steward_last_test_restore_success_timestamp_seconds";
/// Gauge: bytes all backups of an environment take; label `environment`.
pub const STORAGE_USED: &str = "steward_storage_used_bytes";
/// Gauge: how many backups an environment has; label `environment`.
pub const BACKUPS: &str = "steward_backups";
/// Gauge: 1 while an environment is in maintenance mode, else 0; label `environment`.
pub const MAINTENANCE: &str = "steward_maintenance";
/// Gauge: `backup_expected_within_hours` in seconds, for environments that set it: alert rules
/// can compare a backup's age with each environment's own expectation; label `environment`.
pub const BACKUP_EXPECTED_WITHIN: &str = "steward_backup_expected_within_seconds";
/// Counter: notifications handed to a target, whether they arrived or not; label `target`.
pub const NOTIFICATION_DELIVERIES: &str = "steward_notification_deliveries_total";
/// Counter: notifications a target never received (every attempt failed); label `target`.
pub const NOTIFICATION_FAILURES: &str = "steward_notification_failures_total";
/// Gauge: always 1; label `version`.
pub const BUILD_INFO: &str = "steward_build_info";

/// Histograms whose names end so get [`DURATION_BUCKETS`] (real Prometheus histograms, which
/// can be summed across instances, rather than summaries, which cannot).
pub const DURATION_SUFFIX: &str = "duration_seconds";
/// Upper bounds, in seconds, from a quick action to a half-day database dump.
pub const DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0,
];

/// Registers the help text and unit of every metric with the installed recorder. Call it once,
/// after installing one.
pub fn describe() {
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "How long jobs ran, by kind and outcome (succeeded, failed, cancelled, interrupted)."
    );
    describe_gauge!(JOBS, "Jobs now running or queued, by state and kind.");
    describe_gauge!(
        BACKUP_SIZE,
        Unit::Bytes,
        "Size of the newest backup of the environment."
    );
    describe_histogram!(
        BACKUP_DURATION,
        Unit::Seconds,
        "How long backups of the environment took."
    );
    describe_gauge!(
        LAST_BACKUP,
        Unit::Seconds,
        "When the newest backup of the environment was taken (Unix time; 0: never)."
    );
    describe_gauge!(
        LAST_TEST_RESTORE,
        Unit::Seconds,
        "When the newest backup whose latest test restore passed was proven (Unix time; 0: never)."
    );
    describe_gauge!(STORAGE_USED, Unit::Bytes, "Bytes the environment's backups take.");
    describe_gauge!(BACKUPS, "Backups the environment has.");
    describe_gauge!(MAINTENANCE, "1 while the environment is in maintenance mode, else 0.");
    describe_gauge!(
        BACKUP_EXPECTED_WITHIN,
        Unit::Seconds,
        "The environment's backup_expected_within_hours, in seconds."
    );
    describe_counter!(
        NOTIFICATION_DELIVERIES,
        "Notifications handed to the target, delivered or not."
    );
    describe_counter!(
        NOTIFICATION_FAILURES,
        "Notifications the target never received (every attempt failed)."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version of Steward is a label.");
}

/// A job ended: `outcome` is its final state (`succeeded`, `failed`, `cancelled`,
/// `interrupted`), `elapsed` the time from claim to end.
pub fn job_finished(kind: &str, outcome: &str, elapsed: Duration) {
    histogram!(JOB_DURATION, "kind" => kind.to_string(), "outcome" => outcome.to_string())
        .record(elapsed.as_secs_f64());
}

/// A backup of `environment` is in the catalog: `bytes` in all, taken in `elapsed`.
pub fn backup_stored(environment: &str, bytes: u64, elapsed: Duration) {
    gauge!(BACKUP_SIZE, "environment" => environment.to_string()).set(bytes as f64);
    histogram!(BACKUP_DURATION, "environment" => environment.to_string()).record(elapsed.as_secs_f64());
}

/// A notification to `target` arrived (`delivered`) or was given up on. Called once per
/// notification and target, after the last attempt, not per retry.
pub fn notification_delivery(target: &str, delivered: bool) {
    counter!(NOTIFICATION_DELIVERIES, "target" => target.to_string()).increment(1);
    if !delivered {
        counter!(NOTIFICATION_FAILURES, "target" => target.to_string()).increment(1);
    }
}

/// Unix milliseconds as the seconds Prometheus' `time()` counts in.
pub(crate) fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests;
