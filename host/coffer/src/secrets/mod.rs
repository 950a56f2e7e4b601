//! Secrets: versioned values, each version sealed under a fresh key that
//! the namespace's data key wraps. One secret with its retained versions is
//! one storage record, written with compare-and-set, so concurrent writers
//! (threads or nodes) never lose a version; the record is sealed and bound
//! to the secret's name ([`crate::store`]), so storage can neither edit a
//! version's metadata nor roll the secret back unnoticed.

mod coalesce;
mod lifecycle;
mod names;
mod rewrap;

use std::sync::Arc;

use coffer_crypto::WrappingKey;
use coffer_crypto::envelope::{SealedValue, open_value, seal_value};
use coffer_crypto::record::{SecretRecord, ValueFormat, VersionEntry};
use zeroize::Zeroizing;

pub use lifecycle::{
    MAX_CUSTOM_ENTRIES, MAX_CUSTOM_KEY_BYTES, MAX_CUSTOM_VALUE_BYTES, MAX_VERSIONS_PER_REQUEST,
    Metadata, MetadataChange, Purged, VersionState,
};
pub use names::{
    MAX_NAME_BYTES, MAX_NAMESPACE_BYTES, SecretOperation, check_name, check_namespace,
    check_new_name, check_prefix, split_operation,
};
pub use rewrap::{Mode, Moved};

use coalesce::{Draining, Handoff, Lines, Pending};

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::keys::DataKeys;
use crate::store::{Change, Start, Store, layout};

/// Most names one list call returns.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// A decrypted secret version. The value is wiped when dropped.
pub struct SecretValue {
    pub value: Zeroizing<Vec<u8>>,
    pub format: ValueFormat,
    pub version: u32,
    pub created_at_ms: i64,
}

/// What a write produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub version: u32,
    pub created_at_ms: i64,
    /// Older versions this write dropped to keep `max_versions`.
    pub pruned: Vec<u32>,
}

/// One page of secret names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePage {
    pub names: Vec<String>,
    pub next: Option<String>,
    /// Records looked at for this page, purged ones included.
    pub scanned: usize,
}

/// Settings of the secrets service.
#[derive(Clone, Copy, Debug)]
pub struct SecretsSettings {
    pub max_versions: u32,
    pub max_value_bytes: usize,
}

/// Cheap to clone: a clone shares the store, the keys and the lines of
/// writes.
#[derive(Clone)]
pub struct Secrets {
    store: Arc<Store>,
    keys: Arc<DataKeys>,
    settings: SecretsSettings,
    lines: Arc<Lines>,
}

impl Secrets {
    pub fn new(store: Arc<Store>, keys: Arc<DataKeys>, settings: SecretsSettings) -> Secrets {
        Secrets {
            store,
            keys,
            settings,
            lines: Arc::default(),
        }
    }

    /// The largest value a write takes, in bytes.
    pub fn max_value_bytes(&self) -> usize {
        self.settings.max_value_bytes
    }

    /// The versions a secret keeps unless its metadata says fewer.
    pub fn max_versions(&self) -> u32 {
        self.settings.max_versions
    }

