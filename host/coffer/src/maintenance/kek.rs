//! KEK operations: status, rotate, re-wrap and reload. Re-wrapping touches
//! one record per namespace (plus the engine's system keys), never a
//! secret, so its cost grows with namespaces, not secrets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use super::KeyAdmin;
use super::LeaseGuard;
use crate::error::Result;
use crate::keys::{Kek, KekKeyInfo, RootKeys, SystemKeys};

/// Namespaces re-wrapped between two renewals of the lease.
const REWRAP_CHUNK: usize = 64;
/// Namespaces re-wrapped at once.
const REWRAP_CONCURRENCY: usize = 16;

/// One KEK key (a keyset key, a KMS key version) and what it still wraps.
#[derive(Clone, Debug, Serialize)]
pub struct KekKeyStatus {
    #[serde(flatten)]
    pub key: crate::keys::KekKeyInfo,
    pub data_keys: u64,
    pub system_keys: u64,
}

/// `kek status`.
#[derive(Clone, Debug, Serialize)]
pub struct KekStatus {
    /// `keyring` or `kms`.
    pub root: &'static str,
    /// The KMS's name for its key, for a KMS root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    pub primary_key_id: u32,
    pub keys: Vec<KekKeyStatus>,
    pub namespaces: u64,
    /// Data and system keys not yet wrapped by the primary.
    pub pending_rewrap: u64,
}

/// What a rotation or re-wrap did.
#[derive(Clone, Debug, Serialize)]
pub struct KekReport {
    pub primary_key_id: u32,
    pub namespaces: u64,
    pub data_keys_rewrapped: u64,
    pub system_keys_rewrapped: u64,
    pub elapsed_ms: u64,
}

impl KeyAdmin {
    /// The root of the key hierarchy.
    pub fn root(&self) -> &Arc<RootKeys> {
        self.keys.root()
    }

    /// The KEK's keys and how many data keys each still wraps; a key that
    /// still wraps something but is not among them (an older KMS key
    /// version, a key missing from the keyset) is listed too.
    pub async fn kek_status(&self) -> Result<KekStatus> {
        let kek = self.keys.root().current();
        let mut data_keys: BTreeMap<u32, u64> = BTreeMap::new();
        let mut namespaces = 0;
        self.keys
            .for_each_set(|set| {
                namespaces += 1;
                for key in set.live() {
                    *data_keys.entry(key.kek_id).or_default() += 1;
                }
                Ok(())
            })
            .await?;
        let mut system_keys: BTreeMap<u32, u64> = BTreeMap::new();
        for (_, kek_id) in SystemKeys::new(self.store.storage().as_ref())
            .keks()
            .await?
        {
            *system_keys.entry(kek_id).or_default() += 1;
        }
        let primary = kek.primary_id();
        let pending = data_keys
            .iter()
            .chain(system_keys.iter())
            .filter(|(id, _)| **id != primary)
            .map(|(_, n)| n)
            .sum();
        let listed: Vec<KekKeyInfo> = kek.keys().to_vec();
        let unlisted = data_keys
            .keys()
            .chain(system_keys.keys())
            .filter(|id| !listed.iter().any(|key| key.id == **id))
            .copied()
            .collect::<std::collections::BTreeSet<u32>>()
            .into_iter()
            .map(|id| KekKeyInfo {
                id,
                algorithm: listed.first().map_or("", |key| key.algorithm),
                status: if kek.holds(id) { "ENABLED" } else { "MISSING" },
                output_prefix: None,
                primary: false,
            });
        let keys = listed
            .iter()
            .cloned()
            .chain(unlisted)
            .map(|key| KekKeyStatus {
                data_keys: data_keys.get(&key.id).copied().unwrap_or(0),
                system_keys: system_keys.get(&key.id).copied().unwrap_or(0),
                key,
            })
            .collect();
        Ok(KekStatus {
            root: kek.kind(),
            kms_key: kek.kms_key().map(str::to_owned),
            primary_key_id: primary,
            keys,
            namespaces,
            pending_rewrap: pending,
        })
    }

