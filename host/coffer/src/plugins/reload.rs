//! Replacing the running plugins from the config, without a restart
//! (`coffer plugin reload`, `POST /v1/sys/plugins/reload`, SIGHUP).
//!
//! Each plugin section is loaded again and checked before anything is
//! swapped — its pin, kind and imports (loading), that it opens (a first
//! call), that a new storage is the very store this server writes (a
//! random probe written through the running plugin must read back through
//! the new one: a copy or another database is refused, since moving data
//! is `coffer migrate`'s), and that a new keyring or KMS is the same root:
//! the engine's own keys, as stored, unwrap through it to the very keys in
//! use, and it holds every KEK key that wraps a data key (a KMS must still
//! bind the AAD). The root is checked and swapped holding the key lease,
//! so no rotation or re-wrap runs across it. Only when every section
//! passes are the plugins swapped, all at once: calls started before
//! finish on the old plugin, later ones go to the new, and the old one's
//! instances go when its last call returns. A section that fails leaves
//! the running plugins serving, and says why (loading a plugin may still
//! have run its `open`, such as creating a missing SQLite file or table).

use std::sync::{Arc, RwLock};

use coffer_runtime::{Expected, Keyring, Kms, Runtime, Storage};
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::{Live, PluginInfo, load_keyring, load_kms, load_storage};
use crate::config::Config;
use crate::error::Error;
use crate::keys::system::{self, read_system_key};
use crate::keys::{Kek, RootSource};
use crate::maintenance::KeyAdmin;
use crate::store::layout;

/// Why a reload was refused; nothing was swapped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReloadError(pub String);

/// One plugin after a reload.
#[derive(Clone, Debug, Serialize)]
pub struct Reloaded {
    pub kind: &'static str,
    pub name: String,
    pub sha256_before: String,
    pub sha256: String,
}

/// The root of the key hierarchy as a swappable plugin.
#[derive(Clone)]
pub enum LiveRoot {
    Keyring(Arc<Live<dyn Keyring>>),
    Kms(Arc<Live<dyn Kms>>),
}

impl LiveRoot {
    /// The source the key hierarchy reads through (always the live handle).
    pub fn source(&self) -> RootSource {
        match self {
            LiveRoot::Keyring(live) => RootSource::Keyring(live.clone()),
            LiveRoot::Kms(live) => RootSource::Kms(live.clone()),
        }
    }
}

/// The running plugins, swappable.
pub struct LivePlugins {
    pub(super) runtime: Runtime,
    pub(super) storage: Arc<Live<dyn Storage>>,
    root: LiveRoot,
    infos: RwLock<Vec<PluginInfo>>,
    /// One reload or migration at a time.
    pub(super) reloading: tokio::sync::Mutex<()>,
    /// The last migration (`super::migrate`).
    pub(super) migration: std::sync::Mutex<Option<super::migrate::MigrationStatus>>,
}

impl LivePlugins {
    /// What the plugins' calls did, for metrics.
    pub fn call_metrics(&self) -> Arc<coffer_runtime::metrics::CallMetrics> {
        self.runtime.call_metrics()
    }

    pub fn new(
        runtime: Runtime,
        storage: Arc<Live<dyn Storage>>,
        root: LiveRoot,
        infos: Vec<PluginInfo>,
    ) -> LivePlugins {
        LivePlugins {
            runtime,
            storage,
            root,
            infos: RwLock::new(infos),
            reloading: tokio::sync::Mutex::new(()),
            migration: std::sync::Mutex::new(None),
        }
    }

