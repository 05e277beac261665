//! Latency samples and their percentiles.

use std::time::Duration;

/// The quantiles a latency distribution is kept at for the plots.
pub const CDF_QUANTILES: [f64; 15] =
    [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999];

/// Latencies of completed operations, in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    micros: Vec<u32>,
    sorted: bool,
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.micros.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        self.sorted = false;
    }

    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// (quantile, ms) at each of [`CDF_QUANTILES`]; empty when there are no samples.
    pub fn cdf(&mut self) -> Vec<(f64, f64)> {
        if self.micros.is_empty() {
            return Vec::new();
        }
        CDF_QUANTILES.iter().map(|&q| (q, self.quantile_ms(q))).collect()
    }

    /// The `q` quantile (0.5 = median) in milliseconds, by the nearest-rank method;
    /// 0 when there are no samples.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        if !self.sorted {
            self.micros.sort_unstable();
            self.sorted = true;
        }
        let rank = (q * self.micros.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.micros.len()) - 1;
        f64::from(self.micros[index]) / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut latencies = Latencies::default();
        for ms in (1..=1000).rev() {
            latencies.record(Duration::from_millis(ms));
        }
        assert_eq!(latencies.quantile_ms(0.5), 500.0);
        assert_eq!(latencies.quantile_ms(0.99), 990.0);
        assert_eq!(latencies.quantile_ms(0.999), 999.0);
        assert_eq!(latencies.quantile_ms(1.0), 1000.0);
        assert_eq!(Latencies::default().quantile_ms(0.99), 0.0);
    }
}
