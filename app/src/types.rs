//! Wire types: what server functions send to the browser. Built explicitly from engine types
//! (never the engine's own structs), so nothing reaches the browser by accident — a password
//! hash has no path here.

mod audit;
mod backup;
mod environment;
mod job;
mod maintenance;
mod notification;
mod restore;
mod schedule;
mod user;

pub use audit::{AuditEntry, AuditQuery, AuditView, ChainCheck, encode};
pub use backup::{
    BackupArtifact, BackupDetail, BackupList, BackupSort, BackupSummary, BackupTestRestore, BackupVerification,
    EnvironmentBackupStatus, EnvironmentStorage, ResourceSummary, SizePoint, is_overdue,
};
pub use environment::EnvironmentSummary;
pub use job::{ActionSummary, EnvironmentActivity, JobDetail, JobLogLine, JobPage, JobStatus, JobSummary};
pub use maintenance::MaintenanceState;
pub use notification::{
    NotificationDelivery, NotificationEntry, NotificationHistory, NotificationRule, NotificationSettings,
    NotificationTarget, TestNotificationResult,
};
pub use restore::{FailedRestore, RestorePreview, RestoredResource};
pub use schedule::{EnvironmentHealth, RetentionRow, RetentionView, RunningJob, ScheduleSummary};
pub use user::{CurrentUser, LockedName, Role, UserSummary};
