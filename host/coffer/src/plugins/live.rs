//! Plugins that can be replaced while the server runs: each running plugin
//! sits behind a [`Live`] handle that every call goes through. A call
//! takes the plugin current when it starts and finishes on it; a swap only
//! changes which plugin later calls take, and the old one is dropped —
//! its instances with it — when its last call returns. A storage's writes
//! can also be frozen for a moment (while `coffer migrate` switches
//! stores): reads go on, writes wait. While a migration copies, the keys
//! written are noted, so the freeze only re-copies what changed.

use std::sync::{Arc, RwLock};

use coffer_crypto::tink::TinkKeyset;
use coffer_runtime::{
    Entry, Expected, Keyring, Kms, KmsKey, KmsWrapped, Page, PluginError, Storage, Write,
};
use zeroize::Zeroizing;

/// A plugin of trait `T` that can be swapped for another.
pub struct Live<T: ?Sized> {
    current: RwLock<Arc<T>>,
    /// Held shared by each storage write, exclusively by a freeze.
    writes: tokio::sync::RwLock<()>,
    /// The keys written since tracking began, while it is on.
    written: std::sync::Mutex<Option<std::collections::BTreeSet<String>>>,
}

impl<T: ?Sized> Live<T> {
    pub fn new(plugin: Arc<T>) -> Live<T> {
        Live {
            current: RwLock::new(plugin),
            writes: tokio::sync::RwLock::new(()),
            written: std::sync::Mutex::new(None),
        }
    }

    /// Waits for the writes in flight, and holds later ones until the
    /// guard is dropped. Not re-entrant: a write through this handle while
    /// holding the guard waits forever.
    pub async fn freeze(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.writes.write().await
    }

    fn lock_written(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<std::collections::BTreeSet<String>>> {
        match self.written.lock() {
            Ok(written) => written,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Starts (or restarts) noting the keys written.
    pub fn track_writes(&self) {
        *self.lock_written() = Some(std::collections::BTreeSet::new());
    }

    /// The keys written since tracking began or was last taken from;
    /// tracking goes on.
    pub fn take_written(&self) -> std::collections::BTreeSet<String> {
        self.lock_written()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Stops noting the keys written.
    pub fn stop_tracking(&self) {
        *self.lock_written() = None;
    }

    fn note_write(&self, key: &str) {
        if let Some(written) = self.lock_written().as_mut() {
            written.insert(key.to_owned());
        }
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
        self.note_write(key);
        self.current().put(key, value, expected).await
    }

    async fn delete(&self, key: &str, expected: Expected) -> Result<(), PluginError> {
        let _unfrozen = self.writes.read().await;
        self.note_write(key);
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

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, PluginError> {
        self.current().get_many(keys).await
    }

    async fn put_many(
        &self,
        writes: &[Write],
    ) -> Result<Vec<Result<u64, PluginError>>, PluginError> {
        let _unfrozen = self.writes.read().await;
        for write in writes {
            self.note_write(&write.key);
        }
        self.current().put_many(writes).await
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
