//! The KEK: the keyset the keyring plugin holds. Its primary key wraps new
//! data keys; every enabled key can unwrap.

use std::collections::HashMap;
use std::sync::Arc;

use coffer_crypto::tink::{KeyStatus, TinkKey, TinkKeyset};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix, WrappingKey, random_key_id};
use coffer_runtime::Keyring;

use crate::error::{Error, Result};

/// The usable keys of the keyring's keyset.
pub struct Kek {
    primary: Arc<WrappingKey>,
    by_id: HashMap<u32, Arc<WrappingKey>>,
}

impl Kek {
    /// Loads the keyset, creating (and storing) a new one when the keyring
    /// has none and allows it. Returns the KEK and whether it was created.
    pub async fn load_or_create(keyring: &dyn Keyring) -> Result<(Kek, bool)> {
        match keyring.load().await? {
            Some(keyset) => Ok((Kek::from_keyset(&keyset)?, false)),
            None => {
                let keyset = new_keyset();
                keyring.store(&keyset).await?;
                Ok((Kek::from_keyset(&keyset)?, true))
            }
        }
    }

    /// Builds the KEK from a keyset: enabled keys unwrap, the primary wraps.
    pub fn from_keyset(keyset: &TinkKeyset) -> Result<Kek> {
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
        Ok(Kek { primary, by_id })
    }

    /// The key new data keys are wrapped with.
    pub fn primary(&self) -> &WrappingKey {
        &self.primary
    }

    /// The key with `id`, if the keyset has it enabled.
    pub fn get(&self, id: u32) -> Option<&WrappingKey> {
        self.by_id.get(&id).map(Arc::as_ref)
    }
}

/// A fresh keyset of one AES-256-GCM key with Tink's output prefix.
fn new_keyset() -> TinkKeyset {
    let id = random_key_id();
    TinkKeyset {
        primary_key_id: id,
        keys: vec![TinkKey {
            id,
            algorithm: Algorithm::Aes256Gcm,
            status: KeyStatus::Enabled,
            output_prefix: OutputPrefix::Tink,
            material: KeyMaterial::generate(Algorithm::Aes256Gcm),
        }],
    }
}
