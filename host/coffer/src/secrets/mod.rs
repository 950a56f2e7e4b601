//! Secrets: versioned values, each version sealed under a fresh key that
//! the namespace's data key wraps. One secret with its retained versions is
//! one storage record, written with compare-and-set, so concurrent writers
//! (threads or nodes) never lose a version.

mod names;
mod rewrap;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use coffer_crypto::envelope::{SealedValue, open_value, seal_value};
use coffer_crypto::record::{SecretRecord, VersionEntry};
use coffer_runtime::{Expected, Storage};
use zeroize::Zeroizing;

pub use names::{MAX_NAME_BYTES, MAX_NAMESPACE_BYTES, check_name, check_namespace, check_prefix};
pub use rewrap::{Mode, Moved, PassPage};

use crate::clock::now_ms;
use crate::edit::{Change, backoff, is_conflict};
use crate::error::{Error, Result};
use crate::keys::DataKeys;

/// How often a write re-reads and retries after losing a race to another
/// node (writers on this node queue on a lock instead of racing).
const WRITE_ATTEMPTS: usize = 8;
/// Locks that serialize this node's writers of the same secret.
const WRITE_LOCK_STRIPES: usize = 256;
/// Most names one list call returns.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// A decrypted secret version. The value is wiped when dropped.
pub struct SecretValue {
    pub value: Zeroizing<Vec<u8>>,
    pub version: u32,
    pub created_at_ms: i64,
}

/// What a write produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub version: u32,
    pub created_at_ms: i64,
}

/// One page of secret names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePage {
    pub names: Vec<String>,
    pub next: Option<String>,
}

/// Settings of the secrets service.
#[derive(Clone, Copy, Debug)]
pub struct SecretsSettings {
    pub max_versions: u32,
    pub max_value_bytes: usize,
}

pub struct Secrets {
    storage: Arc<dyn Storage>,
    keys: Arc<DataKeys>,
    settings: SecretsSettings,
    write_locks: Box<[tokio::sync::Mutex<()>]>,
}

fn record_key(namespace: &str, name: &str) -> String {
    format!("secrets/{namespace}/{name}")
}

