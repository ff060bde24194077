use serde::{Deserialize, Serialize};

/// An environment in maintenance mode, as every page of that environment announces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceState {
    pub environment: String,
    pub since_ms: i64,
    /// The user who switched it on, or who requested the restore that did.
    pub entered_by: String,
    pub reason: String,
    /// The job (a restore) that entered it; `None` when a person switched it on by hand.
    pub job_id: Option<i64>,
}

#[cfg(feature = "ssr")]
impl From<engine::maintenance::Maintenance> for MaintenanceState {
    fn from(m: engine::maintenance::Maintenance) -> Self {
        MaintenanceState {
            environment: m.environment,
            since_ms: m.since_ms,
            entered_by: m.entered_by,
            reason: m.reason,
            job_id: m.job_id,
        }
    }
}
