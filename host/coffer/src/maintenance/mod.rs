//! Key maintenance, above both [`crate::keys`] and [`crate::secrets`]:
//! what `/v1/keys…`, `/v1/sys/kek…`, `coffer keys`, `coffer kek` and
//! `coffer reencrypt` do, the janitor that finishes what rotations leave,
//! and the namespace-wide passes both use to move secrets onto Active
//! keys. Every change runs under the key-management lease ([`lease`]), so
//! one node at a time changes keys.

mod data;
pub mod janitor;
mod kek;
mod lease;
mod pass;
mod reencrypt;
pub mod usage;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use coffer_crypto::lifecycle::LifecycleError;
use coffer_crypto::record::DataKeyEntry;
use serde::Serialize;

pub use data::{DestroyReport, NamespaceKeys, NamespaceSummary};
pub use janitor::Janitor;
pub use kek::{KekKeyStatus, KekReport, KekStatus};
pub use lease::{Lease, LeaseGuard, LeaseRecord};
pub use pass::PassPage;
pub use reencrypt::{ReencryptPass, ReencryptProgress, ReencryptRequest};

use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::keys::DataKeys;
use crate::pseudonyms::Pseudonyms;
use crate::secrets::Secrets;
use crate::store::Store;
use usage::KeyUsage;

/// Settings of key management.
#[derive(Clone, Copy, Debug)]
pub struct AdminSettings {
    /// How long a key change waits for another node's lease.
    pub lease_wait: Duration,
    /// How long after a key stops being Active nodes may still seal with it
    /// (their cached copy of the namespace's keys); inactivating or
    /// destroying it waits this long.
    pub grace: Duration,
}

/// Key management over the data keys, the KEK and the secrets they protect.
pub struct KeyAdmin {
    store: Arc<Store>,
    keys: Arc<DataKeys>,
    secrets: Arc<Secrets>,
    lease: Arc<Lease>,
    names: Arc<Pseudonyms>,
    /// Makes deleted bytes unrecoverable in the storage's own files once
    /// a key is destroyed (SQLite: a WAL checkpoint; see `SqlPool::shred`).
    shredder: Option<Arc<coffer_runtime::SqlPool>>,
    /// A destroy happened whose shredding has not finished yet.
    shred_pending: AtomicBool,
    settings: AdminSettings,
}

/// A data key as the API shows it: metadata, never material.
#[derive(Clone, Debug, Serialize)]
pub struct DataKeyView {
    pub id: u32,
    pub namespace: String,
    pub algorithm: &'static str,
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
    pub kek_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<KeyUsage>,
}

impl DataKeyView {
    fn of(namespace: &str, entry: &DataKeyEntry, usage: Option<KeyUsage>) -> DataKeyView {
        let destroyed = entry.wrapped.is_empty();
        DataKeyView {
            id: entry.id,
            namespace: namespace.to_owned(),
            algorithm: entry.algorithm.as_str(),
            status: entry.status.as_str(),
            created_at: rfc3339(entry.created_at_ms),
            updated_at: rfc3339(entry.updated_at_ms),
            version: entry.version,
            kek_id: (!destroyed).then_some(entry.kek_id),
            usage,
        }
    }
}

impl KeyAdmin {
    /// (hits, misses) of the data keys' cache.
    pub fn cache_counts(&self) -> (u64, u64) {
        self.keys.cache_counts()
    }

    /// This node's handle on the key-management lease.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    pub fn new(
        store: Arc<Store>,
        keys: Arc<DataKeys>,
        secrets: Arc<Secrets>,
        lease: Arc<Lease>,
        names: Arc<Pseudonyms>,
        shredder: Option<Arc<coffer_runtime::SqlPool>>,
        settings: AdminSettings,
    ) -> KeyAdmin {
        KeyAdmin {
            store,
            keys,
            secrets,
            lease,
            names,
            shredder,
            shred_pending: AtomicBool::new(false),
            settings,
        }
    }

    pub fn data_keys(&self) -> &Arc<DataKeys> {
        &self.keys
    }

    pub fn secrets(&self) -> &Arc<Secrets> {
        &self.secrets
    }

    /// Runs `work` holding the lease, as key changes do, so it never
    /// overlaps a rotation or a re-wrap on any node.
    pub async fn exclusively<T>(&self, work: impl AsyncFnOnce() -> Result<T>) -> Result<T> {
        self.leased(async |_| work().await).await
    }

    /// Runs `work` holding the lease, and gives the lease back after. Keys
    /// it wraps go under the keyset's current primary.
    async fn leased<T>(
        &self,
        work: impl AsyncFnOnce(&mut LeaseGuard<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.lease.acquire(self.settings.lease_wait).await?;
        self.keys.root().refresh().await;
        let result = work(&mut guard).await;
        guard.release().await;
        result
    }
}

/// The service error for a refused transition.
fn refused(error: LifecycleError) -> Error {
    match error {
        LifecycleError::UnknownKey(_) => Error::NotFound(error.to_string()),
        _ => Error::Conflict(error.to_string()),
    }
}
