//! Keys the engine uses for itself (such as the audit HMAC key): 32 random
//! bytes per name, stored wrapped by the KEK, created on first use.

use coffer_crypto::{Algorithm, KeyMaterial, tink_key_id};
use coffer_runtime::{Expected, GuestError, Storage};
use zeroize::Zeroizing;

use super::Kek;
use crate::error::{Error, Result};

fn aad(name: &str) -> Vec<u8> {
    format!("coffer.system-key.v1:{name}").into_bytes()
}

/// The system key `name`, created (and stored wrapped) when missing.
pub async fn system_key(
    storage: &dyn Storage,
    kek: &Kek,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let record = format!("sys/keys/{name}");
    for _ in 0..2 {
        if let Some(entry) = storage.get(&record).await? {
            let id = tink_key_id(&entry.value)?;
            let wrapping = kek.get(id).ok_or_else(|| {
                Error::KeyUnavailable(format!(
                    "system key {name} is wrapped by KEK {id}, which the keyset does not hold"
                ))
            })?;
            return Ok(wrapping.unwrap(&entry.value, &aad(name))?);
        }
        let key = KeyMaterial::generate(Algorithm::Aes256Gcm);
        let wrapped = kek.primary().wrap(key.as_bytes(), &aad(name));
        match storage.put(&record, &wrapped, Expected::Absent).await {
            Ok(_) => return Ok(Zeroizing::new(key.as_bytes().to_vec())),
            Err(error) if matches!(error.guest(), Some(GuestError::Conflict(_))) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict(format!(
        "system key {name} keeps changing; retry"
    )))
}