    /// The plugins serving now.
    pub fn infos(&self) -> Vec<PluginInfo> {
        match self.infos.read() {
            Ok(infos) => infos.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Records that storage is now `info`'s plugin.
    pub(super) fn set_storage_info(&self, info: PluginInfo) {
        let mut infos = match self.infos.write() {
            Ok(infos) => infos,
            Err(poisoned) => poisoned.into_inner(),
        };
        infos.retain(|plugin| plugin.kind != "storage");
        infos.insert(0, info);
    }

    /// Loads and checks every plugin section of `config`, then swaps them
    /// all in, or none.
    pub async fn reload(
        &self,
        config: &Config,
        keys: &KeyAdmin,
    ) -> Result<Vec<Reloaded>, ReloadError> {
        let _one_at_a_time = self.reloading.try_lock().map_err(|_| {
            ReloadError("another reload or a migration is running: try again after it".to_owned())
        })?;
        let refuse = |section: &str, why: String| ReloadError(format!("{section}: {why}"));

        // The pool the new plugin was lent is dropped with it; shredding
        // keeps the first pool, on the same database.
        let (storage, _sql) = load_storage(&self.runtime, config)
            .await
            .map_err(|e| ReloadError(e.to_string()))?;
        same_store(self.storage.as_ref(), &storage)
            .await
            .map_err(|why| refuse("storage", why))?;
        let storage_info = info("storage", storage.name(), storage.sha256());

        let (root, root_info) = match (&self.root, &config.kms) {
            (LiveRoot::Keyring(_), None) => {
                let keyring = load_keyring(&self.runtime, config)
                    .await
                    .map_err(|e| ReloadError(e.to_string()))?;
                let info = info("keyring", keyring.name(), keyring.sha256());
                (RootSource::Keyring(Arc::new(keyring)), info)
            }
            (LiveRoot::Kms(_), Some(section)) => {
                let kms = load_kms(&self.runtime, config, section)
                    .await
                    .map_err(|e| ReloadError(e.to_string()))?;
                let info = info("kms", kms.name(), kms.sha256());
                (RootSource::Kms(Arc::new(kms)), info)
            }
            _ => {
                return Err(ReloadError(
                    "the config moves the root between [keyring] and [kms]: that needs a \
                     restart, with the keys moved"
                        .to_owned(),
                ));
            }
        };
        let section = root_info.kind;
        let storage = Arc::new(storage);
        let swap_root = async || -> crate::error::Result<()> {
            let kek = keys.root().replacement(&root).await?;
            same_root(storage.as_ref(), &keys.root().current(), &kek).await?;
            keys.check_keks(&kek).await?;
            // Every check passed: swap all at once.
            self.storage.replace(storage.clone());
            match (&self.root, &root) {
                (LiveRoot::Keyring(live), RootSource::Keyring(keyring)) => {
                    live.replace(keyring.clone());
                }
                (LiveRoot::Kms(live), RootSource::Kms(kms)) => {
                    live.replace(kms.clone());
                }
                _ => {}
            }
            // The KEK read through the new plugin, which the checks vouched for.
            keys.root().install(kek);
            Ok(())
        };
        keys.exclusively(swap_root)
            .await
            .map_err(|e| refuse(section, e.to_string()))?;
        let before = self.infos();
        let after = vec![storage_info, root_info];
        let reloaded = after
            .iter()
            .map(|now| Reloaded {
                kind: now.kind,
                name: now.name.clone(),
                sha256_before: before
                    .iter()
                    .find(|b| b.kind == now.kind)
                    .map(|b| b.sha256.clone())
                    .unwrap_or_default(),
                sha256: now.sha256.clone(),
            })
            .collect();
        match self.infos.write() {
            Ok(mut infos) => *infos = after,
            Err(poisoned) => *poisoned.into_inner() = after,
        }
        tracing::info!("reloaded the plugins");
        Ok(reloaded)
    }
}

fn info(kind: &'static str, name: &str, sha256: &str) -> PluginInfo {
    PluginInfo {
        kind,
        name: name.to_owned(),
        sha256: sha256.to_owned(),
    }
}

/// Checks that `new` opens and is the store `old` is: a random value
/// written through `old` reads back through `new`. A copy of the store (a
/// restored backup, a replica) holds the same records but not the probe.
async fn same_store(old: &dyn Storage, new: &dyn Storage) -> Result<(), String> {
    new.get(layout::HEALTH_PROBE)
        .await
        .map_err(|e| format!("the new plugin does not answer: {e}"))?;
    let probe = coffer_crypto::KeyMaterial::generate(coffer_crypto::Algorithm::Aes256Gcm);
    old.put(layout::RELOAD_PROBE, probe.as_bytes(), Expected::Any)
        .await
        .map_err(|e| format!("the running plugin cannot write the probe: {e}"))?;
    let seen = new
        .get(layout::RELOAD_PROBE)
        .await
        .map_err(|e| format!("the new plugin cannot read: {e}"));
    let _ = old.delete(layout::RELOAD_PROBE, Expected::Any).await;
    match seen? {
        Some(entry) if bool::from(entry.value.ct_eq(probe.as_bytes())) => Ok(()),
        _ => Err(
            "the new plugin is not the store this server writes (a copy or another \
             database; moving data to another store is `coffer migrate`'s job)"
                .to_owned(),
        ),
    }
}

/// Checks that `candidate` is the root `current` is: each of the engine's
/// own keys, as stored, unwraps through both to the same bytes.
async fn same_root(
    storage: &dyn Storage,
    current: &Kek,
    candidate: &Kek,
) -> crate::error::Result<()> {
    for name in [system::RECORDS, system::AUDIT] {
        let ours = read_system_key(storage, current, name).await?;
        let theirs = read_system_key(storage, candidate, name)
            .await
            .map_err(|e| {
                Error::KeyUnavailable(format!("the new root cannot unwrap system key {name}: {e}"))
            })?;
        let same = match (&ours, &theirs) {
            (Some(ours), Some(theirs)) => bool::from(ours.ct_eq(theirs)),
            (None, None) => true,
            _ => false,
        };
        if !same {
            return Err(Error::KeyUnavailable(format!(
                "the new root unwraps system key {name} to another key: it is not this server's root"
            )));
        }
    }
    Ok(())
}
