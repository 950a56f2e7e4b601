//! The data-key status machine, applied to a scope's [`DataKeySet`].
//!
//! ```text
//!            rotate                      inactivate (usage 0)
//!   Active ─────────▶ Deprecated ─────────────────────────▶ Inactive
//!                        ▲  │ ◀──────────────────────────────  │
//!                        │  │            deprecate             │
//!               import ──┘  │ destroy (usage 0, or forced)     │ destroy (usage 0, or forced)
//!                           ▼                                  ▼
//!                       Destroyed ◀────────────────────────────┘
//! ```
//!
//! Rules every transition keeps, so callers cannot break them:
//! - a set has at most one Active key, and only [`rotate`](DataKeySet::rotate)
//!   (which demotes the old one in the same change) makes one;
//! - the Active key is never deprecated, inactivated or destroyed directly;
//! - a key still in use (secret versions wrapped under it) is never made
//!   Inactive, and never Destroyed unless the caller forces it;
//! - Destroyed is final and its wrapped material is erased;
//! - every change bumps the key's `version` and sets `updated_at_ms`;
//! - a set never outgrows what its record can hold: at most
//!   [`MAX_LIVE_KEYS`] keys with material (a rotation or import beyond that
//!   is refused until retired keys are destroyed), and only the
//!   [`MAX_DESTROYED_KEYS`] most recently destroyed keys are remembered, so
//!   no sequence of calls can make the record undecodable.
//!
//! The set is only ever written back with compare-and-set, so two nodes
//! applying changes at once cannot both succeed on the same base.

use std::fmt;

use crate::key::Algorithm;
use crate::record::{DataKeyEntry, DataKeySet, DataKeyStatus};

/// Most keys holding material (not Destroyed) a set may have.
pub const MAX_LIVE_KEYS: usize = 1_000;
/// Most Destroyed keys a set remembers (to answer "destroyed" rather than
/// "unknown" for what they sealed); older ones are forgotten.
pub const MAX_DESTROYED_KEYS: usize = 1_000;

/// Why a transition was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleError {
    /// The scope has no key with this id.
    UnknownKey(u32),
    /// A key with this id already exists (import, rotate).
    DuplicateKey(u32),
    /// The transition is not allowed from the key's status.
    NotAllowed {
        id: u32,
        status: DataKeyStatus,
        action: &'static str,
        hint: &'static str,
    },
    /// Secret versions are still wrapped under the key.
    InUse { id: u32, usage: u64 },
    /// The set already holds [`MAX_LIVE_KEYS`] keys with material.
    TooManyKeys { live: usize },
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::UnknownKey(id) => write!(f, "no data key {id} in this namespace"),
            LifecycleError::DuplicateKey(id) => {
                write!(f, "data key {id} already exists in this namespace")
            }
            LifecycleError::NotAllowed {
                id,
                status,
                action,
                hint,
            } => write!(f, "cannot {action} data key {id}: it is {status}; {hint}"),
            LifecycleError::InUse { id, usage } => write!(
                f,
                "data key {id} still protects {usage} secret version(s); \
                 re-encrypt them first (coffer reencrypt)"
            ),
            LifecycleError::TooManyKeys { live } => write!(
                f,
                "the namespace already has {live} data keys holding material (the most it may \
                 have): destroy retired keys before adding another"
            ),
        }
    }
}

impl std::error::Error for LifecycleError {}

/// What a transition did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The set changed and must be written back.
    Changed,
    /// The key already had the requested status; nothing to write.
    Unchanged,
}

type Result<T> = std::result::Result<T, LifecycleError>;

impl DataKeySet {
    fn entry_mut(&mut self, id: u32) -> Result<&mut DataKeyEntry> {
        self.keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or(LifecycleError::UnknownKey(id))
    }

    /// Adds `new` as the Active key; the previous Active key becomes
    /// Deprecated. `new` must carry a fresh id.
    pub fn rotate(&mut self, mut new: DataKeyEntry, now_ms: i64) -> Result<Outcome> {
        self.check_room(new.id)?;
        for key in self
            .keys
            .iter_mut()
            .filter(|k| k.status == DataKeyStatus::Active)
        {
            set_status(key, DataKeyStatus::Deprecated, now_ms);
        }
        new.status = DataKeyStatus::Active;
        new.version = 1;
        new.created_at_ms = now_ms;
        new.updated_at_ms = now_ms;
        self.keys.push(new);
        Ok(Outcome::Changed)
    }

    /// Brings an Inactive key back to Deprecated (it decrypts, never
    /// encrypts).
    pub fn deprecate(&mut self, id: u32, now_ms: i64) -> Result<Outcome> {
        let key = self.entry_mut(id)?;
        match key.status {
            DataKeyStatus::Deprecated => Ok(Outcome::Unchanged),
            DataKeyStatus::Inactive => {
                set_status(key, DataKeyStatus::Deprecated, now_ms);
                Ok(Outcome::Changed)
            }
            status => Err(not_allowed(id, status, "deprecate")),
        }
    }

    /// Retires a Deprecated key that no secret version uses any more.
    pub fn inactivate(&mut self, id: u32, usage: u64, now_ms: i64) -> Result<Outcome> {
        let key = self.entry_mut(id)?;
        match key.status {
            DataKeyStatus::Inactive => Ok(Outcome::Unchanged),
            DataKeyStatus::Deprecated if usage > 0 => Err(LifecycleError::InUse { id, usage }),
            DataKeyStatus::Deprecated => {
                set_status(key, DataKeyStatus::Inactive, now_ms);
                Ok(Outcome::Changed)
            }
            status => Err(not_allowed(id, status, "inactivate")),
        }
    }

