//! Helpers shared by Steward's benchmarks (the binaries in `src/bin`).
//!
//! Benchmarks are not tests: nothing here asserts a time. A benchmark measures the thing and a
//! reference run of the bare work underneath it in the same process, and reports both and their
//! ratio, so a slow machine or a busy CI runner shows up in the reference instead of as a failure.

use std::time::Duration;

pub mod run;

use serde::Serialize;

/// Percentiles of a set of latencies, in milliseconds (fractional: sub-millisecond figures are
/// kept).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub samples: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    /// Nearest-rank percentiles: p95 of 1,000 samples is the 950th smallest. `None` when there
    /// are no samples.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let n = sorted.len();
            // ceil(p × n), as a 1-based rank, clamped to 1..=n.
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
            sorted[rank - 1]
        };
        Some(Summary {
            samples: sorted.len(),
            min_ms: sorted[0],
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            max_ms: sorted[sorted.len() - 1],
            mean_ms: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

/// `0.42 ms`, `12.3 ms`, `1534 ms`: enough digits to compare, no more.
pub fn ms(value: f64) -> String {
    if value < 1.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=1000).rev().map(Duration::from_millis).collect();
        let s = Summary::of(&samples).unwrap();
        assert_eq!(s.samples, 1000);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.p50_ms, 500.0);
        assert_eq!(s.p95_ms, 950.0);
        assert_eq!(s.p99_ms, 990.0);
        assert_eq!(s.max_ms, 1000.0);
        assert!(Summary::of(&[]).is_none());
    }
}
