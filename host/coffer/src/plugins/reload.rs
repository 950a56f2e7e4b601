//! Replacing the running plugins from the config, without a restart
//! (`coffer plugin reload`, `POST /v1/sys/plugins/reload`, SIGHUP).
//!
//! Each plugin section is loaded again and checked before anything is
//! swapped — its pin, kind and imports (loading), that it opens (a first
//! call), that a new storage holds this server's records (not another
//! store's: moving data is `coffer migrate`'s), and that a new keyring or
//! KMS holds every KEK key in use (and a KMS still binds the AAD). Only
//! when every section passes are the plugins swapped, all at once: calls
//! started before finish on the old plugin, later ones go to the new, and
//! the old one's instances go when its last call returns. A section that
//! fails leaves everything as it was, and says why.

use std::sync::{Arc, RwLock};

use coffer_runtime::{Keyring, Kms, Runtime, Storage};
use serde::Serialize;

use super::{Live, PluginInfo, load_keyring, load_kms, load_storage};
use crate::config::Config;
use crate::keys::{RootSource, system};
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
    runtime: Runtime,
    storage: Arc<Live<dyn Storage>>,
    root: LiveRoot,
    infos: RwLock<Vec<PluginInfo>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl LivePlugins {
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
        }
    }

    /// The plugins serving now.
    pub fn infos(&self) -> Vec<PluginInfo> {
        match self.infos.read() {
            Ok(infos) => infos.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads and checks every plugin section of `config`, then swaps them
    /// all in, or none.
    pub async fn reload(
        &self,
        config: &Config,
        keys: &KeyAdmin,
    ) -> Result<Vec<Reloaded>, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let refuse = |section: &str, why: String| ReloadError(format!("{section}: {why}"));

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
        let kek = keys
            .root()
            .replacement(&root)
            .await
            .map_err(|e| refuse(section, e.to_string()))?;
        keys.check_keks(&kek)
            .await
            .map_err(|e| refuse(section, e.to_string()))?;

        // Every check passed: swap all at once.
        self.storage.replace(Arc::new(storage));
        match (&self.root, root) {
            (LiveRoot::Keyring(live), RootSource::Keyring(keyring)) => {
                live.replace(keyring);
            }
            (LiveRoot::Kms(live), RootSource::Kms(kms)) => {
                live.replace(kms);
            }
            _ => {}
        }
        // The KEK read through the new plugin, which the checks vouched for.
        keys.root().install(kek);
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

/// Checks that `new` opens and holds the records `old` holds (the record
/// key, which every store of this server has and no other store has the
/// same of).
async fn same_store(old: &dyn Storage, new: &dyn Storage) -> Result<(), String> {
    new.get(layout::HEALTH_PROBE)
        .await
        .map_err(|e| format!("the new plugin does not answer: {e}"))?;
    let marker = layout::system_key(system::RECORDS);
    let theirs = new
        .get(&marker)
        .await
        .map_err(|e| format!("the new plugin cannot read: {e}"))?;
    let ours = old
        .get(&marker)
        .await
        .map_err(|e| format!("the running plugin cannot read: {e}"))?;
    match (ours, theirs) {
        (Some(ours), Some(theirs)) if ours.value == theirs.value => Ok(()),
        _ => Err(
            "the new plugin does not hold this server's records (moving data to another \
             store is `coffer migrate`'s job)"
                .to_owned(),
        ),
    }
}
