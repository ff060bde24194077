//! What the driver tests share: a context whose log and progress reports are collected,
//! scratch and output directories, and the skip-or-fail rule for tools and servers that are
//! missing.

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    drivers::Context,
    jobs::log::{JobLog, Level},
};

type Report = Box<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// Every (done, total) a driver reported.
type Reports = Arc<Mutex<Vec<(u64, Option<u64>)>>>;

/// What a [`Context`] borrows, owned by the test.
pub struct Harness {
    pub log: JobLog,
    /// Every line logged so far (the log is drained as it comes, so a chatty driver never
    /// waits on a full channel).
    pub logged: Arc<Mutex<Vec<(Level, String)>>>,
    drain: JoinHandle<()>,
    pub stop: CancellationToken,
    pub scratch: tempfile::TempDir,
    pub out: tempfile::TempDir,
    /// Every progress report: bytes done, and the total when known.
    pub progress: Reports,
    report: Report,
}

impl Harness {
    pub fn new() -> Harness {
        let (log, mut receiver) = JobLog::channel();
        let logged = Arc::new(Mutex::new(Vec::new()));
        let sink = logged.clone();
        let drain = tokio::spawn(async move {
            while let Some(line) = receiver.recv().await {
                sink.lock().unwrap().push(line);
            }
        });
        let progress = Arc::new(Mutex::new(Vec::new()));
        let seen = progress.clone();
        Harness {
            log,
            logged,
            drain,
            stop: CancellationToken::new(),
            scratch: tempfile::tempdir().unwrap(),
            out: tempfile::tempdir().unwrap(),
            progress,
            report: Box::new(move |done, total| seen.lock().unwrap().push((done, total))),
        }
    }

    pub fn ctx(&self) -> Context<'_> {
        Context {
            environment: "staging",
            resource: "main",
            backup_id: "staging-20261122-0436-7f3a",
            description: "before the upgrade",
            log: &self.log,
            stop: &self.stop,
            progress: &*self.report,
            scratch: self.scratch.path(),
            tool_env: &[],
        }
    }

    /// The most bytes any progress report said were done.
    pub fn progress_max(&self) -> u64 {
        self.progress
            .lock()
            .unwrap()
            .iter()
            .map(|(done, _)| *done)
            .max()
            .unwrap_or(0)
    }

    /// Every line logged, once the driver is done.
    pub async fn lines(self) -> Vec<(Level, String)> {
        drop(self.log);
        self.drain.await.unwrap();
        Arc::try_unwrap(self.logged)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_default()
    }
}

/// Whether a test of something this machine lacks must fail (CI) or may skip, loudly.
pub fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and {why}");
    }
    eprintln!("SKIPPED: {why}");
}
