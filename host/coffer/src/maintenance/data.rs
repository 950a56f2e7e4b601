//! Data-key operations: list, show with usage, rotate, deprecate,
//! inactivate, destroy, export and import.

use std::sync::atomic::Ordering;

use coffer_crypto::Algorithm;
use coffer_crypto::lifecycle::{LifecycleError, Outcome};
use coffer_crypto::record::{DataKeyEntry, DataKeySet, DataKeyStatus};
use serde::Serialize;

use super::usage::{KeyUsage, NamespaceUsage};
use super::{DataKeyView, KeyAdmin, refused};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::keys::transport::{self, ExportedKey};
use crate::secrets::check_namespace;
use crate::store::Change;

/// One namespace in the key listing.
#[derive(Clone, Debug, Serialize)]
pub struct NamespaceSummary {
    pub namespace: String,
    pub active_key: Option<u32>,
    pub keys: usize,
    /// Keys other than the Active one that still hold material.
    pub retired_keys: usize,
}

/// A namespace's keys with their usage.
#[derive(Clone, Debug, Serialize)]
pub struct NamespaceKeys {
    pub namespace: String,
    /// Secrets in the namespace and their retained versions.
    pub secrets: u64,
    pub versions: u64,
    /// Secret records that could not be decoded: the usage counts leave
    /// them out, and retiring a key waits until they are repaired.
    pub unreadable_records: u64,
    pub keys: Vec<DataKeyView>,
}

impl NamespaceKeys {
    /// The same counts without the secret names, for a caller who may not
    /// list the namespace.
    pub fn without_names(mut self) -> NamespaceKeys {
        for usage in self.keys.iter_mut().filter_map(|key| key.usage.as_mut()) {
            usage.truncated |= !usage.secrets.is_empty();
            usage.secrets.clear();
        }
        self
    }
}

/// What destroying a key did.
#[derive(Clone, Debug, Serialize)]
pub struct DestroyReport {
    pub key: DataKeyView,
    /// Secret versions that can no longer be read (only when forced).
    pub unreadable: KeyUsage,
}

