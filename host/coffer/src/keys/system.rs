//! Keys the engine uses for itself (such as the audit HMAC key): 32 random
//! bytes per name, stored wrapped by the KEK, created on first use and
//! re-wrapped with the data keys when the KEK rotates.

use coffer_crypto::{Algorithm, KeyMaterial, tink_key_id};
use coffer_runtime::{Expected, Storage};
use zeroize::Zeroizing;

use super::Kek;
use crate::edit::is_conflict;
use crate::error::{Error, Result};

const PREFIX: &str = "sys/keys/";

fn aad(name: &str) -> Vec<u8> {
    format!("coffer.system-key.v1:{name}").into_bytes()
}

/// The system key `name`, created (and stored wrapped) when missing.
pub async fn system_key(
    storage: &dyn Storage,
    kek: &Kek,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let record = format!("{PREFIX}{name}");
    for _ in 0..2 {
        if let Some(entry) = storage.get(&record).await? {
            return unwrap(kek, name, &entry.value);
        }
        let key = KeyMaterial::generate(Algorithm::Aes256Gcm);
        let wrapped = kek.primary().wrap(key.as_bytes(), &aad(name));
        match storage.put(&record, &wrapped, Expected::Absent).await {
            Ok(_) => return Ok(Zeroizing::new(key.as_bytes().to_vec())),
            Err(error) if is_conflict(&error) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict(format!(
        "system key {name} keeps changing; retry"
    )))
}

fn unwrap(kek: &Kek, name: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let id = tink_key_id(wrapped)?;
    let wrapping = kek.get(id).ok_or_else(|| {
        Error::KeyUnavailable(format!(
            "system key {name} is wrapped by KEK {id}, which the keyset does not hold"
        ))
    })?;
    Ok(wrapping.unwrap(wrapped, &aad(name))?)
}

/// The KEK id wrapping each stored system key, by name.
pub async fn system_key_keks(storage: &dyn Storage) -> Result<Vec<(String, u32)>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = storage.list(PREFIX, after.as_deref(), 1000).await?;
        for key in &page.keys {
            if let Some(entry) = storage.get(key).await? {
                let name = key.strip_prefix(PREFIX).unwrap_or(key).to_owned();
                out.push((name, tink_key_id(&entry.value)?));
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Re-wraps every system key not yet under `kek`'s primary; returns how
/// many moved.
pub async fn rewrap_system_keys(storage: &dyn Storage, kek: &Kek) -> Result<usize> {
    let primary = kek.primary();
    let mut moved = 0;
    for (name, kek_id) in system_key_keks(storage).await? {
        if kek_id == primary.id {
            continue;
        }
        let record = format!("{PREFIX}{name}");
        let Some(entry) = storage.get(&record).await? else {
            continue;
        };
        let key = unwrap(kek, &name, &entry.value)?;
        let wrapped = primary.wrap(&key, &aad(&name));
        match storage
            .put(&record, &wrapped, Expected::Revision(entry.revision))
            .await
        {
            Ok(_) => moved += 1,
            // Another node re-wrapped it meanwhile.
            Err(error) if is_conflict(&error) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(moved)
}
