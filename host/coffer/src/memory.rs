//! A storage, a keyring and a KMS that live in memory, and an engine on
//! them, for unit tests and fuzzing without plugins. Nothing is persisted:
//! never a backend.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use coffer_crypto::tink::TinkKeyset;
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix, WrappingKey, tink_key_id};
use coffer_runtime::{
    Entry, Expected, GuestError, Keyring, Kms, KmsKey, KmsWrapped, Page, PluginError, Storage,
};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::keys::RootSource;
use crate::service::{Coffer, Foundation, StartError};

/// An engine of `config` on a fresh in-memory storage and keyring.
pub async fn engine(config: &Config) -> Result<Coffer, StartError> {
    let root = RootSource::Keyring(Arc::new(MemoryKeyring::default()));
    engine_on(config, Arc::new(MemoryStorage::default()), root).await
}

/// An engine of `config` on `storage` and `root`.
pub async fn engine_on(
    config: &Config,
    storage: Arc<dyn Storage>,
    root: RootSource,
) -> Result<Coffer, StartError> {
    let foundation = Foundation::assemble(storage, root, None, Vec::new()).await?;
    Coffer::assemble(foundation, config).await
}

/// A revisioned key-value store in a map, counting the reads it serves.
#[derive(Default)]
pub struct MemoryStorage {
    entries: Mutex<BTreeMap<String, Entry>>,
    revision: AtomicU64,
    gets: Mutex<BTreeMap<String, u64>>,
    /// A read to hold back.
    held: Held,
    /// A write to hold back before it is made.
    held_put: Held,
}

/// An operation to hold back: its key, and what releases it.
type Held = Mutex<Option<(String, tokio::sync::oneshot::Receiver<()>)>>;

impl MemoryStorage {
    /// How many times `key` was read.
    pub fn gets(&self, key: &str) -> u64 {
        lock(&self.gets).get(key).copied().unwrap_or(0)
    }

    /// Makes the next read of `key` take its value, then wait for the
    /// returned sender before answering: to line a lookup up with a write.
    pub fn hold_next_get(&self, key: &str) -> tokio::sync::oneshot::Sender<()> {
        let (release, wait) = tokio::sync::oneshot::channel();
        *lock(&self.held) = Some((key.to_owned(), wait));
        release
    }

    /// Makes the next write of `key` wait for the returned sender before
    /// it is made: to cut a write short while it is in storage's hands.
    pub fn hold_next_put(&self, key: &str) -> tokio::sync::oneshot::Sender<()> {
        let (release, wait) = tokio::sync::oneshot::channel();
        *lock(&self.held_put) = Some((key.to_owned(), wait));
        release
    }

    /// Whether the write [`MemoryStorage::hold_next_put`] holds back has
    /// reached storage (and waits there).
    pub fn held_put_reached(&self) -> bool {
        lock(&self.held_put).is_none()
    }