    /// Starts a new KEK key — a new keyset key through the keyring,
    /// promoted, or a new KMS key version — and re-wraps every data key
    /// under it. Refused, changing nothing, if the keyset was edited to
    /// lack a KEK key still in use.
    pub async fn kek_rotate(&self) -> Result<KekReport> {
        self.leased(async |guard| {
            self.sync_kek().await?;
            let (kek, id) = self.keys.root().rotate().await?;
            let kek = self.keys.root().install(kek);
            tracing::info!(kek_id = id, "rotated the KEK; re-wrapping data keys");
            self.rewrap_all(&kek, guard).await
        })
        .await
    }

    /// Re-wraps every data key not yet under the primary KEK.
    pub async fn kek_rewrap(&self) -> Result<KekReport> {
        self.leased(async |guard| {
            let kek = self.sync_kek().await?;
            self.rewrap_all(&kek, guard).await
        })
        .await
    }

    /// The KEK as its source holds it now, installed if it changed (so a
    /// node never re-wraps onto a primary another node has replaced).
    /// Refused, keeping the KEK in use, if it lacks a KEK key still in use.
    pub(crate) async fn sync_kek(&self) -> Result<std::sync::Arc<Kek>> {
        let root = self.keys.root();
        let stored = root.read().await?;
        let current = root.current();
        let same = stored.primary_id() == current.primary_id()
            && stored.keys().len() == current.keys().len()
            && stored
                .keys()
                .iter()
                .all(|k| current.holds(k.id) == stored.holds(k.id));
        if same {
            return Ok(current);
        }
        self.check_keks(&stored).await?;
        tracing::info!(
            kek_id = stored.primary_id(),
            "the KEK changed at its source; using it"
        );
        Ok(root.install(stored))
    }

    /// Reads the KEK again (after tinkey or Tink changed the keyset).
    /// Refused, keeping the KEK in use, if any data key's KEK key is
    /// missing from it.
    pub async fn kek_reload(&self) -> Result<KekStatus> {
        let kek = self.keys.root().read().await?;
        self.check_keks(&kek).await?;
        self.keys.root().install(kek);
        tracing::info!("reloaded the KEK");
        self.kek_status().await
    }

    /// Checks every data and system key is wrapped by a key `kek` holds.
    pub async fn check_keks(&self, kek: &Kek) -> Result<()> {
        self.keys.check_wrapping_keys(kek).await?;
        for (name, kek_id) in SystemKeys::new(self.store.storage().as_ref())
            .keks()
            .await?
        {
            if !kek.holds(kek_id) {
                return Err(kek.missing(&format!("system key {name}"), kek_id));
            }
        }
        Ok(())
    }

    /// Re-wraps every namespace's keys and the system keys under `kek`'s
    /// primary, renewing the lease as it goes.
    pub(crate) async fn rewrap_all(
        &self,
        kek: &Kek,
        guard: &mut LeaseGuard<'_>,
    ) -> Result<KekReport> {
        let started = Instant::now();
        let mut report = KekReport {
            primary_key_id: kek.primary_id(),
            namespaces: 0,
            data_keys_rewrapped: 0,
            system_keys_rewrapped: 0,
            elapsed_ms: 0,
        };
        let mut scopes = self.keys.scan_scopes();
        while let Some(page) = scopes.next_page().await? {
            // Namespaces are re-wrapped a few at a time, so the round trips
            // of each (storage, and a remote KEK's) overlap; the lease is
            // renewed between chunks.
            for chunk in page.chunks(REWRAP_CHUNK) {
                guard.renew_if_due().await?;
                let rewraps: Vec<_> = chunk
                    .iter()
                    .map(|scope| self.keys.rewrap_scope(kek, scope))
                    .collect();
                let counts: Vec<usize> = stream::iter(rewraps)
                    .buffered(REWRAP_CONCURRENCY)
                    .try_collect()
                    .await?;
                report.namespaces += chunk.len() as u64;
                report.data_keys_rewrapped += counts.iter().sum::<usize>() as u64;
            }
        }
        report.system_keys_rewrapped = SystemKeys::new(self.store.storage().as_ref())
            .rewrap(kek)
            .await? as u64;
        report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if report.data_keys_rewrapped + report.system_keys_rewrapped > 0 {
            tracing::info!(
                namespaces = report.namespaces,
                data_keys = report.data_keys_rewrapped,
                system_keys = report.system_keys_rewrapped,
                "re-wrapped data keys under the primary KEK"
            );
        }
        Ok(report)
    }
}
