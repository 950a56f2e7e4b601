//! The KEK in use, swappable while the server runs, and where it comes
//! from: a keyring plugin's keyset or a KMS plugin's key. `kek rotate`
//! adds and promotes a keyset key through the keyring, or has the KMS
//! start a new key version; `kek reload` picks up a keyset changed outside
//! coffer (tinkey, Tink). A node meeting a data key wrapped by a KEK key
//! it does not know reads the root again by itself (another node rotated
//! it), and about to wrap a new key, checks the primary first. Requests
//! that already hold the previous KEK finish with it; both unwrap the same
//! data keys.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use coffer_runtime::{GuestError, Keyring, Kms, PluginError};

use super::kek::Kek;
use super::keyset::{KeysetKek, add_primary_key};
use super::kms::KmsKek;
use crate::error::{Error, Result};

/// Where the KEK comes from.
#[derive(Clone)]
pub enum RootSource {
    /// A keyring plugin holding a Tink keyset.
    Keyring(Arc<dyn Keyring>),
    /// A KMS plugin in front of a remote key.
    Kms(Arc<dyn Kms>),
}

/// Least time between two reads of the root prompted by an unknown KEK
/// key, or by a key about to be wrapped.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);
/// How long health checks trust a KMS that answered, and one that did not.
const KMS_HEALTHY_FOR: Duration = Duration::from_secs(10);
const KMS_FAILING_FOR: Duration = Duration::from_secs(1);

/// The root's source and the KEK read from it.
pub struct RootKeys {
    source: RootSource,
    current: RwLock<Arc<Kek>>,
    last_follow: tokio::sync::Mutex<Option<Instant>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    /// When the KMS was last asked by a health check, and whether it answered.
    last_health: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl RootKeys {
    /// Reads the KEK from `source`, creating (and storing) a keyset when
    /// the keyring has none and allows it. Returns whether it did.
    pub async fn open(source: RootSource) -> Result<(RootKeys, bool)> {
        let (kek, created) = match &source {
            RootSource::Keyring(keyring) => {
                let (keyset, created) = KeysetKek::load_or_create(keyring.as_ref()).await?;
                (Kek::Keyset(keyset), created)
            }
            RootSource::Kms(kms) => {
                let key = kms.describe().await?;
                let kek = KmsKek::new(kms.clone(), key)?;
                kek.check_binding().await?;
                (Kek::Kms(kek), false)
            }
        };
        Ok((RootKeys::new(source, kek), created))
    }

    pub fn new(source: RootSource, kek: Kek) -> RootKeys {
        RootKeys {
            source,
            current: RwLock::new(Arc::new(kek)),
            last_follow: tokio::sync::Mutex::new(None),
            last_refresh: tokio::sync::Mutex::new(None),
            last_health: tokio::sync::Mutex::new(None),
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

    /// For a KMS root, whether the KMS answers (asked again once the last
    /// answer is a few seconds old, so health checks cost it little);
    /// none for a keyring.
    pub async fn kms_answers(&self) -> Option<bool> {
        let RootSource::Kms(kms) = &self.source else {
            return None;
        };
        let mut last = self.last_health.lock().await;
        if let Some((at, answered)) = *last {
            let trusted = if answered {
                KMS_HEALTHY_FOR
            } else {
                KMS_FAILING_FOR
            };
            if at.elapsed() < trusted {
                return Some(answered);
            }
        }
        let answered = match kms.describe().await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, "health check: the KMS failed");
                false
            }
        };
        *last = Some((Instant::now(), answered));
        Some(answered)
    }

    /// Reads the root again (the keyset, the KMS key's description),
    /// without installing it.
    pub async fn read(&self) -> Result<Kek> {
        self.read_from(&self.source).await
    }

    /// The KEK `source` (a replacement for this root's plugin) gives, once
    /// checked to stand in for it: the same kind of root, the same KMS key,
    /// the AAD bound. Whether it holds every key in use is the caller's to
    /// check.
    pub async fn replacement(&self, source: &RootSource) -> Result<Kek> {
        let kek = self.read_from(source).await?;
        if let Kek::Kms(kms) = &kek {
            kms.check_binding().await?;
        }
        Ok(kek)
    }

