//! Job output, the sending side: the log a running job writes to, its line levels, and the
//! masking of secrets.
//!
//! A leaf module: the process runner, the drivers, the maintenance hooks and the job kinds all
//! write into a [`JobLog`] without knowing where the lines go. The queue's writer
//! (`jobs::log`) stores them; a test or a caller that wants the lines itself takes the receiver
//! of [`JobLog::channel`].

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Lines in flight between the program and the writer.
const CHANNEL_LINES: usize = 4096;
/// A longer line is stored in pieces of this many bytes.
pub const MAX_LINE_BYTES: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Steward's own messages.
    Info,
    Warn,
    Error,
    /// The program's standard output and error.
    Stdout,
    Stderr,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Stdout => "stdout",
            Level::Stderr => "stderr",
        }
    }

    pub(crate) fn parse(s: &str) -> Level {
        match s {
            "warn" => Level::Warn,
            "error" => Level::Error,
            "stdout" => Level::Stdout,
            "stderr" => Level::Stderr,
            _ => Level::Info,
        }
    }
}

/// The sending side, cheap to clone: the program's output readers and the worker hold one.
#[derive(Debug, Clone)]
pub struct JobLog {
    sender: mpsc::Sender<(Level, String)>,
}

impl JobLog {
    /// A log whose lines arrive on the returned receiver (tests, and the writer below).
    pub fn channel() -> (JobLog, mpsc::Receiver<(Level, String)>) {
        let (sender, receiver) = mpsc::channel(CHANNEL_LINES);
        (JobLog { sender }, receiver)
    }

    /// Waits while the writer is behind; a line sent after the writer ended is dropped.
    pub async fn line(&self, level: Level, line: impl Into<String>) {
        let _ = self.sender.send((level, line.into())).await;
    }

    pub async fn info(&self, line: impl Into<String>) {
        self.line(Level::Info, line).await;
    }

    pub async fn warn(&self, line: impl Into<String>) {
        self.line(Level::Warn, line).await;
    }

    pub async fn error(&self, line: impl Into<String>) {
        self.line(Level::Error, line).await;
    }
}

/// Replaces every secret in `line` with `***`. Empty secrets are ignored. Longer secrets go
/// first, so one that contains another is not left half shown.
pub fn mask(line: &str, secrets: &[String]) -> String {
    let mut masked = line.to_string();
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if masked.contains(secret.as_str()) {
            masked = masked.replace(secret.as_str(), "***");
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_wherever_they_appear() {
        let secrets = vec![
            "hunter2hunter2".to_string(),
            String::new(),
            "hunter2hunter2-longer".to_string(),
        ];
        assert_eq!(mask("x=hunter2hunter2-longer", &secrets), "x=***");
        assert_eq!(
            mask("password=hunter2hunter2; again hunter2hunter2", &secrets),
            "password=***; again ***"
        );
        assert_eq!(mask("nothing here", &secrets), "nothing here");
    }
}
