//! Instantaneous rates for `INFO stats` (`instantaneous_ops_per_sec`, input/output kbps),
//! sampled every 100 ms over the last 16 samples, as Redis's `trackInstantaneousMetric`.

use crate::Shared;
use commands::Stats;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SAMPLES: usize = 16;

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    ops: u64,
    input: u64,
    output: u64,
}

/// The recent samples.
#[derive(Default)]
pub struct Rates {
    samples: Mutex<VecDeque<Sample>>,
}

impl Rates {
    fn per_sec(&self, f: impl Fn(&Sample) -> u64) -> f64 {
        let s = self.samples.lock();
        let (Some(first), Some(last)) = (s.front(), s.back()) else {
            return 0.0;
        };
        let secs = last.at.duration_since(first.at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        f(last).saturating_sub(f(first)) as f64 / secs
    }

    /// Commands per second.
    pub fn ops_per_sec(&self) -> u64 {
        self.per_sec(|s| s.ops).round() as u64
    }

    /// Kilobytes read per second.
    pub fn input_kbps(&self) -> f64 {
        self.per_sec(|s| s.input) / 1024.0
    }

    /// Kilobytes written per second.
    pub fn output_kbps(&self) -> f64 {
        self.per_sec(|s| s.output) / 1024.0
    }

    fn record(&self, shared: &Shared) {
        let mut s = self.samples.lock();
        s.push_back(Sample {
            at: Instant::now(),
            ops: Stats::get(&shared.stats.total_commands),
            input: shared.net_input_bytes.load(Ordering::Relaxed),
            output: shared.net_output_bytes.load(Ordering::Relaxed),
        });
        while s.len() > SAMPLES {
            s.pop_front();
        }
    }
}

/// Samples until shutdown.
pub async fn run(shared: Arc<Shared>) {
    while !shared.shutting_down.load(Ordering::Relaxed) {
        shared.rates.record(&shared);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
