//! Keys the engine uses for itself — the record key that seals every
//! stored record, the audit key — 32 random bytes per name, stored wrapped
//! by the KEK with the KEK's id beside them, created on first use and
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
            return unwrap(kek, name, &entry.value);
        }
        let key = KeyMaterial::generate(Algorithm::Aes256Gcm);
        let wrapped = SystemKeyRecord {
            kek_id: kek.primary().id,
            wrapped: kek.primary().wrap(key.as_bytes(), &aad(name)),
        };
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

fn unwrap(kek: &Kek, name: &str, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let record = SystemKeyRecord::decode(stored)
        .map_err(|e| Error::Integrity(format!("system key {name}: {e}")))?;
    let wrapping = kek.get(record.kek_id).ok_or_else(|| {
        Error::KeyUnavailable(format!(
            "system key {name} is wrapped by KEK {}, which the keyset does not hold",
            record.kek_id
        ))
    })?;
    wrapping
        .unwrap(&record.wrapped, &aad(name))
        .map_err(|e| Error::Integrity(format!("system key {name}: {e}")))
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
        let primary = kek.primary();
        let mut moved = 0;
        for (name, kek_id) in self.keks().await? {
            if kek_id == primary.id {
                continue;
            }
            let record = layout::system_key(&name);
            let Some(entry) = self.storage.get(&record).await? else {
                continue;
            };
            let key = unwrap(kek, &name, &entry.value)?;
            let rewrapped = SystemKeyRecord {
                kek_id: primary.id,
                wrapped: primary.wrap(&key, &aad(&name)),
            };
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
