//! Keys the engine uses for itself — the record key that seals every
//! stored record, the audit key — 32 random bytes per name, stored wrapped
//! by the KEK with the KEK key's id beside them, created on first use and
//! re-wrapped with the data keys when the KEK rotates.
//!
//! A system key is authenticated by the KEK that wraps it (its AAD names
//! it), so it needs no record key of its own: it is what the record key
//! itself is made of.

use coffer_crypto::record::SystemKeyRecord;
use coffer_crypto::{Algorithm, KeyMaterial};
use coffer_runtime::{Expected, GuestError, Storage};
use zeroize::Zeroizing;

use super::Kek;
use crate::error::{Error, Result};
use crate::store::{Scan, layout};

/// The key sealing every stored record.
pub const RECORDS: &str = "records";
/// The audit key: chains audit records and makes pseudonyms of names.
pub const AUDIT: &str = "audit-hmac";
/// Most system keys a store may list; there are a handful.
const MAX_SYSTEM_KEYS: usize = 64;

fn aad(name: &str) -> Vec<u8> {
    format!("coffer.system-key.v1:{name}").into_bytes()
}

/// The system key `name`, created (and stored wrapped) when missing.
pub async fn system_key(
    storage: &dyn Storage,
    kek: &Kek,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let record = layout::system_key(name);
    for _ in 0..2 {
        if let Some(entry) = storage.get(&record).await? {
            return unwrap(kek, name, &entry.value).await;
        }
        let key = KeyMaterial::generate(Algorithm::Aes256Gcm);
        let (kek_id, wrapped) = kek.wrap(key.as_bytes(), &aad(name)).await?;
        let wrapped = SystemKeyRecord { kek_id, wrapped };
        match storage
            .put(&record, &wrapped.encode(), Expected::Absent)
            .await
        {
            Ok(_) => return Ok(Zeroizing::new(key.as_bytes().to_vec())),
            Err(error) if matches!(error.guest(), Some(GuestError::Conflict(_))) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict(format!(
        "system key {name} keeps changing; retry"
    )))
}

/// System key `name` as stored, unwrapped by `kek`; none when there is
/// none yet (nothing is created).
pub async fn read_system_key(
    storage: &dyn Storage,
    kek: &Kek,
    name: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    match storage.get(&layout::system_key(name)).await? {
        Some(entry) => Ok(Some(unwrap(kek, name, &entry.value).await?)),
        None => Ok(None),
    }
}

async fn unwrap(kek: &Kek, name: &str, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let record = SystemKeyRecord::decode(stored)
        .map_err(|e| Error::Integrity(format!("system key {name}: {e}")))?;
    kek.unwrap(
        &format!("system key {name}"),
        record.kek_id,
        &record.wrapped,
        &aad(name),
    )
    .await
}

/// The stored system keys, read through the storage plugin.
pub struct SystemKeys<'a> {
    storage: &'a dyn Storage,
}

impl<'a> SystemKeys<'a> {
    pub fn new(storage: &'a dyn Storage) -> SystemKeys<'a> {
        SystemKeys { storage }
    }

    /// The KEK id wrapping each stored system key, by name.
    pub async fn keks(&self) -> Result<Vec<(String, u32)>> {
        let mut out = Vec::new();
        let mut scan = Scan::new(self.storage, layout::SYSTEM_KEYS.to_owned());
        while let Some(keys) = scan.next_page().await? {
            for key in keys {
                if out.len() >= MAX_SYSTEM_KEYS {
                    return Err(Error::Backend(format!(
                        "the storage plugin lists more than {MAX_SYSTEM_KEYS} system keys"
                    )));
                }
                if let Some(entry) = self.storage.get(&key).await? {
                    let name = key
                        .strip_prefix(layout::SYSTEM_KEYS)
                        .unwrap_or(&key)
                        .to_owned();
                    let record = SystemKeyRecord::decode(&entry.value)
                        .map_err(|e| Error::Integrity(format!("system key {name}: {e}")))?;
                    out.push((name, record.kek_id));
                }
            }
        }
        Ok(out)
    }

    /// Re-wraps every system key not yet under `kek`'s primary; returns how
    /// many moved.
    pub async fn rewrap(&self, kek: &Kek) -> Result<usize> {
        let primary = kek.primary_id();
        let mut moved = 0;
        for (name, kek_id) in self.keks().await? {
            if kek_id == primary {
                continue;
            }
            let record = layout::system_key(&name);
            let Some(entry) = self.storage.get(&record).await? else {
                continue;
            };
            let key = unwrap(kek, &name, &entry.value).await?;
            let (kek_id, wrapped) = kek.wrap(&key, &aad(&name)).await?;
            let rewrapped = SystemKeyRecord { kek_id, wrapped };
            match self
                .storage
                .put(
                    &record,
                    &rewrapped.encode(),
                    Expected::Revision(entry.revision),
                )
                .await
            {
                Ok(_) => moved += 1,
                // Another node re-wrapped it meanwhile.
                Err(error) if matches!(error.guest(), Some(GuestError::Conflict(_))) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(moved)
    }
}