    /// Crypto-shreds a Deprecated or Inactive key: its wrapped material is
    /// erased, so whatever it still protects becomes unreadable for good.
    /// Refused while `usage > 0` unless `force`.
    pub fn destroy(&mut self, id: u32, usage: u64, force: bool, now_ms: i64) -> Result<Outcome> {
        let key = self.entry_mut(id)?;
        match key.status {
            DataKeyStatus::Destroyed => Ok(Outcome::Unchanged),
            DataKeyStatus::Deprecated | DataKeyStatus::Inactive if usage > 0 && !force => {
                Err(LifecycleError::InUse { id, usage })
            }
            DataKeyStatus::Deprecated | DataKeyStatus::Inactive => {
                set_status(key, DataKeyStatus::Destroyed, now_ms);
                key.wrapped = Vec::new();
                self.forget_oldest_destroyed();
                Ok(Outcome::Changed)
            }
            status => Err(not_allowed(id, status, "destroy")),
        }
    }

    /// Adds a key brought from another instance. It arrives Deprecated, so
    /// it decrypts what was copied across but never encrypts here.
    pub fn import(&mut self, mut key: DataKeyEntry, now_ms: i64) -> Result<Outcome> {
        self.check_room(key.id)?;
        key.status = DataKeyStatus::Deprecated;
        key.version = 1;
        key.updated_at_ms = now_ms;
        self.keys.push(key);
        Ok(Outcome::Changed)
    }

    /// Records that key `id` is now wrapped as `wrapped` under KEK `kek_id`.
    /// Destroyed keys have nothing to re-wrap.
    pub fn rewrap(&mut self, id: u32, kek_id: u32, wrapped: Vec<u8>, now_ms: i64) -> Result<()> {
        let key = self.entry_mut(id)?;
        if key.status == DataKeyStatus::Destroyed {
            return Err(not_allowed(id, key.status, "re-wrap"));
        }
        key.kek_id = kek_id;
        key.wrapped = wrapped;
        bump(key, now_ms);
        Ok(())
    }

    /// Refuses a new key `id` that is taken, or that the set has no room for.
    fn check_room(&self, id: u32) -> Result<()> {
        if self.by_id(id).is_some() {
            return Err(LifecycleError::DuplicateKey(id));
        }
        let live = self.live().count();
        if live >= MAX_LIVE_KEYS {
            return Err(LifecycleError::TooManyKeys { live });
        }
        Ok(())
    }

    /// Drops the longest-destroyed entries beyond [`MAX_DESTROYED_KEYS`].
    fn forget_oldest_destroyed(&mut self) {
        let destroyed = |k: &DataKeyEntry| k.status == DataKeyStatus::Destroyed;
        let excess = self
            .keys
            .iter()
            .filter(|k| destroyed(k))
            .count()
            .saturating_sub(MAX_DESTROYED_KEYS);
        if excess == 0 {
            return;
        }
        let mut times: Vec<(i64, u32)> = self
            .keys
            .iter()
            .filter(|k| destroyed(k))
            .map(|k| (k.updated_at_ms, k.id))
            .collect();
        times.sort_unstable();
        let forget: Vec<u32> = times.iter().take(excess).map(|(_, id)| *id).collect();
        self.keys
            .retain(|k| !(destroyed(k) && forget.contains(&k.id)));
    }

    /// Keys still holding material, i.e. everything not Destroyed.
    pub fn live(&self) -> impl Iterator<Item = &DataKeyEntry> {
        self.keys
            .iter()
            .filter(|k| k.status != DataKeyStatus::Destroyed)
    }

    /// Whether any key other than the Active one still holds material:
    /// secret keys may then need moving onto the Active key.
    pub fn has_retired_keys(&self) -> bool {
        self.live().any(|k| k.status != DataKeyStatus::Active)
    }
}

/// A new data key entry for [`DataKeySet::rotate`] or the first key of a
/// scope; timestamps, status and version are set by the transition.
pub fn new_entry(id: u32, algorithm: Algorithm, kek_id: u32, wrapped: Vec<u8>) -> DataKeyEntry {
    DataKeyEntry {
        id,
        algorithm,
        status: DataKeyStatus::Active,
        created_at_ms: 0,
        updated_at_ms: 0,
        version: 0,
        kek_id,
        wrapped,
    }
}

fn set_status(key: &mut DataKeyEntry, status: DataKeyStatus, now_ms: i64) {
    key.status = status;
    bump(key, now_ms);
}

fn bump(key: &mut DataKeyEntry, now_ms: i64) {
    key.version = key.version.saturating_add(1);
    key.updated_at_ms = now_ms.max(key.updated_at_ms);
}

fn not_allowed(id: u32, status: DataKeyStatus, action: &'static str) -> LifecycleError {
    let hint = match status {
        DataKeyStatus::Active => "rotate the namespace's key first, which deprecates this one",
        DataKeyStatus::Destroyed => "a destroyed key is gone for good",
        DataKeyStatus::Deprecated | DataKeyStatus::Inactive => "no such transition",
    };
    LifecycleError::NotAllowed {
        id,
        status,
        action,
        hint,
    }
}
