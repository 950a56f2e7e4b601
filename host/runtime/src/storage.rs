//! The `Storage` trait the host uses, and its implementation by a plugin.

use crate::bindings::storage as wit;
use crate::engine::Runtime;
use crate::error::{LoadError, PluginError};
use crate::plugin::{PluginKind, PluginSpec};
use crate::pool::Pool;

/// A stored value and the revision it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    pub revision: u64,
}

/// What a write expects to find (checked atomically by the backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Any,
    Absent,
    Revision(u64),
}

/// One page of keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub keys: Vec<String>,
    pub next: Option<String>,
}

/// A revisioned key-value store of opaque bytes.
#[async_trait::async_trait]
pub trait Storage: Send + Sync {
    /// Reads a key; none when absent.
    async fn get(&self, key: &str) -> Result<Option<Entry>, PluginError>;
    /// Writes a key if `expected` holds; returns the new revision.
    async fn put(&self, key: &str, value: &[u8], expected: Expected) -> Result<u64, PluginError>;
    /// Deletes a key if `expected` holds.
    async fn delete(&self, key: &str, expected: Expected) -> Result<(), PluginError>;
    /// Keys under `prefix` after `after`, at most `limit`.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, PluginError>;
}

/// A storage backend running as a WebAssembly component.
pub struct StoragePlugin {
    pool: Pool<wit::Guest>,
}

impl StoragePlugin {
    /// Loads a storage plugin with the grants of `spec` and starts one
    /// instance to prove it can run.
    pub async fn load(runtime: &Runtime, spec: PluginSpec) -> Result<StoragePlugin, LoadError> {
        let prepared = runtime.prepare(spec, PluginKind::Storage)?;
        let pool = Pool::start(
            prepared,
            "coffer:plugin/storage",
            |pre| wit::GuestIndices::new(pre).is_ok(),
            |pre, store, instance| wit::GuestIndices::new(pre)?.load(store, instance),
        )
        .await?;
        Ok(StoragePlugin { pool })
    }

    /// The plugin's configured name.
    pub fn name(&self) -> &str {
        &self.pool.prepared.name
    }

    /// SHA-256 of the loaded `.wasm`.
    pub fn sha256(&self) -> &str {
        &self.pool.prepared.sha256
    }
}

impl From<Expected> for wit::Expected {
    fn from(expected: Expected) -> Self {
        match expected {
            Expected::Any => wit::Expected::Any,
            Expected::Absent => wit::Expected::Absent,
            Expected::Revision(r) => wit::Expected::Revision(r),
        }
    }
}

#[async_trait::async_trait]
impl Storage for StoragePlugin {
    async fn get(&self, key: &str) -> Result<Option<Entry>, PluginError> {
        let key = key.to_owned();
        let entry = self
            .pool
            .call_guest("get", move |w| {
                Box::pin(async move { w.guest.call_get(&mut w.store, &key).await })
            })
            .await?;
        Ok(entry.map(|e| Entry {
            value: e.value,
            revision: e.revision,
        }))
    }

    async fn put(&self, key: &str, value: &[u8], expected: Expected) -> Result<u64, PluginError> {
        let key = key.to_owned();
        let value = value.to_vec();
        let expected = wit::Expected::from(expected);
        self.pool
            .call_guest("put", move |w| {
                Box::pin(
                    async move { w.guest.call_put(&mut w.store, &key, &value, expected).await },
                )
            })
            .await
    }

    async fn delete(&self, key: &str, expected: Expected) -> Result<(), PluginError> {
        let key = key.to_owned();
        let expected = wit::Expected::from(expected);
        self.pool
            .call_guest("delete", move |w| {
                Box::pin(async move { w.guest.call_delete(&mut w.store, &key, expected).await })
            })
            .await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, PluginError> {
        let prefix = prefix.to_owned();
        let after = after.map(str::to_owned);
        let page = self
            .pool
            .call_guest("list", move |w| {
                Box::pin(async move {
                    w.guest
                        .call_list(&mut w.store, &prefix, after.as_deref(), limit)
                        .await
                })
            })
            .await?;
        Ok(Page {
            keys: page.keys,
            next: page.next,
        })
    }
}
