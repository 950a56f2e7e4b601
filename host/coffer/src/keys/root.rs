//! The KEK in use, swappable while the server runs: `kek rotate` adds and
//! promotes a key through the keyring plugin, `kek reload` picks up a
//! keyset changed outside coffer (tinkey, Tink). Requests that already hold
//! the previous KEK finish with it; both unwrap the same data keys.

use std::sync::{Arc, RwLock};

use coffer_runtime::Keyring;

use super::kek::{Kek, add_primary_key};
use crate::error::{Error, Result};

/// The keyring plugin and the KEK built from its keyset.
pub struct RootKeys {
    keyring: Arc<dyn Keyring>,
    current: RwLock<Arc<Kek>>,
}

impl RootKeys {
    pub fn new(keyring: Arc<dyn Keyring>, kek: Kek) -> RootKeys {
        RootKeys {
            keyring,
            current: RwLock::new(Arc::new(kek)),
        }
    }

    /// The KEK requests use now.
    pub fn current(&self) -> Arc<Kek> {
        match self.current.read() {
            Ok(kek) => kek.clone(),
            // A panic while swapping cannot leave a half-written Arc.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `kek` the KEK requests use.
    pub fn install(&self, kek: Kek) -> Arc<Kek> {
        let kek = Arc::new(kek);
        match self.current.write() {
            Ok(mut current) => *current = kek.clone(),
            Err(poisoned) => *poisoned.into_inner() = kek.clone(),
        }
        kek
    }

    /// Reads the keyset from the keyring again, without installing it.
    pub async fn read(&self) -> Result<Kek> {
        let keyset = self.keyring.load().await?.ok_or_else(|| {
            Error::KeyUnavailable("the keyring no longer holds a keyset".to_owned())
        })?;
        Kek::from_keyset(&keyset)
    }

    /// Adds a fresh key to the keyset, promotes it to primary and stores the
    /// keyset through the keyring; returns the new KEK (not yet installed)
    /// and the new key's id. Data keys still need re-wrapping afterwards.
    pub async fn rotate(&self) -> Result<(Kek, u32)> {
        let mut keyset = self.keyring.load().await?.ok_or_else(|| {
            Error::KeyUnavailable("the keyring no longer holds a keyset".to_owned())
        })?;
        let id = add_primary_key(&mut keyset);
        let kek = Kek::from_keyset(&keyset)?;
        self.keyring.store(&keyset).await?;
        Ok((kek, id))
    }
}
