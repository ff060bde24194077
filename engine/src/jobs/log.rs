//! A running job's log: lines go through a bounded channel to one writer task that masks
//! secrets and stores them in batches.
//!
//! Batching is what lets a program print 100,000 lines without stalling anything: the writer
//! stores up to [`rows::LOG_ROWS_PER_INSERT`] lines per statement and commits at least every
//! [`FLUSH_EVERY`], so followers see new lines well within a second. When the database falls
//! behind, the channel fills and the program waits on its own output pipe — memory stays
//! bounded and no line is dropped.
//!
//! A program may report progress by printing `::progress:: DONE/TOTAL` (e.g. `::progress:: 3/10`)
//! on a line of its own; the job's progress bar shows it and the line is not logged.

use std::time::Duration;

use tokio::{sync::mpsc, task::JoinHandle};

pub use crate::output::{JobLog, Level, MAX_LINE_BYTES, mask};
use crate::{
    Engine,
    db::{jobs as rows, now_ms},
};

/// The longest time a line waits before it is stored.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
const PROGRESS_PREFIX: &str = "::progress::";

/// One stored line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub seq: i64,
    pub at_ms: i64,
    pub level: Level,
    pub line: String,
}

impl From<rows::LogRow> for LogLine {
    fn from(row: rows::LogRow) -> Self {
        LogLine {
            seq: row.seq,
            at_ms: row.at,
            level: Level::parse(&row.level),
            line: row.line,
        }
    }
}

/// `::progress:: 3/10` → `(3, 10)`.
fn parse_progress(line: &str) -> Option<(i64, i64)> {
    let (done, total) = line.trim().strip_prefix(PROGRESS_PREFIX)?.trim().split_once('/')?;
    let done = done.trim().parse::<i64>().ok()?;
    let total = total.trim().parse::<i64>().ok()?;
    (total > 0 && (0..=total).contains(&done)).then_some((done, total))
}

/// Starts the writer of job `job_id`'s log. Dropping every [`JobLog`] ends it; await the handle
/// to know that every line is stored.
pub fn start_writer(engine: &Engine, job_id: i64, secrets: Vec<String>) -> (JobLog, JoinHandle<()>) {
    let (log, receiver) = JobLog::channel();
    let engine = engine.clone();
    let handle = tokio::spawn(async move { write_lines(engine, job_id, secrets, receiver).await });
    (log, handle)
}

async fn write_lines(engine: Engine, job_id: i64, secrets: Vec<String>, mut receiver: mpsc::Receiver<(Level, String)>) {
    // After what is stored already (a retry of the store, or a line the reaper added).
    let mut next_seq = rows::last_seq(engine.db().pool(), job_id).await.unwrap_or(0) + 1;
    let mut batch: Vec<rows::LogRow> = Vec::new();
    let mut progress = None;
    loop {
        // Wait for a first line, then collect what arrives within FLUSH_EVERY.
        let Some(first) = receiver.recv().await else { break };
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        let mut next = Some(first);
        while let Some((level, line)) = next.take() {
            match parse_progress(&line) {
                Some(reported) if level == Level::Stdout => progress = Some(reported),
                _ => {
                    batch.push(rows::LogRow {
                        seq: next_seq,
                        at: now_ms(),
                        level: level.as_str().to_string(),
                        line: mask(&line, &secrets),
                    });
                    next_seq += 1;
                }
            }
            if batch.len() >= rows::LOG_ROWS_PER_INSERT {
                break;
            }
            next = tokio::time::timeout_at(deadline, receiver.recv()).await.ok().flatten();
        }
        store(&engine, job_id, &mut batch, progress.take()).await;
    }
    store(&engine, job_id, &mut batch, progress.take()).await;
}

/// Stores a batch; retries a failing database a few times rather than losing lines.
async fn store(engine: &Engine, job_id: i64, batch: &mut Vec<rows::LogRow>, progress: Option<(i64, i64)>) {
    if batch.is_empty() && progress.is_none() {
        return;
    }
    for attempt in 1..=5 {
        // Someone else added a line meanwhile (the reaper): number this batch after it.
        if attempt > 1
            && let Ok(last) = rows::last_seq(engine.db().pool(), job_id).await
            && batch.first().is_some_and(|first| first.seq <= last)
        {
            for (i, row) in batch.iter_mut().enumerate() {
                row.seq = last + 1 + i64::try_from(i).unwrap_or(0);
            }
        }
        let result = async {
            let mut tx = engine.db().begin_write().await?;
            rows::append_log(&mut *tx, job_id, batch).await?;
            if let Some((done, total)) = progress {
                rows::set_progress(&mut *tx, job_id, done, total).await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                batch.clear();
                engine.signals().bump();
                return;
            }
            Err(e) => {
                tracing::warn!(job = job_id, attempt, error = %e, "storing job log lines failed");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }
    tracing::error!(
        job = job_id,
        lines = batch.len(),
        "job log lines could not be stored and are lost"
    );
    batch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_recognised() {
        assert_eq!(parse_progress("::progress:: 3/10"), Some((3, 10)));
        assert_eq!(parse_progress("  ::progress::10/10 "), Some((10, 10)));
        assert_eq!(parse_progress("::progress:: 11/10"), None);
        assert_eq!(parse_progress("::progress:: x/10"), None);
        assert_eq!(parse_progress("progress 3/10"), None);
    }
}
