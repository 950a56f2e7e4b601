//! Plugins that can be replaced while the server runs: each running plugin
//! sits behind a [`Live`] handle that every call goes through. A call
//! takes the plugin current when it starts and finishes on it; a swap only
//! changes which plugin later calls take, and the old one is dropped —
//! its instances with it — when its last call returns. A storage's writes
//! can also be frozen for a moment (while `coffer migrate` switches
//! stores): reads go on, writes wait.

use std::sync::{Arc, RwLock};

use coffer_crypto::tink::TinkKeyset;
use coffer_runtime::{
    Entry, Expected, Keyring, Kms, KmsKey, KmsWrapped, Page, PluginError, Storage,
};
use zeroize::Zeroizing;

/// A plugin of trait `T` that can be swapped for another.
pub struct Live<T: ?Sized> {
    current: RwLock<Arc<T>>,
    /// Held shared by each storage write, exclusively by a freeze.
    writes: tokio::sync::RwLock<()>,
}

impl<T: ?Sized> Live<T> {
    pub fn new(plugin: Arc<T>) -> Live<T> {
        Live {
            current: RwLock::new(plugin),
            writes: tokio::sync::RwLock::new(()),
        }
    }

    /// Waits for the writes in flight, and holds later ones until the
    /// guard is dropped.
    pub async fn freeze(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.writes.write().await
    }

    /// The plugin calls starting now go to.
    pub fn current(&self) -> Arc<T> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `plugin` the one later calls go to; returns the one before.
    pub fn replace(&self, plugin: Arc<T>) -> Arc<T> {
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *current, plugin)
    }
}

#[async_trait::async_trait]
impl Storage for Live<dyn Storage> {
    async fn get(&self, key: &str) -> Result<Option<Entry>, PluginError> {
        self.current().get(key).await
    }

    async fn put(&self, key: &str, value: &[u8], expected: Expected) -> Result<u64, PluginError> {
        let _unfrozen = self.writes.read().await;
        self.current().put(key, value, expected).await
    }

    async fn delete(&self, key: &str, expected: Expected) -> Result<(), PluginError> {
        let _unfrozen = self.writes.read().await;
        self.current().delete(key, expected).await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, PluginError> {
        self.current().list(prefix, after, limit).await
    }
}

#[async_trait::async_trait]
impl Keyring for Live<dyn Keyring> {
    async fn load(&self) -> Result<Option<TinkKeyset>, PluginError> {
        self.current().load().await
    }

    async fn store(&self, keyset: &TinkKeyset) -> Result<(), PluginError> {
        self.current().store(keyset).await
    }
}

#[async_trait::async_trait]
impl Kms for Live<dyn Kms> {
    async fn describe(&self) -> Result<KmsKey, PluginError> {
        self.current().describe().await
    }

    async fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<KmsWrapped, PluginError> {
        self.current().wrap(plaintext, aad).await
    }

    async fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, PluginError> {
        self.current().unwrap(blob, aad).await
    }

    async fn rotate(&self) -> Result<KmsKey, PluginError> {
        self.current().rotate().await
    }
}