    /// Stores a new version of text. With `cas`, the write happens only if
    /// the latest version is exactly `cas` (0: the secret must not exist).
    pub async fn put(
        &self,
        namespace: &str,
        name: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<Written> {
        self.put_as(namespace, name, value, ValueFormat::Text, cas)
            .await
    }

    /// Stores a new version whose value is in `format`; see [`Secrets::put`].
    /// The write joins the line of the name's writes ([`coalesce`]).
    pub async fn put_as(
        &self,
        namespace: &str,
        name: &str,
        value: &[u8],
        format: ValueFormat,
        cas: Option<u32>,
    ) -> Result<Written> {
        check_namespace(namespace)?;
        check_new_name(name)?;
        if value.len() > self.settings.max_value_bytes {
            return Err(Error::Invalid(format!(
                "value is {} bytes; the limit is {}",
                value.len(),
                self.settings.max_value_bytes
            )));
        }
        let key = layout::secret(namespace, name);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let pending = Pending {
            value: Zeroizing::new(value.to_vec()),
            format,
            cas,
            reply,
        };
        let stopped =
            || Error::Internal("the write of this secret stopped before it answered".to_owned());
        if !self.lines.join(&key, pending) {
            return answer.await.map_err(|_| stopped())?;
        }
        // First in an empty line: this write runs here, alone, and the
        // line goes to a task of its own if others join meanwhile.
        let _handoff = Handoff {
            secrets: self,
            namespace,
            name,
            key: &key,
        };
        let own = self.lines.first(&key);
        self.write_batch(namespace, name, &own)
            .await
            .pop()
            .unwrap_or_else(|| Err(stopped()))
    }

    /// Writes the line of `namespace/name` batch by batch until it is empty.
    async fn drain_line(&self, namespace: &str, name: &str, key: &str) {
        let mut draining = Draining::new(&self.lines, key);
        loop {
            let batch = self.lines.next_batch(key);
            if batch.is_empty() {
                draining.drained = true;
                return;
            }
            let answers = self.write_batch(namespace, name, &batch).await;
            for (pending, answer) in batch.into_iter().zip(answers) {
                // A writer whose request timed out no longer listens.
                let _ = pending.reply.send(answer);
            }
        }
    }

    /// Appends each write of `batch` as its own version, in order, and
    /// stores them with one compare-and-set; answers each.
    async fn write_batch(
        &self,
        namespace: &str,
        name: &str,
        batch: &[Pending],
    ) -> Vec<Result<Written>> {
        // Fetched before the secret's write lock is taken: on a namespace's
        // first write, or with a KMS root on a cold cache, this may wait on
        // storage or the KMS, and should not hold up other secrets.
        let active = match self.keys.active(namespace).await {
            Ok(active) => active,
            Err(error) => return batch.iter().map(|_| Err(error.clone())).collect(),
        };
        let written = self
            .update(namespace, name, Start::Guess, |mut record| {
                let data_key = active.clone();
                async move {
                    let answers: Vec<Result<Written>> = batch
                        .iter()
                        .map(|write| self.append(namespace, name, &mut record, &data_key, write))
                        .collect();
                    if answers.iter().all(Result::is_err) {
                        return Ok((record, Change::Keep(answers)));
                    }
                    // Older versions still under a retired data key move onto
                    // the Active one with this write.
                    self.move_versions(namespace, name, &mut record, &data_key, Mode::Rewrap)
                        .await?;
                    Ok((record, Change::Write(answers)))
                }
            })
            .await;
        match written {
            Ok(answers) => answers,
            Err(error) => batch.iter().map(|_| Err(error.clone())).collect(),
        }
    }

    /// Appends `write` to `record` as its next version, dropping versions
    /// beyond `max_versions`. A write refused (its check-and-set) leaves
    /// `record` as it was.
    fn append(
        &self,
        namespace: &str,
        name: &str,
        record: &mut SecretRecord,
        data_key: &WrappingKey,
        write: &Pending,
    ) -> Result<Written> {
        let latest = record.versions.last().map_or(0, |v| v.version);
        if write.cas.is_none() && record.meta.cas_required {
            return Err(Error::Invalid(
                "this secret requires check-and-set: give `cas`, the version the write \
                 replaces (0 for none)"
                    .to_owned(),
            ));
        }
        if let Some(cas) = write.cas
            && cas != latest
        {
            return Err(Error::Conflict(format!(
                "check-and-set failed: the latest version is {latest}, not {cas}"
            )));
        }
        let version = latest.checked_add(1).ok_or_else(|| {
            Error::Invalid("the secret has run out of version numbers".to_owned())
        })?;
        let sealed = seal_value(data_key, namespace, name, version, &write.value);
        let created_at_ms = now_ms();
        record.versions.push(VersionEntry {
            version,
            created_at_ms,
            deleted_at_ms: None,
            destroyed_at_ms: None,
            format: write.format,
            data_key_id: data_key.id,
            wrapped_key: sealed.wrapped_key,
            ciphertext: sealed.ciphertext,
        });
        let keep = lifecycle::effective_max_versions(&record.meta, self.settings.max_versions);
        let excess = record.versions.len().saturating_sub(keep as usize);
        let pruned = record.versions.drain(..excess).map(|v| v.version).collect();
        Ok(Written {
            version,
            created_at_ms,
            pruned,
        })
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
        let record = self
            .store
            .read::<SecretRecord>(&layout::secret(namespace, name))
            .await?
            .ok_or_else(not_found)?
            .record;
        let entry = match version {
            Some(v) => record.get(v).ok_or_else(|| {
                Error::NotFound(format!(
                    "version {v} of secret {namespace}/{name} not found"
                ))
            })?,
            None => record.latest().ok_or_else(not_found)?,
        };
        if entry.is_destroyed() {
            return Err(Error::KeyDestroyed(format!(
                "version {} of secret {namespace}/{name} was destroyed",
                entry.version
            )));
        }
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
            format: entry.format,
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
        self.update(namespace, name, Start::Read, move |mut record| async move {
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

    /// Names in `namespace` starting with `prefix`, after the cursor
    /// `after`. Purged secrets are left out, so a page may hold fewer
    /// names than `limit` with more to come.
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
        let base = layout::secrets_of(namespace);
        let after_key = after.map(|a| format!("{base}{a}"));
        let page = self
            .store
            .page(
                &format!("{base}{prefix}"),
                after_key.as_deref(),
                limit.clamp(1, MAX_LIST_LIMIT),
            )
            .await?;
        let strip = |key: &str| key.strip_prefix(&base).map(str::to_owned);
        let mut names = Vec::with_capacity(page.keys.len());
        for key in &page.keys {
            if !self.is_purged(key).await
                && let Some(name) = strip(key)
            {
                names.push(name);
            }
        }
        Ok(NamePage {
            names,
            next: page.next.as_deref().and_then(strip),
            scanned: page.keys.len(),
        })
    }

    /// Whether the record at `key` is a purged secret. One that cannot be
    /// read is listed: the listing is not the place to report it.
    async fn is_purged(&self, key: &str) -> bool {
        matches!(
            self.store.read::<SecretRecord>(key).await,
            Ok(Some(stored)) if lifecycle::is_empty(&stored.record)
        )
    }

    /// Lets `change` edit the record of `namespace/name` (one without
    /// versions when there is none) and writes it back with
    /// compare-and-set; see [`Store::edit`].
    async fn update<T, F, Edit>(
        &self,
        namespace: &str,
        name: &str,
        start: Start,
        mut change: F,
    ) -> Result<T>
    where
        F: FnMut(SecretRecord) -> Edit,
        Edit: Future<Output = Result<(SecretRecord, Change<T>)>>,
    {
        let (answer, _) = self
            .store
            .edit(
                &layout::secret(namespace, name),
                start,
                || std::future::ready(Ok(SecretRecord::default())),
                |record, _| change(record),
            )
            .await?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use crate::config::Config;
    use crate::keys::RootSource;
    use crate::memory::{MemoryKeyring, MemoryStorage};
    use crate::store::layout;

    /// A line's first write runs in its request's task. When that request
    /// goes away mid-write, the writes that joined the line meanwhile still
    /// run, each with its own version.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_behind_a_first_write_cut_short_still_run() {
        let config = Config::parse("[audit]\nenabled = false\n", "test", Vec::new(), None).unwrap();
        let storage = Arc::new(MemoryStorage::default());
        let root = RootSource::Keyring(Arc::new(MemoryKeyring::default()));
        let coffer = crate::memory::engine_on(&config, storage.clone(), root)
            .await
            .unwrap();
        let secrets = coffer.secrets.clone();
        let key = layout::secret("app", "hot");
        let _release = storage.hold_next_put(&key);
        let first = {
            let secrets = secrets.clone();
            tokio::spawn(async move { secrets.put("app", "hot", b"first", None).await })
        };
        while !storage.held_put_reached() {
            tokio::task::yield_now().await;
        }
        let behind: Vec<_> = (0..3)
            .map(|i| {
                let secrets = secrets.clone();
                let value = format!("behind-{i}");
                tokio::spawn(async move { secrets.put("app", "hot", value.as_bytes(), None).await })
            })
            .collect();
        while secrets.lines.waiting(&key) < 3 {
            tokio::task::yield_now().await;
        }
        first.abort();
        let mut versions = Vec::new();
        for write in behind {
            versions.push(write.await.unwrap().unwrap().version);
        }
        versions.sort_unstable();
        assert_eq!(versions, [1, 2, 3]);
        let latest = secrets.get("app", "hot", None).await.unwrap();
        assert!(latest.value.starts_with(b"behind-"));
    }
}
