//! Prometheus metrics (`GET /v1/sys/metrics`, text format 0.0.4): requests
//! by route (the audit trail's action name) and status with latency,
//! plugin calls by plugin, function and outcome with latency, plugin calls
//! running now (each holds one of the plugin's instances), the token and
//! data-key caches' hits and misses, whether this node holds the
//! key-management lease, the audit trail's records and health, and the
//! janitor's progress. Every label
//! comes from a bounded set; no secret name ever becomes one.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_runtime::metrics::{CallMetrics, Histogram};

use crate::service::Coffer;

/// Lookups in one of the host's caches and how many missed (and so read
/// storage or unwrapped a key).
#[derive(Default)]
pub struct CacheCounter {
    lookups: AtomicU64,
    misses: AtomicU64,
}

impl CacheCounter {
    /// Counts a lookup.
    pub fn lookup(&self) {
        self.lookups.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a load for a lookup already counted: it missed.
    pub fn missed(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// (hits, misses) so far.
    pub fn counts(&self) -> (u64, u64) {
        let misses = self.misses.load(Ordering::Relaxed);
        let lookups = self.lookups.load(Ordering::Relaxed);
        (lookups.saturating_sub(misses), misses)
    }
}

/// What this node counts between scrapes.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), Histogram>>,
    calls: Option<Arc<CallMetrics>>,
    unauthenticated: bool,
}

impl Metrics {
    /// Metrics that include the calls of `calls`'s plugins, if any; served
    /// without a token when `unauthenticated` (`[metrics]`).
    pub fn new(calls: Option<Arc<CallMetrics>>, unauthenticated: bool) -> Metrics {
        Metrics {
            requests: Mutex::default(),
            calls,
            unauthenticated,
        }
    }

    /// Whether scrapers need no token.
    pub fn unauthenticated(&self) -> bool {
        self.unauthenticated
    }

    /// Counts one answered request to `route` (an action name).
    pub fn observe_request(&self, route: &'static str, status: u16, elapsed: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests
            .entry((route, status))
            .or_default()
            .observe(elapsed);
    }

    /// Everything, in Prometheus's text format.
    pub fn render(&self, coffer: &Coffer) -> String {
        let mut out = String::with_capacity(16 * 1024);
        header(
            &mut out,
            "coffer_http_request_duration_seconds",
            "histogram",
            "Requests answered, by route (the audit action) and status, with their latency.",
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for ((route, status), histogram) in &requests {
            let labels = format!("route=\"{}\",status=\"{status}\"", escape(route));
            histogram_lines(
                &mut out,
                "coffer_http_request_duration_seconds",
                &labels,
                histogram,
            );
        }
        if let Some(calls) = &self.calls {
            header(
                &mut out,
                "coffer_plugin_call_duration_seconds",
                "histogram",
                "Plugin calls, by plugin, function and outcome, with their latency.",
            );
            for (call, histogram) in calls.calls() {
                let labels = format!(
                    "plugin=\"{}\",function=\"{}\",outcome=\"{}\"",
                    escape(&call.plugin),
                    call.function,
                    call.outcome
                );
                histogram_lines(
                    &mut out,
                    "coffer_plugin_call_duration_seconds",
                    &labels,
                    &histogram,
                );
            }
            header(
                &mut out,
                "coffer_plugin_calls_in_flight",
                "gauge",
                "Plugin calls running now, each on one of the plugin's instances.",
            );
            for (plugin, running) in calls.in_flight() {
                let _ = writeln!(
                    out,
                    "coffer_plugin_calls_in_flight{{plugin=\"{}\"}} {running}",
                    escape(&plugin)
                );
            }
        }
        header(
            &mut out,
            "coffer_audit_records",
            "counter",
            "Records this node's audit chain holds (its sequence number).",
        );
        let _ = writeln!(
            out,
            "coffer_audit_records_total {}",
            coffer.audit.sequence()
        );
        header(
            &mut out,
            "coffer_audit_writable",
            "gauge",
            "1 when an audit sink takes records; 0 while every sink fails (requests get 503).",
        );
        let _ = writeln!(
            out,
            "coffer_audit_writable {}",
            u8::from(coffer.audit.healthy())
        );
        for (name, help, counter) in [
            (
                "coffer_cache_hits",
                "Lookups a cache answered, by cache.",
                0,
            ),
            (
                "coffer_cache_misses",
                "Lookups that read storage (tokens) or unwrapped keys (data_keys), by cache.",
                1,
            ),
        ] {
            header(&mut out, name, "counter", help);
            for (cache, counts) in [
                ("tokens", coffer.auth.cache_counts()),
                ("data_keys", coffer.keys.cache_counts()),
            ] {
                let value = if counter == 0 { counts.0 } else { counts.1 };
                let _ = writeln!(out, "{name}_total{{cache=\"{cache}\"}} {value}");
            }
        }
        header(
            &mut out,
            "coffer_lease_held",
            "gauge",
            "1 while this node (the label) holds the key-management lease.",
        );
        let lease = coffer.keys.lease();
        let _ = writeln!(
            out,
            "coffer_lease_held{{node=\"{}\"}} {}",
            escape(lease.node()),
            u8::from(lease.held())
        );
        let janitor = coffer.janitor.counts();
        for (name, kind, help, value) in [
            (
                "coffer_janitor_cycles_total",
                "counter",
                "Janitor cycles run under the lease.",
                janitor.cycles,
            ),
            (
                "coffer_janitor_cycles_skipped_total",
                "counter",
                "Janitor cycles left to another node holding the lease.",
                janitor.skipped,
            ),
            (
                "coffer_janitor_cycles_failed_total",
                "counter",
                "Janitor cycles that failed (retried next cycle).",
                janitor.failed,
            ),
            (
                "coffer_janitor_data_keys_rewrapped_total",
                "counter",
                "Data keys the janitor re-wrapped onto the primary KEK.",
                janitor.data_keys_rewrapped,
            ),
            (
                "coffer_janitor_versions_moved_total",
                "counter",
                "Secret versions the janitor moved onto the Active data key.",
                janitor.versions_moved,
            ),
            (
                "coffer_janitor_left_behind_total",
                "counter",
                "Versions or records the janitor could not move (left for later).",
                janitor.left_behind,
            ),
        ] {
            header(&mut out, name.trim_end_matches("_total"), kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram_lines(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    for (bound, count) in histogram.cumulative() {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
        histogram.count
    );
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum_seconds);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count);
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
