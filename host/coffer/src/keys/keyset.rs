//! A KEK held in memory: the Tink keyset a keyring plugin hands the host
//! (and the transport keysets key export uses). Its primary key wraps;
//! every enabled key can unwrap.

use std::collections::HashMap;
use std::sync::Arc;

use coffer_crypto::tink::{KeyStatus, TinkKey, TinkKeyset};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix, WrappingKey, random_key_id};
use coffer_runtime::Keyring;

use super::kek::KekKeyInfo;
use crate::error::{Error, Result};

/// The usable keys of a keyset.
pub struct KeysetKek {
    primary: Arc<WrappingKey>,
    by_id: HashMap<u32, Arc<WrappingKey>>,
    keys: Vec<KekKeyInfo>,
}

impl KeysetKek {
    /// Loads the keyset, creating (and storing) a new one when the keyring
    /// has none and allows it. Returns the KEK and whether it was created.
    pub async fn load_or_create(keyring: &dyn Keyring) -> Result<(KeysetKek, bool)> {
        match keyring.load().await? {
            Some(keyset) => Ok((KeysetKek::from_keyset(&keyset)?, false)),
            None => {
                let keyset = new_keyset();
                keyring.store(&keyset).await?;
                Ok((KeysetKek::from_keyset(&keyset)?, true))
            }
        }
    }

    /// Builds the KEK from a keyset: enabled keys unwrap, the primary wraps.
    pub fn from_keyset(keyset: &TinkKeyset) -> Result<KeysetKek> {
        let by_id: HashMap<u32, Arc<WrappingKey>> = keyset
            .keys
            .iter()
            .filter(|key| key.status == KeyStatus::Enabled)
            .map(|key| {
                let wrapping = WrappingKey::new(key.id, key.output_prefix, key.material.clone());
                (key.id, Arc::new(wrapping))
            })
            .collect();
        let primary = by_id.get(&keyset.primary_key_id).cloned().ok_or_else(|| {
            Error::KeyUnavailable(format!(
                "the keyset's primary key {} is missing or not enabled",
                keyset.primary_key_id
            ))
        })?;
        let keys = keyset
            .keys
            .iter()
            .map(|key| KekKeyInfo {
                id: key.id,
                algorithm: key.algorithm.as_str(),
                status: key.status.as_str(),
                output_prefix: Some(key.output_prefix.as_str()),
                primary: key.id == keyset.primary_key_id,
            })
            .collect();
        Ok(KeysetKek {
            primary,
            by_id,
            keys,
        })
    }

    /// The key new data keys are wrapped with.
    pub fn primary(&self) -> &WrappingKey {
        &self.primary
    }

    /// The key with `id`, if the keyset has it enabled.
    pub fn get(&self, id: u32) -> Option<&WrappingKey> {
        self.by_id.get(&id).map(Arc::as_ref)
    }

    /// Every key of the keyset, enabled or not, without material.
    pub fn keys(&self) -> &[KekKeyInfo] {
        &self.keys
    }
}

/// A fresh enabled key with Tink's output prefix and an id none of `taken`
/// has.
pub fn fresh_tink_key(algorithm: Algorithm, taken: &[u32]) -> TinkKey {
    let id = std::iter::repeat_with(random_key_id)
        .find(|id| !taken.contains(id))
        .unwrap_or_else(random_key_id);
    TinkKey {
        id,
        algorithm,
        status: KeyStatus::Enabled,
        output_prefix: OutputPrefix::Tink,
        material: KeyMaterial::generate(algorithm),
    }
}

/// Adds a fresh AES-256-GCM key to `keyset` and makes it the primary, as
/// `tinkey add-key` followed by `tinkey promote-key` would. Returns its id.
pub fn add_primary_key(keyset: &mut TinkKeyset) -> u32 {
    let taken: Vec<u32> = keyset.keys.iter().map(|k| k.id).collect();
    let key = fresh_tink_key(Algorithm::Aes256Gcm, &taken);
    let id = key.id;
    keyset.keys.push(key);
    keyset.primary_key_id = id;
    id
}

/// A fresh keyset of one AES-256-GCM key with Tink's output prefix.
fn new_keyset() -> TinkKeyset {
    let mut keyset = TinkKeyset {
        primary_key_id: 0,
        keys: Vec::new(),
    };
    add_primary_key(&mut keyset);
    keyset
}
