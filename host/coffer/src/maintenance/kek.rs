//! KEK operations: status, rotate, re-wrap and reload. Re-wrapping touches
//! one record per namespace (plus the engine's system keys), never a
//! secret, so its cost grows with namespaces, not secrets.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use super::KeyAdmin;
use super::LeaseGuard;
use crate::error::Result;
use crate::keys::{Kek, SystemKeys};

/// One keyset key and what it still wraps.
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
    /// The keyset's keys and how many data keys each still wraps.
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
        let primary = kek.primary().id;
        let pending = data_keys
            .iter()
            .chain(system_keys.iter())
            .filter(|(id, _)| **id != primary)
            .map(|(_, n)| n)
            .sum();
        Ok(KekStatus {
            primary_key_id: primary,
            keys: kek
                .keys()
                .iter()
                .map(|key| KekKeyStatus {
                    key: key.clone(),
                    data_keys: data_keys.get(&key.id).copied().unwrap_or(0),
                    system_keys: system_keys.get(&key.id).copied().unwrap_or(0),
                })
                .collect(),
            namespaces,
            pending_rewrap: pending,
        })
    }

    /// Adds a new key to the keyset through the keyring, promotes it, and
    /// re-wraps every data key under it. Refused, changing nothing, if the
    /// keyset was edited to lack a KEK still in use.
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

    /// The keyset as the keyring holds it now, installed if it changed (so
    /// a node never re-wraps onto a primary another node has replaced).
    /// Refused, keeping the KEK in use, if it lacks a KEK still in use.
    pub(crate) async fn sync_kek(&self) -> Result<std::sync::Arc<Kek>> {
        let root = self.keys.root();
        let stored = root.read().await?;
        let current = root.current();
        let same = stored.primary().id == current.primary().id
            && stored.keys().len() == current.keys().len()
            && stored
                .keys()
                .iter()
                .all(|k| current.get(k.id).is_some() == (k.status == "ENABLED"));
        if same {
            return Ok(current);
        }
        self.check_keks(&stored).await?;
        tracing::info!(
            kek_id = stored.primary().id,
            "the keyset changed in the keyring; using it"
        );
        Ok(root.install(stored))
    }

    /// Reads the keyset again (after tinkey or Tink changed it). Refused,
    /// keeping the KEK in use, if any data key's KEK is missing from it.
    pub async fn kek_reload(&self) -> Result<KekStatus> {
        let kek = self.keys.root().read().await?;
        self.check_keks(&kek).await?;
        self.keys.root().install(kek);
        tracing::info!("reloaded the KEK keyset");
        self.kek_status().await
    }

    /// Checks every data and system key is wrapped by a key `kek` holds.
    pub async fn check_keks(&self, kek: &Kek) -> Result<()> {
        self.keys.check_wrapping_keys(kek).await?;
        for (name, kek_id) in SystemKeys::new(self.store.storage().as_ref())
            .keks()
            .await?
        {
            if kek.get(kek_id).is_none() {
                return Err(crate::error::Error::KeyUnavailable(format!(
                    "system key {name} is wrapped by KEK {kek_id}, which the keyset does not hold \
                     (or holds disabled): restore that key to the keyset"
                )));
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
            primary_key_id: kek.primary().id,
            namespaces: 0,
            data_keys_rewrapped: 0,
            system_keys_rewrapped: 0,
            elapsed_ms: 0,
        };
        let mut scopes = self.keys.scan_scopes();
        while let Some(page) = scopes.next_page().await? {
            for scope in &page {
                guard.renew_if_due().await?;
                report.namespaces += 1;
                report.data_keys_rewrapped += self.keys.rewrap_scope(kek, scope).await? as u64;
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
