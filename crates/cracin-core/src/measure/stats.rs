//! The few statistics every measurement uses (bench, report, restore timings), in one place so
//! that a median means the same thing in every table cracin prints.

use std::time::Duration;

use serde::Serialize;

/// The smallest, the median and the largest of a sample, and the sample itself.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

impl Stats {
    pub fn of(v: &[f64]) -> Stats {
        Stats {
            min: v.iter().cloned().fold(f64::INFINITY, f64::min),
            median: median(v),
            max: v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            samples: v.to_vec(),
        }
    }
}

/// The median of a sample (0 for an empty one; the mean of the two middle values for an even
/// count).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Percentile of a series (nearest rank on the sorted values; 0 for an empty one).
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    s[((s.len() - 1) as f64 * p).round() as usize]
}

/// A duration in (fractional) milliseconds, the unit of every figure cracin reports.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn ms_of_a_duration() {
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
    }
}
