//! Loading a plugin: read and pin its `.wasm`, compile it (through the
//! cache), check that it imports nothing beyond its grants, and prepare a
//! linker-bound `InstancePre` from which warm instances are made.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use std::time::Duration;
use wasmtime::component::{Component, InstancePre, types::ComponentItem};
use wasmtime::{Store, UpdateDeadline};

use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use crate::capabilities::log::LogBudget;
use crate::capabilities::{self, Grants};
use crate::engine::{Core, EPOCH_TICK, Runtime};
use crate::error::LoadError;
use crate::limits::{Limits, MAX_MEMORY_BYTES};
use crate::state::{MemoryLimiter, PluginState};

/// What a plugin is for; decides which capabilities it may import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginKind {
    Storage,
    Keyring,
    Kms,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Storage => "storage",
            PluginKind::Keyring => "keyring",
            PluginKind::Kms => "kms",
        }
    }
}

/// Everything needed to load one plugin.
#[derive(Clone)]
pub struct PluginSpec {
    /// The name used in logs and errors (the config section's plugin name).
    pub name: String,
    pub wasm_path: PathBuf,
    /// Lowercase hex SHA-256 the `.wasm` must have, when pinned.
    pub sha256: Option<String>,
    /// The plugin's `config` table, every value as a string.
    pub config: BTreeMap<String, String>,
    pub limits: Limits,
    /// What its section grants beyond `log` and `config`.
    pub grants: Grants,
}

impl std::fmt::Debug for PluginSpec {
    // Plugin configuration may hold credentials: show which keys are set,
    // never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSpec")
            .field("name", &self.name)
            .field("wasm_path", &self.wasm_path)
            .field("sha256", &self.sha256)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .field("grants", &self.grants)
            .finish()
    }
}

/// A compiled, linked plugin ready to be instantiated. It holds a share of
/// the runtime, so the engine and its ticker outlive it.
pub(crate) struct Prepared {
    pub name: Arc<str>,
    pub sha256: String,
    pub instance_pre: InstancePre<PluginState>,
    pub limits: Limits,
    config: Arc<BTreeMap<String, String>>,
    grants: Arc<Grants>,
    log_budget: Arc<LogBudget>,
    pub(crate) core: Arc<Core>,
}

impl PluginKind {
    /// The interface a plugin of this kind exports, without its version.
    fn interface(self) -> &'static str {
        match self {
            PluginKind::Storage => "coffer:plugin/storage",
            PluginKind::Keyring => "coffer:plugin/keyring",
            PluginKind::Kms => "coffer:plugin/kms",
        }
    }
}

impl Runtime {
    /// What kind of plugin the component at `path` is, from the interface
    /// it exports (compiling it through the cache, as loading would).
    pub fn kind_of(&self, path: &std::path::Path) -> Result<PluginKind, LoadError> {
        let plugin = path
            .file_stem()
            .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned());
        let shown = path.display().to_string();
        let wasm = std::fs::read(path).map_err(|source| LoadError::Read {
            plugin: plugin.clone(),
            path: shown.clone(),
            source,
        })?;
        let sha256 = hex::encode(Sha256::digest(&wasm));
        let engine = &self.core.engine;
        let component =
            self.core
                .cache
                .load(engine, &wasm, &sha256)
                .map_err(|e| LoadError::Compile {
                    plugin: plugin.clone(),
                    path: shown.clone(),
                    detail: format!("{e:#}"),
                })?;
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        [PluginKind::Storage, PluginKind::Keyring, PluginKind::Kms]
            .into_iter()
            .find(|kind| {
                exports
                    .iter()
                    .any(|name| name.split('@').next() == Some(kind.interface()))
            })
            .ok_or_else(|| LoadError::Compile {
                plugin,
                path: shown,
                detail: format!(
                    "it exports none of coffer's plugin interfaces (it exports: {})",
                    exports.join(", ")
                ),
            })
    }

    /// Reads, verifies, compiles and links a plugin of `kind`.
    pub(crate) fn prepare(
        &self,
        spec: PluginSpec,
        kind: PluginKind,
    ) -> Result<Prepared, LoadError> {
        let plugin = spec.name.clone();
        let path = spec.wasm_path.display().to_string();
        if spec.limits.memory_bytes > MAX_MEMORY_BYTES {
            return Err(LoadError::Grant {
                plugin,
                detail: format!("memory limit may not exceed {MAX_MEMORY_BYTES} bytes"),
            });
        }
        let wasm = std::fs::read(&spec.wasm_path).map_err(|source| LoadError::Read {
            plugin: plugin.clone(),
            path: path.clone(),
            source,
        })?;
        let sha256 = hex::encode(Sha256::digest(&wasm));
        if let Some(expected) = &spec.sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            return Err(LoadError::Sha256Mismatch {
                plugin,
                path,
                expected: expected.clone(),
                actual: sha256,
            });
        }
        let engine = &self.core.engine;
        let component =
            self.core
                .cache
                .load(engine, &wasm, &sha256)
                .map_err(|e| LoadError::Compile {
                    plugin: plugin.clone(),
                    path: path.clone(),
                    detail: format!("{e:#}"),
                })?;
        check_imports(engine, &component, kind, &spec.grants, &plugin)?;

        let linker =
            capabilities::linker(engine, kind).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Compile {
                plugin: plugin.clone(),
                path,
                detail: format!("{e:#}"),
            })?;
        Ok(Prepared {
            name: plugin.into(),
            sha256,
            instance_pre,
            limits: spec.limits,
            config: Arc::new(spec.config),
            grants: Arc::new(spec.grants),
            log_budget: Arc::new(LogBudget::default()),
            core: self.core.clone(),
        })
    }
}

