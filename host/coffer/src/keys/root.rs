//! The KEK in use, swappable while the server runs: `kek rotate` adds and
//! promotes a key through the keyring plugin, `kek reload` picks up a
//! keyset changed outside coffer (tinkey, Tink), and a node meeting a data
//! key wrapped by a KEK it does not know reads the keyset again by itself
//! (another node rotated it), or about to wrap a new key, checks the
//! keyset's primary first. Requests that already hold the previous KEK
//! finish with it; both unwrap the same data keys.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use coffer_runtime::Keyring;

use super::kek::{Kek, add_primary_key};
use crate::error::{Error, Result};

/// Least time between two reads of the keyset prompted by an unknown KEK,
/// or by a key about to be wrapped.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// The keyring plugin and the KEK built from its keyset.
pub struct RootKeys {
    keyring: Arc<dyn Keyring>,
    current: RwLock<Arc<Kek>>,
    last_follow: tokio::sync::Mutex<Option<Instant>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl RootKeys {
    pub fn new(keyring: Arc<dyn Keyring>, kek: Kek) -> RootKeys {
        RootKeys {
            keyring,
            current: RwLock::new(Arc::new(kek)),
            last_follow: tokio::sync::Mutex::new(None),
            last_refresh: tokio::sync::Mutex::new(None),
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

    /// Picks up a keyset another node changed (a KEK rotation there): when
    /// a data key is wrapped by KEK `needed`, which this node's KEK lacks,
    /// reads the keyset again (at most once a second) and installs it if
    /// it holds `needed`. Returns whether it did.
    pub async fn follow(&self, needed: u32) -> Result<bool> {
        let mut last = self.last_follow.lock().await;
        if self.current().get(needed).is_some() {
            return Ok(true);
        }
        let Some(kek) = self.read_unless_recent(&mut last).await else {
            return Ok(false);
        };
        let kek = kek?;
        if kek.get(needed).is_none() {
            return Ok(false);
        }
        self.install(kek);
        tracing::info!(kek_id = needed, "picked up a KEK keyset changed elsewhere");
        Ok(true)
    }

    /// The KEK to wrap a new key under: the keyset is read again (at most
    /// once a second) and installed when its primary changed and it still
    /// holds every key this node's KEK holds, so a node never goes on
    /// wrapping under a KEK another node rotated away from. A keyset that
    /// lost keys is left to `kek reload` and the janitor, which first check
    /// that nothing still needs them; a keyring that cannot be read leaves
    /// the KEK in use.
    pub async fn refresh(&self) -> Arc<Kek> {
        let mut last = self.last_refresh.lock().await;
        let current = self.current();
        let stored = match self.read_unless_recent(&mut last).await {
            None => return current,
            Some(Ok(stored)) => stored,
            Some(Err(error)) => {
                tracing::warn!(%error, "could not read the keyset to check its primary");
                return current;
            }
        };
        let holds_all = current
            .keys()
            .iter()
            .filter(|key| current.get(key.id).is_some())
            .all(|key| stored.get(key.id).is_some());
        if stored.primary().id == current.primary().id || !holds_all {
            return current;
        }
        tracing::info!(
            kek_id = stored.primary().id,
            "the keyset has a new primary KEK; wrapping under it"
        );
        self.install(stored)
    }

    /// Reads the keyset unless `last` says it was read under
    /// [`FOLLOW_INTERVAL`] ago, and notes the time.
    async fn read_unless_recent(&self, last: &mut Option<Instant>) -> Option<Result<Kek>> {
        if last.is_some_and(|at| at.elapsed() < FOLLOW_INTERVAL) {
            return None;
        }
        *last = Some(Instant::now());
        Some(self.read().await)
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