    fn conflict(message: &str) -> PluginError {
        PluginError::Guest {
            plugin: "memory".to_owned(),
            error: GuestError::Conflict(message.to_owned()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What releases the operation on `key` that `held` holds back, if any.
fn take_held(held: &Held, key: &str) -> Option<tokio::sync::oneshot::Receiver<()>> {
    let mut held = lock(held);
    match held.as_ref() {
        Some((k, _)) if k == key => held.take().map(|(_, wait)| wait),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Entry>, PluginError> {
        *lock(&self.gets).entry(key.to_owned()).or_default() += 1;
        let value = lock(&self.entries).get(key).cloned();
        if let Some(wait) = take_held(&self.held, key) {
            let _ = wait.await;
        }
        Ok(value)
    }

    async fn put(&self, key: &str, value: &[u8], expected: Expected) -> Result<u64, PluginError> {
        if let Some(wait) = take_held(&self.held_put, key) {
            let _ = wait.await;
        }
        let mut entries = lock(&self.entries);
        let current = entries.get(key).map(|e| e.revision);
        let holds = match expected {
            Expected::Any => true,
            Expected::Absent => current.is_none(),
            Expected::Revision(revision) => current == Some(revision),
        };
        if !holds {
            return Err(Self::conflict("not at the expected revision"));
        }
        let revision = self.revision.fetch_add(1, Ordering::Relaxed) + 1;
        entries.insert(
            key.to_owned(),
            Entry {
                value: value.to_vec(),
                revision,
            },
        );
        Ok(revision)
    }

    async fn delete(&self, key: &str, expected: Expected) -> Result<(), PluginError> {
        let mut entries = lock(&self.entries);
        match (expected, entries.get(key).map(|e| e.revision)) {
            (_, None) => Err(PluginError::Guest {
                plugin: "memory".to_owned(),
                error: GuestError::NotFound,
            }),
            (Expected::Revision(want), Some(found)) if want != found => {
                Err(Self::conflict("not at the expected revision"))
            }
            _ => {
                entries.remove(key);
                Ok(())
            }
        }
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, PluginError> {
        let entries = lock(&self.entries);
        let mut keys: Vec<String> = entries
            .keys()
            .filter(|k| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a))
            .take(limit as usize + 1)
            .cloned()
            .collect();
        let more = keys.len() > limit as usize;
        keys.truncate(limit as usize);
        let next = if more { keys.last().cloned() } else { None };
        Ok(Page { keys, next })
    }
}

/// A keyring holding its keyset in memory (none until one is stored).
#[derive(Default)]
pub struct MemoryKeyring {
    keyset: Mutex<Option<TinkKeyset>>,
}

#[async_trait::async_trait]
impl Keyring for MemoryKeyring {
    async fn load(&self) -> Result<Option<TinkKeyset>, PluginError> {
        Ok(lock(&self.keyset).clone())
    }

    async fn store(&self, keyset: &TinkKeyset) -> Result<(), PluginError> {
        *lock(&self.keyset) = Some(keyset.clone());
        Ok(())
    }
}

/// A KMS whose key versions live in memory, counting the calls it serves.
pub struct MemoryKms {
    versions: Mutex<Vec<Arc<WrappingKey>>>,
    calls: AtomicU64,
    /// False for a KMS that drops the associated data (an old server, a
    /// proxy), which the host must refuse.
    binds_aad: bool,
}

impl Default for MemoryKms {
    fn default() -> Self {
        let kms = MemoryKms {
            versions: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            binds_aad: true,
        };
        kms.add_version();
        kms
    }
}

impl MemoryKms {
    /// A KMS that wraps and unwraps without the associated data.
    pub fn ignoring_aad() -> MemoryKms {
        MemoryKms {
            binds_aad: false,
            ..MemoryKms::default()
        }
    }

    /// The associated data this KMS really uses.
    fn aad<'a>(&self, aad: &'a [u8]) -> &'a [u8] {
        if self.binds_aad { aad } else { b"" }
    }

    /// Calls served so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn add_version(&self) -> KmsKey {
        let mut versions = lock(&self.versions);
        let version = u32::try_from(versions.len() + 1).unwrap_or(u32::MAX);
        let material = KeyMaterial::generate(Algorithm::Aes256Gcm);
        versions.push(Arc::new(WrappingKey::new(
            version,
            OutputPrefix::Tink,
            material,
        )));
        key(version)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

fn key(version: u32) -> KmsKey {
    KmsKey {
        name: "memory".to_owned(),
        version,
    }
}

fn kms_error(error: GuestError) -> PluginError {
    PluginError::Guest {
        plugin: "memory-kms".to_owned(),
        error,
    }
}

#[async_trait::async_trait]
impl Kms for MemoryKms {
    async fn describe(&self) -> Result<KmsKey, PluginError> {
        self.count();
        Ok(key(
            u32::try_from(lock(&self.versions).len()).unwrap_or(u32::MAX)
        ))
    }

    async fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<KmsWrapped, PluginError> {
        self.count();
        let current = lock(&self.versions).last().cloned();
        let current = current.ok_or_else(|| kms_error(GuestError::NotFound))?;
        Ok(KmsWrapped {
            blob: current.wrap(plaintext, self.aad(aad)),
            version: current.id,
        })
    }

    async fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, PluginError> {
        self.count();
        let invalid = || kms_error(GuestError::Invalid("the blob does not unwrap".to_owned()));
        let version = tink_key_id(blob).map_err(|_| invalid())?;
        let key = lock(&self.versions)
            .get(version.wrapping_sub(1) as usize)
            .cloned()
            .ok_or_else(invalid)?;
        key.unwrap(blob, self.aad(aad)).map_err(|_| invalid())
    }

    async fn rotate(&self) -> Result<KmsKey, PluginError> {
        self.count();
        Ok(self.add_version())
    }
}
