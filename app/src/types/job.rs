use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    pub fn is_retryable(self) -> bool {
        matches!(self, JobStatus::Failed | JobStatus::Cancelled | JobStatus::Interrupted)
    }
}

/// A job as lists and the job page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    pub id: i64,
    /// "backup #41", "delete-drafts #7".
    pub title: String,
    pub kind: String,
    pub environment: String,
    pub status: JobStatus,
    /// Holds its environment's slot (changes the environment).
    pub exclusive: bool,
    pub requested_by: String,
    pub reason: String,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub attempt: i64,
    pub retry_of: Option<i64>,
    pub steps: Vec<String>,
    pub steps_done: i64,
    /// (done, total) as the program reports it.
    pub progress: Option<(i64, i64)>,
    pub error: Option<String>,
    pub cancel_requested_by: Option<String>,
    pub acknowledged_by: Option<String>,
    /// It ended so that a retry may be asked for, and its kind allows one.
    pub retryable: bool,
}

impl JobSummary {
    /// Percent for the progress bar: the program's own report, else the steps done; `None`
    /// while nothing is known.
    pub fn percent(&self) -> Option<u8> {
        if self.status == JobStatus::Succeeded {
            return Some(100);
        }
        // Where the program got to (also once it failed or was stopped), else the steps. A
        // report without a total (a backup counts bytes written, not knowing the end) says
        // nothing about the share done.
        let (done, total) = self
            .progress
            .filter(|&(_, total)| total > 0)
            .unwrap_or((self.steps_done, i64::try_from(self.steps.len()).unwrap_or(0)));
        (total > 0).then(|| u8::try_from((done.clamp(0, total) * 100) / total).unwrap_or(100))
    }
}

/// One line of a job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLogLine {
    pub seq: i64,
    pub at_ms: i64,
    /// info, warn, error (Steward's own), stdout, stderr (the program's).
    pub level: String,
    pub line: String,
}

/// The job page's first load: the job and the end of its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDetail {
    pub job: JobSummary,
    pub log: Vec<JobLogLine>,
    /// Lines in the whole log (the page shows the last ones).
    pub total_lines: i64,
    /// Its environment is a production one: a retry asks for its name.
    pub production: bool,
    /// The job that retries this one, once there is one.
    pub retried_as: Option<i64>,
    /// The backup a `backup` job writes (it exists once the job has succeeded), a `verify` job
    /// reads, or a `restore` job restores.
    pub backup_id: Option<String>,
    /// A `restore` job's safety backup, taken before it restores anything.
    pub safety_backup_id: Option<String>,
    /// The failed restore a `restore` job undoes (by restoring that one's safety backup).
    pub undo_of: Option<i64>,
}

/// A page of the jobs list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPage {
    pub jobs: Vec<JobSummary>,
    /// `before` for the next (older) page, when there is one.
    pub older: Option<i64>,
}

/// A configured action of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSummary {
    pub name: String,
    pub label: String,
    pub exclusive: bool,
}

/// What the environment page shows beyond the environment itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentActivity {
    pub actions: Vec<ActionSummary>,
    /// Interrupted jobs nobody acknowledged or retried: a banner each.
    pub interrupted: Vec<JobSummary>,
    /// The latest jobs of the environment.
    pub recent: Vec<JobSummary>,
}

#[cfg(feature = "ssr")]
impl From<engine::jobs::Job> for JobSummary {
    fn from(job: engine::jobs::Job) -> Self {
        JobSummary {
            title: job.title(),
            id: job.id,
            kind: job.kind,
            environment: job.environment,
            status: JobStatus::parse(job.state.as_str()).unwrap_or(JobStatus::Failed),
            exclusive: job.exclusive,
            requested_by: job.requested_by,
            reason: job.reason,
            created_at_ms: job.created_at_ms,
            started_at_ms: job.started_at_ms,
            finished_at_ms: job.finished_at_ms,
            attempt: job.attempt,
            retry_of: job.retry_of,
            steps: job.steps,
            steps_done: job.steps_done,
            progress: job.progress,
            error: job.error,
            cancel_requested_by: job.cancel_requested_by,
            acknowledged_by: job.acknowledged_by,
            retryable: job.state.is_retryable() && job.spec.as_ref().is_some_and(|s| s.retry_refusal().is_none()),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::jobs::log::LogLine> for JobLogLine {
    fn from(line: engine::jobs::log::LogLine) -> Self {
        JobLogLine {
            seq: line.seq,
            at_ms: line.at_ms,
            level: line.level.as_str().to_string(),
            line: line.line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: JobStatus, progress: Option<(i64, i64)>, steps_done: i64) -> JobSummary {
        JobSummary {
            id: 1,
            title: "backup #1".into(),
            kind: "command".into(),
            environment: "prod".into(),
            status,
            exclusive: true,
            requested_by: "alice".into(),
            reason: String::new(),
            created_at_ms: 0,
            started_at_ms: None,
            finished_at_ms: None,
            attempt: 1,
            retry_of: None,
            steps: vec!["Dump".into(), "Compress".into()],
            steps_done,
            progress,
            error: None,
            cancel_requested_by: None,
            acknowledged_by: None,
            retryable: status.is_retryable(),
        }
    }

    #[test]
    fn the_progress_bar_prefers_the_programs_own_report() {
        assert_eq!(job(JobStatus::Running, Some((3, 10)), 0).percent(), Some(30));
        assert_eq!(job(JobStatus::Cancelled, Some((3, 10)), 0).percent(), Some(30));
        assert_eq!(job(JobStatus::Running, None, 1).percent(), Some(50));
        assert_eq!(job(JobStatus::Succeeded, Some((3, 10)), 0).percent(), Some(100));
        assert_eq!(job(JobStatus::Queued, None, 0).percent(), Some(0));
        // Bytes written without a total: the steps tell how far it is.
        assert_eq!(job(JobStatus::Running, Some((12_000_000, 0)), 1).percent(), Some(50));
    }
}
