//! Loading a plugin: read and pin its `.wasm`, compile it (through the
//! cache), check that it imports nothing beyond its grants, and prepare a
//! linker-bound `InstancePre` from which warm instances are made.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use std::time::Duration;
use wasmtime::component::{Component, InstancePre, Linker, types::ComponentItem};
use wasmtime::{Store, UpdateDeadline};

use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};
use zeroize::Zeroizing;

use crate::capabilities::files::FileGrant;
use crate::capabilities::log::LogBudget;
use crate::capabilities::{self, sql::SqlPool};
use crate::engine::{EPOCH_TICK, Runtime};
use crate::error::LoadError;
use crate::limits::{Limits, MAX_MEMORY_BYTES};
use crate::state::{MemoryLimiter, PluginState};

/// What a plugin is for; decides which imports it may have.
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

    /// Whether a component of this kind may import interface `name`. WASI's
    /// cli/io/random/clocks/filesystem/sockets are what Rust's standard
    /// library links against; they grant nothing by themselves (no
    /// environment, arguments, preopens or sockets are configured unless
    /// granted). Only storage plugins may import `sql`, only keyrings
    /// `files`.
    fn may_import(self, name: &str) -> bool {
        const EVERY_KIND: &[&str] = &[
            "wasi:cli/",
            "wasi:io/",
            "wasi:random/",
            "wasi:clocks/",
            "wasi:filesystem/",
            "wasi:sockets/",
            "coffer:plugin/types",
            "coffer:plugin/log",
            "coffer:plugin/config",
        ];
        EVERY_KIND.iter().any(|prefix| name.starts_with(prefix))
            || (self == PluginKind::Storage && name.starts_with("coffer:plugin/sql"))
            || (self == PluginKind::Keyring && name.starts_with("coffer:plugin/files"))
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
    /// Files lent to the plugin by name (keyrings only).
    pub files: Vec<FileGrant>,
    /// Whether the plugin may read the real time. Without it, its wall and
    /// monotonic clocks stand still at zero (timers still fire).
    pub clock: bool,
    /// Environment variables (name, value) the plugin sees; it sees no
    /// other. Values may be secrets: `Debug` shows the names only.
    pub env: Vec<(String, Zeroizing<String>)>,
}

impl std::fmt::Debug for PluginSpec {
    // Plugin configuration holds credentials (tokens, access keys): show
    // which keys are set, never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSpec")
            .field("name", &self.name)
            .field("wasm_path", &self.wasm_path)
            .field("sha256", &self.sha256)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .field("files", &self.files)
            .field("clock", &self.clock)
            .field(
                "env_names",
                &self.env.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A compiled, linked plugin ready to be instantiated.
pub(crate) struct Prepared {
    pub name: Arc<str>,
    pub sha256: String,
    pub instance_pre: InstancePre<PluginState>,
    pub limits: Limits,
    config: Arc<BTreeMap<String, String>>,
    files: Arc<[FileGrant]>,
    clock: bool,
    env: Vec<(String, Zeroizing<String>)>,
    sql: Option<Arc<SqlPool>>,
    log_budget: Arc<LogBudget>,
}

impl Runtime {
    /// Reads, verifies, compiles and links a plugin of `kind`.
    pub(crate) fn prepare(
        &self,
        spec: PluginSpec,
        kind: PluginKind,
        sql: Option<Arc<SqlPool>>,
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
        let component =
            self.cache
                .load(&self.engine, &wasm, &sha256)
                .map_err(|e| LoadError::Compile {
                    plugin: plugin.clone(),
                    path: path.clone(),
                    detail: format!("{e:#}"),
                })?;
        self.check_imports(&component, kind, &plugin)?;
        if kind != PluginKind::Keyring && !spec.files.is_empty() {
            return Err(LoadError::Grant {
                plugin,
                detail: format!("{} plugins cannot be granted files", kind.as_str()),
            });
        }

        let linker = self
            .linker(kind)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
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
            files: spec.files.into(),
            clock: spec.clock,
            env: spec.env,
            sql,
            log_budget: Arc::new(LogBudget::default()),
        })
    }

    /// Refuses a component that imports anything its kind is not granted,
    /// naming the import, before wasmtime's less readable link error.
    fn check_imports(
        &self,
        component: &Component,
        kind: PluginKind,
        plugin: &str,
    ) -> Result<(), LoadError> {
        for (name, item) in component.component_type().imports(&self.engine) {
            let is_interface = matches!(item.ty, ComponentItem::ComponentInstance(_));
            if !is_interface || !kind.may_import(name) {
                return Err(LoadError::NotGranted {
                    plugin: plugin.to_owned(),
                    kind: kind.as_str(),
                    import: name.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn linker(&self, kind: PluginKind) -> wasmtime::Result<Linker<PluginState>> {
        let mut linker = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        capabilities::add_common(&mut linker)?;
        match kind {
            PluginKind::Storage => capabilities::add_sql(&mut linker)?,
            PluginKind::Keyring => capabilities::add_files(&mut linker)?,
            PluginKind::Kms => {}
        }
        Ok(linker)
    }
}

impl Prepared {
    /// A fresh store for one instance, with this plugin's grants and limits.
    pub fn new_store(&self) -> wasmtime::Result<Store<PluginState>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if !self.clock {
            wasi.wall_clock(StoppedClock).monotonic_clock(StoppedClock);
        }
        for (name, value) in &self.env {
            wasi.env(name, value.as_str());
        }
        let state = PluginState {
            plugin: self.name.clone(),
            config: self.config.clone(),
            sql: self.sql.clone(),
            files: self.files.clone(),
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
        self.arm(&mut store);
        Ok(store)
    }

    /// Gives the next call a full CPU budget.
    pub fn arm(&self, store: &mut Store<PluginState>) {
        let ticks = self.limits.cpu_time.as_millis() / EPOCH_TICK.as_millis();
        let state = store.data_mut();
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
