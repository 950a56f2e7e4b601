//! The one wasmtime engine of a coffer process, its cache of compiled
//! components, and the ticker that bounds CPU time through epoch
//! interruption. Every plugin loaded from a [`Runtime`] holds a share of
//! it, so the engine and its ticker live exactly as long as the last
//! plugin: nothing has to be kept alive by hand.

use std::path::PathBuf;
use std::sync::Arc;

use crate::metrics::CallMetrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::ComponentCache;
use crate::error::LoadError;
use crate::limits::MAX_MEMORY_BYTES;

/// How often the epoch advances: the granularity of CPU budgets.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Instance slots the pooling allocator reserves across all plugins.
const INSTANCE_SLOTS: u32 = 512;

/// Settings of the runtime as a whole.
#[derive(Clone, Debug, Default)]
pub struct RuntimeOptions {
    /// Directory for compiled components; none disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// The plugin runtime: engine, component cache and epoch ticker. Cheap to
/// clone; plugins loaded from it keep it running.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) core: Arc<Core>,
}

/// What every plugin of a runtime shares.
pub(crate) struct Core {
    pub(crate) engine: Engine,
    pub(crate) cache: ComponentCache,
    /// What every plugin's calls did.
    pub(crate) calls: Arc<CallMetrics>,
    ticker: Ticker,
}

impl Runtime {
    /// Builds the engine (pooling allocator, epoch interruption) and starts
    /// the ticker thread.
    pub fn new(options: RuntimeOptions) -> Result<Runtime, LoadError> {
        let engine = Engine::new(&engine_config()).map_err(|e| LoadError::Engine(e.to_string()))?;
        let cache = ComponentCache::new(&engine, options.cache_dir)
            .map_err(|e| LoadError::Engine(format!("cannot create the component cache: {e}")))?;
        let ticker = Ticker::start(engine.clone())
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Runtime {
            core: Arc::new(Core {
                engine,
                cache,
                calls: Arc::new(CallMetrics::default()),
                ticker,
            }),
        })
    }

    /// The calls plugins of this runtime answered, for metrics.
    pub fn call_metrics(&self) -> Arc<CallMetrics> {
        self.core.calls.clone()
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

fn engine_config() -> Config {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(INSTANCE_SLOTS)
        .total_core_instances(INSTANCE_SLOTS * 4)
        .total_memories(INSTANCE_SLOTS)
        .total_tables(INSTANCE_SLOTS * 2)
        .total_stacks(INSTANCE_SLOTS)
        .max_memory_size(MAX_MEMORY_BYTES)
        .max_core_instances_per_component(16)
        .max_memories_per_component(2)
        .max_tables_per_component(4)
        // Keep a little of each slot resident so reusing it stays cheap.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(1 << 16)
        .async_stack_keep_resident(1 << 16)
        .decommit_batch_size(16);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
        .max_wasm_stack(1 << 20);
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until stopped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("coffer-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