/// Refuses a component that imports anything its kind and grants do not
/// allow, naming the import, before wasmtime's less readable link error.
fn check_imports(
    engine: &wasmtime::Engine,
    component: &Component,
    kind: PluginKind,
    grants: &Grants,
    plugin: &str,
) -> Result<(), LoadError> {
    for (name, item) in component.component_type().imports(engine) {
        let refusal = match item.ty {
            ComponentItem::ComponentInstance(_) => capabilities::refusal(name, kind, grants),
            _ => Some(format!("{name}, which is not an interface")),
        };
        if let Some(refusal) = refusal {
            return Err(LoadError::NotGranted {
                plugin: plugin.to_owned(),
                refusal,
            });
        }
    }
    Ok(())
}

impl Prepared {
    /// A fresh store for one instance, with this plugin's grants and limits.
    pub fn new_store(&self) -> wasmtime::Result<Store<PluginState>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if !self.grants.clock {
            wasi.wall_clock(StoppedClock).monotonic_clock(StoppedClock);
        }
        for (name, value) in &self.grants.env {
            wasi.env(name, value.as_str());
        }
        let state = PluginState {
            plugin: self.name.clone(),
            config: self.config.clone(),
            grants: self.grants.clone(),
            deadline: tokio::time::Instant::now(),
            log_budget: self.log_budget.clone(),
            wasi: wasi.build(),
            table: wasmtime::component::ResourceTable::new(),
            memory: MemoryLimiter {
                max_bytes: self.limits.memory_bytes,
                refused: false,
            },
            cpu_ticks_left: 0,
            cpu_exhausted: false,
        };
        let mut store = Store::new(self.instance_pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if state.cpu_ticks_left == 0 {
                state.cpu_exhausted = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            state.cpu_ticks_left -= 1;
            // Yielding each tick keeps the executor responsive and lets the
            // wall-clock deadline fire even while a guest spins.
            Ok(UpdateDeadline::Yield(1))
        });
        self.arm(
            &mut store,
            tokio::time::Instant::now() + self.limits.call_timeout,
        );
        Ok(store)
    }

    /// Gives the next call a full CPU budget and the deadline the host
    /// bounds the work it does on the call's behalf by.
    pub fn arm(&self, store: &mut Store<PluginState>, deadline: tokio::time::Instant) {
        let ticks = self.limits.cpu_time.as_millis() / EPOCH_TICK.as_millis();
        let state = store.data_mut();
        state.deadline = deadline;
        state.cpu_ticks_left = u64::try_from(ticks).unwrap_or(u64::MAX).max(1);
        state.cpu_exhausted = false;
        store.set_epoch_deadline(1);
    }
}

/// The clock of a plugin not granted the time: always zero.
struct StoppedClock;

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
