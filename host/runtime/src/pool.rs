//! Warm instances of one plugin, reused across calls.
//!
//! A call takes an idle instance (or makes one), arms its CPU budget, and
//! runs under the plugin's deadline. Only an instance whose call returned
//! normally goes back to the pool: after a trap, a timeout or a cancelled
//! call the store may be mid-execution or poisoned, so it is dropped and the
//! next call gets a fresh one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use tokio::sync::Semaphore;
use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use crate::bindings::types::Error as WitError;
use crate::error::{LoadError, PluginError, PluginFailure};
use crate::metrics::outcome;
use crate::plugin::Prepared;
use crate::state::PluginState;
use crate::text;

/// One live instance: its store and the typed handle of its export.
pub(crate) struct Warm<G> {
    pub store: Store<PluginState>,
    pub guest: G,
}

/// Looks a plugin kind's export up in a fresh instance.
pub(crate) type LoadExport<G> =
    fn(&InstancePre<PluginState>, &mut Store<PluginState>, &Instance) -> wasmtime::Result<G>;

/// A boxed call on a warm instance.
pub(crate) type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

pub(crate) struct Pool<G> {
    pub prepared: Prepared,
    load_export: LoadExport<G>,
    idle: Mutex<Vec<Warm<G>>>,
    permits: Semaphore,
}

impl<G: Send + 'static> Pool<G> {
    fn new(prepared: Prepared, load_export: LoadExport<G>) -> Pool<G> {
        let permits = Semaphore::new(prepared.limits.max_instances.max(1));
        Pool {
            prepared,
            load_export,
            idle: Mutex::new(Vec::new()),
            permits,
        }
    }

    /// A pool for `prepared` whose component must export `interface` (as
    /// `has_export` checks), with one instance started to prove it runs.
    pub async fn start(
        prepared: Prepared,
        interface: &'static str,
        has_export: fn(&InstancePre<PluginState>) -> bool,
        load_export: LoadExport<G>,
    ) -> Result<Pool<G>, LoadError> {
        let plugin = prepared.name.to_string();
        if !has_export(&prepared.instance_pre) {
            return Err(LoadError::MissingExport { plugin, interface });
        }
        let pool = Pool::new(prepared, load_export);
        // Starting an instance now reports a plugin that cannot run at load
        // time rather than on the first request.
        let warm = pool
            .instantiate()
            .await
            .map_err(|failure| LoadError::Start {
                plugin,
                detail: failure.to_string(),
            })?;
        pool.give_back(warm);
        Ok(pool)
    }

    /// Runs `call` (of the export's `function`), names the plugin in
    /// whatever error comes back, and counts the call in the runtime's
    /// metrics.
    pub async fn call_guest<R, F>(&self, function: &'static str, call: F) -> Result<R, PluginError>
    where
        F: for<'a> FnOnce(&'a mut Warm<G>) -> CallFuture<'a, Result<R, WitError>>,
    {
        let metrics = &self.prepared.core.calls;
        let name = &self.prepared.name;
        let started = std::time::Instant::now();
        let running = metrics.enter(name);
        let result = self.answer(call).await;
        drop(running);
        metrics.record(name, function, outcome(&result), started.elapsed());
        result
    }

    async fn answer<R, F>(&self, call: F) -> Result<R, PluginError>
    where
        F: for<'a> FnOnce(&'a mut Warm<G>) -> CallFuture<'a, Result<R, WitError>>,
    {
        let plugin = || self.prepared.name.to_string();
        match self.call(call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(PluginError::Guest {
                plugin: plugin(),
                error: error.into(),
            }),
            Err(failure) => Err(PluginError::Failed {
                plugin: plugin(),
                failure,
            }),
        }
    }

    /// Runs `call` on a warm instance within the plugin's limits.
    async fn call<R, F>(&self, call: F) -> Result<R, PluginFailure>
    where
        F: for<'a> FnOnce(&'a mut Warm<G>) -> CallFuture<'a, R>,
    {
        let limits = &self.prepared.limits;
        let deadline = tokio::time::Instant::now() + limits.call_timeout;
        let _permit = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| PluginFailure::Busy(limits.max_instances))?
            .map_err(|_| PluginFailure::Busy(limits.max_instances))?;

        let outcome = tokio::time::timeout_at(deadline, async {
            let mut warm = match self.take_idle() {
                Some(warm) => warm,
                None => self.instantiate().await?,
            };
            self.prepared.arm(&mut warm.store, deadline);
            match call(&mut warm).await {
                Ok(value) => Ok((value, warm)),
                Err(error) => Err(self.classify(&warm.store, error)),
            }
        })
        .await;

        match outcome {
            Ok(Ok((value, warm))) => {
                self.give_back(warm);
                Ok(value)
            }
            Ok(Err(failure)) => {
                tracing::warn!(plugin = %self.prepared.name, %failure, "plugin call failed; instance discarded");
                Err(failure)
            }
            Err(_) => {
                let failure = PluginFailure::TimedOut(limits.call_timeout);
                tracing::warn!(plugin = %self.prepared.name, %failure, "plugin call failed; instance discarded");
                Err(failure)
            }
        }
    }

    async fn instantiate(&self) -> Result<Warm<G>, PluginFailure> {
        let mut store = self
            .prepared
            .new_store()
            .map_err(|e| PluginFailure::Instantiate(format!("{e:#}")))?;
        let instance = match self
            .prepared
            .instance_pre
            .instantiate_async(&mut store)
            .await
        {
            Ok(instance) => instance,
            // A trap or limit in start-up code is the plugin's doing; anything
            // else (such as the engine's instance slots running out) is not.
            Err(error)
                if error.downcast_ref::<wasmtime::Trap>().is_none() && !hit_limit(&store) =>
            {
                return Err(PluginFailure::Instantiate(text::from_guest(
                    &format!("{error:#}"),
                    text::MAX_MESSAGE_BYTES,
                )));
            }
            Err(error) => return Err(self.classify(&store, error)),
        };
        let guest = (self.load_export)(&self.prepared.instance_pre, &mut store, &instance)
            .map_err(|e| PluginFailure::Instantiate(format!("{e:#}")))?;
        Ok(Warm { store, guest })
    }

    fn take_idle(&self) -> Option<Warm<G>> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn give_back(&self, warm: Warm<G>) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(warm);
        }
    }

    /// Says why a call failed: the limit flags tell a CPU or memory limit
    /// from an ordinary trap.
    fn classify(&self, store: &Store<PluginState>, error: wasmtime::Error) -> PluginFailure {
        let state = store.data();
        if state.cpu_exhausted {
            return PluginFailure::CpuExhausted(self.prepared.limits.cpu_time);
        }
        if state.memory.refused {
            return PluginFailure::OutOfMemory(self.prepared.limits.memory_bytes);
        }
        let detail = match error.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{error:#}"),
        };
        // Trap messages name the guest's own functions: guest text.
        PluginFailure::Trapped(text::from_guest(&detail, text::MAX_MESSAGE_BYTES))
    }
}

/// Whether the instance ran into its CPU or memory limit.
fn hit_limit(store: &Store<PluginState>) -> bool {
    store.data().cpu_exhausted || store.data().memory.refused
}
