//! The `log` capability: plugin messages into the host's tracing log.
//!
//! Writing the log is work the host does on a plugin's behalf, so it is
//! bounded: each line is cut at 4 KiB with control characters escaped, and
//! each plugin has a byte budget ([`LogBudget`]) that refills over time.
//! Lines beyond it are dropped and counted, and the count is logged once
//! the plugin may log again.

use std::sync::Mutex;
use std::time::Instant;

use wasmtime::component::HasSelf;

use super::{ALL_KINDS, Capability};
use crate::bindings::{
    self,
    log::{Host, Level},
};
use crate::state::PluginState;
use crate::text;

/// Every plugin may log.
pub(crate) const CAPABILITY: Capability = Capability {
    interface: "coffer:plugin/log",
    kinds: ALL_KINDS,
    grant: None,
    link: |linker| bindings::log::add_to_linker::<_, HasSelf<_>>(linker, |s| s),
};

/// Longest message kept; the rest is cut.
const MAX_MESSAGE_BYTES: usize = 4096;
/// Bytes a plugin may log in a burst.
const BURST_BYTES: f64 = 256.0 * 1024.0;
/// Bytes a plugin may log per second, sustained.
const BYTES_PER_SECOND: f64 = 16.0 * 1024.0;

/// What one plugin (all its instances) may still log.
pub struct LogBudget {
    state: Mutex<Budget>,
}

struct Budget {
    bytes_left: f64,
    refilled: Instant,
    dropped: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            state: Mutex::new(Budget {
                bytes_left: BURST_BYTES,
                refilled: Instant::now(),
                dropped: 0,
            }),
        }
    }
}

impl LogBudget {
    /// Takes `bytes` from the budget. Returns whether the line may be
    /// written and, when it may, how many lines were dropped before it.
    fn take(&self, bytes: usize) -> (bool, u64) {
        let mut budget = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let gained = now.duration_since(budget.refilled).as_secs_f64() * BYTES_PER_SECOND;
        budget.bytes_left = (budget.bytes_left + gained).min(BURST_BYTES);
        budget.refilled = now;
        let cost = bytes as f64;
        if budget.bytes_left < cost {
            budget.dropped += 1;
            return (false, 0);
        }
        budget.bytes_left -= cost;
        (true, std::mem::take(&mut budget.dropped))
    }
}

impl Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message = text::from_guest(&message, MAX_MESSAGE_BYTES);
        let plugin = &*self.plugin;
        let (allowed, dropped) = self.log_budget.take(message.len());
        if dropped > 0 {
            tracing::warn!(
                target: "coffer::plugin",
                plugin,
                dropped,
                "the plugin logged more than its log budget: lines were dropped"
            );
        }
        if !allowed {
            return Ok(());
        }
        match level {
            Level::Trace => tracing::trace!(target: "coffer::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "coffer::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "coffer::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "coffer::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "coffer::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_budget_and_counted() {
        let budget = LogBudget::default();
        let mut written = 0usize;
        for _ in 0..20_000 {
            if budget.take(4096).0 {
                written += 4096;
            }
        }
        assert!(
            written as f64 <= BURST_BYTES + BYTES_PER_SECOND,
            "{written}"
        );
        let state = budget.state.lock().unwrap_or_else(|p| p.into_inner());
        assert!(state.dropped > 19_000, "{}", state.dropped);
    }
}
