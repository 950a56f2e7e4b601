//! What one plugin instance's store holds: its WASI context, its grants and
//! the counters its limits are enforced with.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capabilities::Grants;
use crate::capabilities::log::LogBudget;

/// Per-instance store data.
pub struct PluginState {
    pub(crate) plugin: Arc<str>,
    pub(crate) config: Arc<BTreeMap<String, String>>,
    /// What the plugin's section grants it.
    pub(crate) grants: Arc<Grants>,
    /// When the current call must be done; work the host does for it (a
    /// query, a request) stops there too.
    pub(crate) deadline: tokio::time::Instant,
    /// What the plugin may still log (shared by all its instances).
    pub(crate) log_budget: Arc<LogBudget>,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) memory: MemoryLimiter,
    /// Epoch ticks this call may still run for; reset before every call.
    pub(crate) cpu_ticks_left: u64,
    /// Set when the CPU budget ran out, so the trap can be told apart.
    pub(crate) cpu_exhausted: bool,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Bounds linear memory and tables, remembering whether it refused growth so
/// an out-of-memory trap is reported as such rather than as `unreachable`.
pub struct MemoryLimiter {
    pub(crate) max_bytes: usize,
    pub(crate) refused: bool,
}

/// Elements a table may grow to; guests need a few hundred at most.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = true;
            return Err(wasmtime::Error::msg("memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.refused = true;
            return Err(wasmtime::Error::msg("table limit reached"));
        }
        Ok(true)
    }
}
