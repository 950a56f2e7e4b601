//! The `Storage` trait the host uses, and its implementation by a plugin.

use crate::bindings::storage as wit;
use crate::bindings::storage_batch as batch;
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

/// One write of [`Storage::put_many`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    pub value: Vec<u8>,
    pub expected: Expected,
}

/// Most keys or writes one batch call carries (`storage-batch`).
pub const MAX_BATCH: usize = 1000;

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

    /// Reads up to [`MAX_BATCH`] keys: one answer per key, in order. The
    /// default reads key by key.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, PluginError> {
        get_each(self, keys).await
    }

    /// Writes up to [`MAX_BATCH`] keys, each checked against its own
    /// `expected`, and answers each write in order; the outer error only
    /// when no answer can be given (then any write may or may not have been
    /// made). The default writes one by one.
    async fn put_many(
        &self,
        writes: &[Write],
    ) -> Result<Vec<Result<u64, PluginError>>, PluginError> {
        put_each(self, writes).await
    }
}

/// [`Storage::get_many`] as one `get` per key.
async fn get_each<S: Storage + ?Sized>(
    storage: &S,
    keys: &[String],
) -> Result<Vec<Option<Entry>>, PluginError> {
    let mut entries = Vec::with_capacity(keys.len());
    for key in keys {
        entries.push(storage.get(key).await?);
    }
    Ok(entries)
}

/// [`Storage::put_many`] as one `put` per write.
async fn put_each<S: Storage + ?Sized>(
    storage: &S,
    writes: &[Write],
) -> Result<Vec<Result<u64, PluginError>>, PluginError> {
    let mut answers = Vec::with_capacity(writes.len());
    for write in writes {
        answers.push(storage.put(&write.key, &write.value, write.expected).await);
    }
    Ok(answers)
}

/// A storage backend running as a WebAssembly component.
pub struct StoragePlugin {
    pool: Pool<Exports>,
    /// Whether the component exports `storage-batch` (components built
    /// against `0.1.0` do not).
    batches: bool,
}

/// The typed handles of a storage component's exports.
pub(crate) struct Exports {
    storage: wit::Guest,
    batch: Option<batch::Guest>,
}

impl StoragePlugin {
    /// Loads a storage plugin with the grants of `spec` and starts one
    /// instance to prove it can run.
    pub async fn load(runtime: &Runtime, spec: PluginSpec) -> Result<StoragePlugin, LoadError> {
        let prepared = runtime.prepare(spec, PluginKind::Storage)?;
        let batches = batch::GuestIndices::new(&prepared.instance_pre).is_ok();
        let pool = Pool::start(
            prepared,
            "coffer:plugin/storage",
            |pre| wit::GuestIndices::new(pre).is_ok(),
            |pre, store, instance| {
                Ok(Exports {
                    storage: wit::GuestIndices::new(pre)?.load(&mut *store, instance)?,
                    batch: match batch::GuestIndices::new(pre) {
                        Ok(indices) => Some(indices.load(store, instance)?),
                        Err(_) => None,
                    },
                })
            },
        )
        .await?;
        Ok(StoragePlugin { pool, batches })
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

impl From<wit::Entry> for Entry {
    fn from(entry: wit::Entry) -> Self {
        Entry {
            value: entry.value,
            revision: entry.revision,
        }
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
                Box::pin(async move { w.guest.storage.call_get(&mut w.store, &key).await })
            })
            .await?;
        Ok(entry.map(Entry::from))
    }

    async fn put(&self, key: &str, value: &[u8], expected: Expected) -> Result<u64, PluginError> {
        let key = key.to_owned();
        let value = value.to_vec();
        let expected = wit::Expected::from(expected);
        self.pool
            .call_guest("put", move |w| {
                Box::pin(async move {
                    w.guest
                        .storage
                        .call_put(&mut w.store, &key, &value, expected)
                        .await
                })
            })
            .await
    }

    async fn delete(&self, key: &str, expected: Expected) -> Result<(), PluginError> {
        let key = key.to_owned();
        let expected = wit::Expected::from(expected);
        self.pool
            .call_guest("delete", move |w| {
                Box::pin(async move {
                    w.guest
                        .storage
                        .call_delete(&mut w.store, &key, expected)
                        .await
                })
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
                        .storage
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

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, PluginError> {
        if !self.batches || keys.len() > MAX_BATCH {
            return get_each(self, keys).await;
        }
        let asked = keys.to_vec();
        let entries = self
            .pool
            .call_guest("get-many", move |w| {
                Box::pin(async move {
                    match &w.guest.batch {
                        Some(batch) => batch.call_get_many(&mut w.store, &asked).await,
                        None => Ok(Err(missing_batch())),
                    }
                })
            })
            .await?;
        self.answered(entries.len(), keys.len())?;
        Ok(entries
            .into_iter()
            .map(|entry| entry.map(Entry::from))
            .collect())
    }

    async fn put_many(
        &self,
        writes: &[Write],
    ) -> Result<Vec<Result<u64, PluginError>>, PluginError> {
        if !self.batches || writes.len() > MAX_BATCH {
            return put_each(self, writes).await;
        }
        let asked: Vec<batch::Write> = writes
            .iter()
            .map(|write| batch::Write {
                key: write.key.clone(),
                value: write.value.clone(),
                expected: write.expected.into(),
            })
            .collect();
        let answers = self
            .pool
            .call_guest("put-many", move |w| {
                Box::pin(async move {
                    match &w.guest.batch {
                        Some(batch) => batch.call_put_many(&mut w.store, &asked).await,
                        None => Ok(Err(missing_batch())),
                    }
                })
            })
            .await?;
        self.answered(answers.len(), writes.len())?;
        let plugin = self.name();
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer.map_err(|error| PluginError::Guest {
                    plugin: plugin.to_owned(),
                    error: error.into(),
                })
            })
            .collect())
    }
}

impl StoragePlugin {
    /// A batch must answer every item, no more: a plugin that does not
    /// has broken the contract, and none of its answers can be matched to
    /// what was asked.
    fn answered(&self, answers: usize, asked: usize) -> Result<(), PluginError> {
        if answers == asked {
            return Ok(());
        }
        Err(PluginError::Guest {
            plugin: self.name().to_owned(),
            error: crate::GuestError::Internal(format!(
                "the plugin answered {answers} items of a batch of {asked}"
            )),
        })
    }
}

fn missing_batch() -> crate::bindings::types::Error {
    crate::bindings::types::Error::Internal("the plugin does not export storage-batch".to_owned())
}
