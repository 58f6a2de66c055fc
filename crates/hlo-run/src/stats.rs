//! Timing statistics in the style of iree-benchmark-module: min, median, p99.

use std::time::Duration;

/// Summary of repeated timings.
#[derive(Clone, Debug, PartialEq)]
pub struct Timings {
    pub runs: usize,
    pub min: Duration,
    pub median: Duration,
    pub p99: Duration,
    pub mean: Duration,
}

impl Timings {
    /// Summarises `samples`; `None` when there are none.
    pub fn from_samples(samples: &[Duration]) -> Option<Timings> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        let total: Duration = sorted.iter().sum();
        Some(Timings {
            runs: sorted.len(),
            min: sorted[0],
            median: pick(0.5),
            p99: pick(0.99),
            mean: total / sorted.len() as u32,
        })
    }
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_sequence() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let t = Timings::from_samples(&samples).unwrap();
        assert_eq!(t.min, Duration::from_millis(1));
        assert_eq!(t.median, Duration::from_millis(51));
        assert_eq!(t.p99, Duration::from_millis(99));
        assert_eq!(t.runs, 100);
        assert!(Timings::from_samples(&[]).is_none());
    }
}