    async fn read_from(&self, source: &RootSource) -> Result<Kek> {
        match (source, self.current().as_ref()) {
            (RootSource::Keyring(keyring), Kek::Keyset(_)) => {
                let keyset = load_keyset(keyring.as_ref()).await?;
                Ok(Kek::Keyset(KeysetKek::from_keyset(&keyset)?))
            }
            (RootSource::Kms(kms), Kek::Kms(current)) => {
                let kek = KmsKek::new(kms.clone(), kms.describe().await?)?;
                // An alias pointed at another key mid-flight would mix two
                // keys' versions: refuse it rather than follow it.
                if current.key_name() != kek.key_name() {
                    return Err(Error::Backend(format!(
                        "the KMS key is now {}, but this node started on {}: \
                         restart coffer if the change is meant",
                        kek.key_name(),
                        current.key_name()
                    )));
                }
                Ok(Kek::Kms(kek))
            }
            _ => Err(Error::Invalid(
                "the root changed between a keyring and a KMS: that needs a restart \
                 (and the keys moved)"
                    .to_owned(),
            )),
        }
    }

    /// Picks up a root another node changed (a KEK rotation there): when
    /// a data key is wrapped by KEK key `needed`, which this node's KEK
    /// lacks, reads the root again (at most once a second) and installs it
    /// if it holds `needed`. Returns whether it did.
    pub async fn follow(&self, needed: u32) -> Result<bool> {
        let mut last = self.last_follow.lock().await;
        if self.current().holds(needed) {
            return Ok(true);
        }
        let Some(kek) = self.read_unless_recent(&mut last).await else {
            return Ok(false);
        };
        let kek = kek?;
        if !kek.holds(needed) {
            return Ok(false);
        }
        self.install(kek);
        tracing::info!(kek_id = needed, "picked up a KEK changed elsewhere");
        Ok(true)
    }

    /// The KEK to wrap a new key under: the root is read again (at most
    /// once a second) and installed when its primary changed and it still
    /// holds every key this node's KEK holds, so a node never goes on
    /// wrapping under a KEK another node rotated away from. A root that
    /// lost keys is left to `kek reload` and the janitor, which first check
    /// that nothing still needs them; a root that cannot be read leaves
    /// the KEK in use.
    pub async fn refresh(&self) -> Arc<Kek> {
        let mut last = self.last_refresh.lock().await;
        let current = self.current();
        let stored = match self.read_unless_recent(&mut last).await {
            None => return current,
            Some(Ok(stored)) => stored,
            Some(Err(error)) => {
                tracing::warn!(%error, "could not read the KEK to check its primary");
                return current;
            }
        };
        let holds_all = current
            .keys()
            .iter()
            .filter(|key| current.holds(key.id))
            .all(|key| stored.holds(key.id));
        if stored.primary_id() == current.primary_id() || !holds_all {
            return current;
        }
        tracing::info!(
            kek_id = stored.primary_id(),
            "the KEK has a new primary key; wrapping under it"
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

    /// Starts a new KEK key: adds a fresh key to the keyset, promotes it
    /// and stores the keyset through the keyring, or has the KMS start a
    /// new key version. Returns the new KEK (not yet installed) and the new
    /// key's id. Data keys still need re-wrapping afterwards.
    pub async fn rotate(&self) -> Result<(Kek, u32)> {
        match &self.source {
            RootSource::Keyring(keyring) => {
                let mut keyset = load_keyset(keyring.as_ref()).await?;
                let id = add_primary_key(&mut keyset);
                let kek = KeysetKek::from_keyset(&keyset)?;
                keyring.store(&keyset).await.map_err(read_only_keyset)?;
                Ok((Kek::Keyset(kek), id))
            }
            RootSource::Kms(kms) => {
                let before = self.current().primary_id();
                let key = kms.rotate().await?;
                if key.version <= before {
                    return Err(Error::Backend(format!(
                        "the KMS says key {} is at version {} after rotating from version {before}",
                        key.name, key.version
                    )));
                }
                let version = key.version;
                Ok((Kek::Kms(KmsKek::new(kms.clone(), key)?), version))
            }
        }
    }
}

async fn load_keyset(keyring: &dyn Keyring) -> Result<coffer_crypto::tink::TinkKeyset> {
    keyring
        .load()
        .await?
        .ok_or_else(|| Error::KeyUnavailable("the keyring no longer holds a keyset".to_owned()))
}

/// A keyring refused to write the keyset (`denied`): the operator needs
/// what to change, not which plugin answered.
fn read_only_keyset(error: PluginError) -> Error {
    match error.guest() {
        Some(GuestError::Denied(why)) => Error::Conflict(format!(
            "the keyring cannot take a new key ({why}). A Tink keyset file: allow writing it \
             (`writable = true` on its [keyring.files] grant), or add and promote a key yourself \
             (`tinkey add-key` and `tinkey promote-key`, or `coffer keyset add-key` and \
             `coffer keyset promote`), then run `coffer kek reload` and `coffer kek rewrap`. \
             A raw key: configure the new `key` with the old one as `rotation_key`, restart, \
             and run `coffer kek rewrap`"
        )),
        _ => error.into(),
    }
}