impl KeyAdmin {
    /// Namespaces that have data keys, in name order, after `after`.
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<NamespaceSummary>, Option<String>)> {
        let page = self.keys.scopes(after, limit.clamp(1, 1000)).await?;
        let mut out = Vec::with_capacity(page.scopes.len());
        for scope in &page.scopes {
            if let Some((set, _)) = self.keys.load(scope).await? {
                out.push(NamespaceSummary {
                    namespace: set.scope.clone(),
                    active_key: set.active().map(|k| k.id),
                    keys: set.keys.len(),
                    retired_keys: set
                        .live()
                        .filter(|k| k.status != DataKeyStatus::Active)
                        .count(),
                });
            }
        }
        Ok((out, page.next))
    }

    /// A namespace's keys, each with the secret versions it protects.
    pub async fn show(&self, namespace: &str) -> Result<NamespaceKeys> {
        let set = self.existing(namespace).await?;
        let usage = self.usage(namespace).await?;
        Ok(view_with_usage(&set, &usage))
    }

    /// Makes a new Active key; the previous one becomes Deprecated and the
    /// janitor moves its secrets over.
    pub async fn rotate(
        &self,
        namespace: &str,
        algorithm: Option<Algorithm>,
    ) -> Result<DataKeyView> {
        check_namespace(namespace)?;
        let algorithm = algorithm.unwrap_or(self.keys.settings().algorithm);
        self.leased(async |_| {
            // The key is wrapped first: the KEK may be remote, and the
            // compare-and-set below must not wait on it.
            let current = self.existing(namespace).await?;
            let key = self.keys.new_key(namespace, algorithm, &current).await?;
            let id = key.id;
            let (id, set) = self
                .keys
                .change(namespace, false, |set| {
                    if set.by_id(id).is_some() {
                        return Err(Error::Conflict(format!(
                            "namespace {namespace} gained a data key {id} meanwhile; retry"
                        )));
                    }
                    set.rotate(key.clone(), now_ms()).map_err(refused)?;
                    Ok(Change::Write(id))
                })
                .await?;
            tracing::info!(namespace, key_id = id, "rotated data key");
            key_view(&set, id)
        })
        .await
    }

    /// Brings an Inactive key back to Deprecated.
    pub async fn deprecate(&self, namespace: &str, id: u32) -> Result<DataKeyView> {
        self.transition(namespace, id, false, |set, _| set.deprecate(id, now_ms()))
            .await
    }

    /// Retires a Deprecated key nothing uses any more.
    pub async fn inactivate(&self, namespace: &str, id: u32) -> Result<DataKeyView> {
        self.transition(namespace, id, true, |set, usage| {
            set.inactivate(id, usage.of(id), now_ms())
        })
        .await
    }

    /// Crypto-shreds a retired key. Refused while it protects anything,
    /// unless `force`; the report then lists what became unreadable.
    pub async fn destroy(&self, namespace: &str, id: u32, force: bool) -> Result<DestroyReport> {
        let mut lost = KeyUsage::default();
        let key = self
            .transition(namespace, id, !force, |set, usage| {
                lost = usage.by_key.get(&id).cloned().unwrap_or_default();
                set.destroy(id, usage.of(id), force, now_ms())
            })
            .await?;
        if lost.versions > 0 {
            tracing::warn!(
                namespace,
                key_id = id,
                versions = lost.versions,
                "destroyed an in-use data key: the versions it protected are unreadable"
            );
        }
        self.shred().await;
        Ok(DestroyReport {
            key,
            unreadable: lost,
        })
    }

    /// Applies a transition that depends on the key's usage, which is
    /// counted (under the lease) just before the change is written. When
    /// `exact_usage`, refused while damaged records leave the count unsure.
    async fn transition(
        &self,
        namespace: &str,
        id: u32,
        exact_usage: bool,
        mut apply: impl FnMut(
            &mut DataKeySet,
            &NamespaceUsage,
        ) -> std::result::Result<Outcome, LifecycleError>,
    ) -> Result<DataKeyView> {
        check_namespace(namespace)?;
        self.leased(async |_| {
            let set = self.existing(namespace).await?;
            self.check_grace(&set, id)?;
            let usage = self.usage(namespace).await?;
            if exact_usage && usage.unreadable_records > 0 {
                return Err(Error::Conflict(format!(
                    "{} secret record(s) of namespace {namespace} could not be decoded, so what \
                     data key {id} protects is unknown: repair or delete them first (the server \
                     log names them)",
                    usage.unreadable_records
                )));
            }
            let ((), set) = self
                .keys
                .change(namespace, false, |set| {
                    Ok(match apply(set, &usage).map_err(refused)? {
                        Outcome::Changed => Change::Write(()),
                        Outcome::Unchanged => Change::Keep(()),
                    })
                })
                .await?;
            key_view(&set, id)
        })
        .await
    }

    /// Refuses to retire a key that some node may still be sealing with.
    fn check_grace(&self, set: &DataKeySet, id: u32) -> Result<()> {
        let Some(key) = set.by_id(id) else {
            return Ok(());
        };
        if key.status != DataKeyStatus::Deprecated {
            return Ok(());
        }
        let now = now_ms();
        let left = self.sealed_with_until(key) - now;
        if left > 0 {
            return Err(Error::Conflict(format!(
                "data key {id} was deprecated {} ms ago; other nodes may still seal with it \
                 for {left} ms more: retry after that",
                now - key.updated_at_ms
            )));
        }
        Ok(())
    }

    /// When the last node still sealing with a retired key's cached copy
    /// must have stopped: its deprecation plus the grace period.
    pub fn sealed_with_until(&self, key: &DataKeyEntry) -> i64 {
        let grace = i64::try_from(self.settings.grace.as_millis()).unwrap_or(i64::MAX);
        key.updated_at_ms.saturating_add(grace)
    }

    /// Key `id` wrapped under the transport keyset `transport_json`.
    pub async fn export(
        &self,
        namespace: &str,
        id: u32,
        transport_json: &str,
    ) -> Result<ExportedKey> {
        let transport = transport::transport_keys(transport_json)?;
        let set = self.existing(namespace).await?;
        let entry = set
            .by_id(id)
            .ok_or_else(|| Error::NotFound(format!("no data key {id} in namespace {namespace}")))?;
        if entry.status == DataKeyStatus::Destroyed {
            return Err(Error::Conflict(format!("data key {id} is destroyed")));
        }
        let kek = self.keys.root().current();
        let material = self.keys.unwrap_entry(&kek, namespace, entry).await?;
        tracing::info!(namespace, key_id = id, "exported data key for transport");
        Ok(transport::export(
            &transport,
            namespace,
            id,
            entry.created_at_ms,
            &material,
        ))
    }

    /// Adds an exported key as Deprecated (creating the namespace's keys if
    /// it has none yet). Importing a key already present with the same
    /// material is a no-op.
    pub async fn import(
        &self,
        namespace: &str,
        transport_json: &str,
        exported: &ExportedKey,
    ) -> Result<DataKeyView> {
        check_namespace(namespace)?;
        let transport = transport::transport_keys(transport_json)?;
        let material = transport::import(&transport, namespace, exported)?;
        let id = exported.id;
        self.leased(async |_| {
            // Compared and wrapped first (the KEK may be remote), then
            // added only if the namespace still has no key of that id.
            if let Some((set, _)) = self.keys.load(namespace).await?
                && let Some(existing) = set.by_id(id)
            {
                let kek = self.keys.root().current();
                let same = existing.status != DataKeyStatus::Destroyed
                    && self.keys.unwrap_entry(&kek, namespace, existing).await? == material;
                return if same {
                    key_view(&set, id)
                } else {
                    Err(Error::Conflict(format!(
                        "namespace {namespace} already has a different data key {id}"
                    )))
                };
            }
            let mut entry = self.keys.wrap_entry(namespace, id, &material).await?;
            entry.created_at_ms = exported.created_at_ms;
            let ((), set) = self
                .keys
                .change(namespace, true, |set| {
                    if set.by_id(id).is_some() {
                        return Err(Error::Conflict(format!(
                            "namespace {namespace} gained a data key {id} meanwhile; retry"
                        )));
                    }
                    set.import(entry.clone(), now_ms()).map_err(refused)?;
                    Ok(Change::Write(()))
                })
                .await?;
            tracing::info!(namespace, key_id = id, "imported data key as deprecated");
            key_view(&set, id)
        })
        .await
    }

    /// Makes destroyed keys' old bytes (a data key's, or secret versions')
    /// unrecoverable from the storage's own files where the host owns them
    /// (the embedded SQLite: deleted content is zeroed as it is freed, and
    /// the WAL holding the old pages is checkpointed and truncated). A
    /// checkpoint that cannot finish now (readers in the way) is retried by
    /// the janitor.
    pub async fn shred(&self) {
        self.shred_pending.store(true, Ordering::Relaxed);
        self.shred_if_pending().await;
    }

    /// Finishes a shredding a destroy could not complete.
    pub(crate) async fn shred_if_pending(&self) {
        let Some(database) = &self.shredder else {
            return;
        };
        if !self.shred_pending.load(Ordering::Relaxed) {
            return;
        }
        match database.shred().await {
            Ok(()) => self.shred_pending.store(false, Ordering::Relaxed),
            Err(error) => tracing::warn!(
                %error,
                "could not yet checkpoint the database after destroying a key; the janitor retries"
            ),
        }
    }

    pub(super) async fn existing(&self, namespace: &str) -> Result<DataKeySet> {
        check_namespace(namespace)?;
        self.keys
            .load(namespace)
            .await?
            .map(|(set, _)| set)
            .ok_or_else(|| Error::NotFound(format!("namespace {namespace} has no data keys")))
    }
}

fn key_view(set: &DataKeySet, id: u32) -> Result<DataKeyView> {
    set.by_id(id)
        .map(|entry| DataKeyView::of(&set.scope, entry, None))
        .ok_or_else(|| Error::NotFound(format!("no data key {id} in namespace {}", set.scope)))
}

fn view_with_usage(set: &DataKeySet, usage: &NamespaceUsage) -> NamespaceKeys {
    NamespaceKeys {
        namespace: set.scope.clone(),
        secrets: usage.secrets,
        versions: usage.versions,
        unreadable_records: usage.unreadable_records,
        keys: set
            .keys
            .iter()
            .map(|entry| {
                let used = usage.by_key.get(&entry.id).cloned().unwrap_or_default();
                DataKeyView::of(&set.scope, entry, Some(used))
            })
            .collect(),
    }
}