impl Secrets {
    pub fn new(
        storage: Arc<dyn Storage>,
        keys: Arc<DataKeys>,
        settings: SecretsSettings,
    ) -> Secrets {
        Secrets {
            storage,
            keys,
            settings,
            write_locks: (0..WRITE_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The lock writers of storage key `key` queue on.
    fn write_lock(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        &self.write_locks[hasher.finish() as usize % self.write_locks.len()]
    }

    /// Stores a new version. With `cas`, the write happens only if the
    /// latest version is exactly `cas` (0: the secret must not exist).
    pub async fn put(
        &self,
        namespace: &str,
        name: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<Written> {
        check_namespace(namespace)?;
        check_name(name)?;
        if value.len() > self.settings.max_value_bytes {
            return Err(Error::Invalid(format!(
                "value is {} bytes; the limit is {}",
                value.len(),
                self.settings.max_value_bytes
            )));
        }
        self.update(&record_key(namespace, name), move |mut record| async move {
            let latest = record.versions.last().map_or(0, |v| v.version);
            if let Some(cas) = cas
                && cas != latest
            {
                return Err(Error::Conflict(format!(
                    "check-and-set failed: the latest version is {latest}, not {cas}"
                )));
            }
            let version = latest.checked_add(1).ok_or_else(|| {
                Error::Invalid("the secret has run out of version numbers".to_owned())
            })?;
            let data_key = self.keys.active(namespace).await?;
            let sealed = seal_value(&data_key, namespace, name, version, value);
            let created_at_ms = now_ms();
            record.versions.push(VersionEntry {
                version,
                created_at_ms,
                deleted_at_ms: None,
                data_key_id: data_key.id,
                wrapped_key: sealed.wrapped_key,
                ciphertext: sealed.ciphertext,
            });
            let keep = self.settings.max_versions as usize;
            if record.versions.len() > keep {
                let excess = record.versions.len() - keep;
                record.versions.drain(..excess);
            }
            // Older versions still under a retired data key move onto the
            // Active one with this write.
            self.move_versions(namespace, name, &mut record, &data_key, Mode::Rewrap)
                .await?;
            let written = Written {
                version,
                created_at_ms,
            };
            Ok((record, Change::Write(written)))
        })
        .await
    }

    /// Reads the latest version, or `version` when given.
    pub async fn get(
        &self,
        namespace: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<SecretValue> {
        check_namespace(namespace)?;
        check_name(name)?;
        let not_found = || Error::NotFound(format!("secret {namespace}/{name} not found"));
        let (record, _) = self
            .read(&record_key(namespace, name))
            .await?
            .ok_or_else(not_found)?;
        let entry = match version {
            Some(v) => record.get(v).ok_or_else(|| {
                Error::NotFound(format!(
                    "version {v} of secret {namespace}/{name} not found"
                ))
            })?,
            None => record.latest().ok_or_else(not_found)?,
        };
        if entry.deleted_at_ms.is_some() {
            return Err(Error::NotFound(format!(
                "version {} of secret {namespace}/{name} is deleted",
                entry.version
            )));
        }
        let data_key = self.keys.by_id(namespace, entry.data_key_id).await?;
        let sealed = SealedValue {
            wrapped_key: entry.wrapped_key.clone(),
            ciphertext: entry.ciphertext.clone(),
        };
        let value = open_value(&data_key, namespace, name, entry.version, &sealed)?;
        Ok(SecretValue {
            value,
            version: entry.version,
            created_at_ms: entry.created_at_ms,
        })
    }

    /// Soft-deletes the latest version: it reads as not found, its
    /// ciphertext stays, and the next write makes a new version.
    pub async fn delete(&self, namespace: &str, name: &str) -> Result<u32> {
        check_namespace(namespace)?;
        check_name(name)?;
        let not_found = || Error::NotFound(format!("secret {namespace}/{name} not found"));
        self.update(&record_key(namespace, name), move |mut record| async move {
            let latest = record.versions.last_mut().ok_or_else(not_found)?;
            if latest.deleted_at_ms.is_some() {
                return Err(not_found());
            }
            latest.deleted_at_ms = Some(now_ms());
            let version = latest.version;
            Ok((record, Change::Write(version)))
        })
        .await
    }

    /// Names in `namespace` starting with `prefix`, after the cursor `after`.
    pub async fn list(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<NamePage> {
        check_namespace(namespace)?;
        check_prefix(prefix)?;
        if let Some(after) = after {
            check_prefix(after)?;
        }
        let base = crate::keys::usage::secrets_prefix(namespace);
        let after_key = after.map(|a| format!("{base}{a}"));
        let page = self
            .storage
            .list(
                &format!("{base}{prefix}"),
                after_key.as_deref(),
                limit.clamp(1, MAX_LIST_LIMIT),
            )
            .await?;
        let strip = |key: String| key.strip_prefix(&base).map(str::to_owned);
        Ok(NamePage {
            names: page.keys.into_iter().filter_map(strip).collect(),
            next: page.next.and_then(strip),
        })
    }

    async fn read(&self, key: &str) -> Result<Option<(SecretRecord, u64)>> {
        match self.storage.get(key).await? {
            Some(entry) => Ok(Some((SecretRecord::decode(&entry.value)?, entry.revision))),
            None => Ok(None),
        }
    }

    /// Lets `change` edit the record at `key` (one without versions when
    /// there is none) and writes what it returns back with compare-and-set,
    /// re-reading and retrying when another node wrote it first. This
    /// node's writers of one secret queue on a lock instead of racing.
    async fn update<T, F, Edit>(&self, key: &str, mut change: F) -> Result<T>
    where
        F: FnMut(SecretRecord) -> Edit,
        Edit: Future<Output = Result<(SecretRecord, Change<T>)>>,
    {
        let _queued = self.write_lock(key).lock().await;
        for attempt in 0..WRITE_ATTEMPTS {
            backoff(attempt).await;
            let (record, expected) = match self.read(key).await? {
                Some((record, revision)) => (record, Expected::Revision(revision)),
                None => (
                    SecretRecord {
                        versions: Vec::new(),
                    },
                    Expected::Absent,
                ),
            };
            let (record, answer) = match change(record).await? {
                (_, Change::Keep(answer)) => return Ok(answer),
                (record, Change::Write(answer)) => (record, answer),
            };
            match self.storage.put(key, &record.encode(), expected).await {
                Ok(_) => return Ok(answer),
                Err(error) if is_conflict(&error) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(Error::Conflict(
            "too many concurrent writes to this secret; retry".to_owned(),
        ))
    }
}
