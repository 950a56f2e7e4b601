//! What the plugins of a runtime did, for the host's metrics: calls by
//! plugin, function and outcome with their latency, and calls running now.
//! Labels are bounded: plugin names come from the configuration, functions
//! and outcomes from fixed lists.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{GuestError, PluginError};

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram: counts per bucket (not cumulative), total, sum.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }

    /// The cumulative count of each bucket, as Prometheus exposes them.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        LATENCY_BUCKETS
            .iter()
            .zip(self.buckets.iter().scan(0, |total, n| {
                *total += n;
                Some(*total)
            }))
            .map(|(bound, count)| (*bound, count))
    }
}

/// One series of plugin calls.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallLabels {
    pub plugin: Arc<str>,
    pub function: &'static str,
    pub outcome: &'static str,
}

/// The plugin calls of one runtime.
#[derive(Debug, Default)]
pub struct CallMetrics {
    calls: Mutex<BTreeMap<CallLabels, Histogram>>,
    in_flight: Mutex<BTreeMap<Arc<str>, u64>>,
}

impl CallMetrics {
    /// Every series of calls so far.
    pub fn calls(&self) -> Vec<(CallLabels, Histogram)> {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.iter().map(|(l, h)| (l.clone(), h.clone())).collect()
    }

    /// Calls running now, by plugin (each holds one of its instances).
    pub fn in_flight(&self) -> Vec<(Arc<str>, u64)> {
        let running = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        running.iter().map(|(p, n)| (p.clone(), *n)).collect()
    }

    /// Counts a call of `plugin` as running until the guard is dropped
    /// (also when the call's future is, cancelled mid-way).
    pub(crate) fn enter<'a>(&'a self, plugin: &'a Arc<str>) -> Running<'a> {
        let mut running = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        *running.entry(plugin.clone()).or_default() += 1;
        Running {
            metrics: self,
            plugin,
        }
    }
}

/// A call counted as running.
pub(crate) struct Running<'a> {
    metrics: &'a CallMetrics,
    plugin: &'a Arc<str>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self
            .metrics
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(self.plugin) {
            *n = n.saturating_sub(1);
        }
    }
}

impl CallMetrics {
    pub(crate) fn record(
        &self,
        plugin: &Arc<str>,
        function: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let labels = CallLabels {
            plugin: plugin.clone(),
            function,
            outcome,
        };
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.entry(labels).or_default().observe(elapsed);
    }
}

/// The outcome label of a call's result.
pub(crate) fn outcome<R>(result: &Result<R, PluginError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(PluginError::Guest { error, .. }) => match error {
            GuestError::NotFound => "not_found",
            GuestError::Conflict(_) => "conflict",
            GuestError::Unavailable(_) => "unavailable",
            GuestError::Denied(_) => "denied",
            GuestError::Invalid(_) => "invalid",
            GuestError::Internal(_) => "internal",
        },
        Err(PluginError::Failed { .. }) => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_into_its_buckets_cumulatively() {
        let mut histogram = Histogram::default();
        for ms in [0, 3, 3, 20_000] {
            histogram.observe(Duration::from_millis(ms));
        }
        assert_eq!(histogram.count, 4);
        let cumulative: Vec<u64> = histogram.cumulative().map(|(_, n)| n).collect();
        assert_eq!(cumulative[0], 1, "0 ms");
        assert_eq!(cumulative[3], 3, "≤ 5 ms");
        assert_eq!(
            cumulative[13], 3,
            "20 s is beyond the last bucket, counted in +Inf only"
        );
    }
}
