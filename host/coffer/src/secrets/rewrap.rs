//! Moving one secret's versions onto its namespace's Active data key: the
//! janitor and `coffer reencrypt` (through [`crate::maintenance`]) and
//! every write use this.
//!
//! [`Mode::Rewrap`] re-wraps only each version's 32-byte secret key; the
//! value's ciphertext is untouched. [`Mode::Full`] also re-encrypts the value
//! under a fresh secret key (the plaintext exists only in zeroizing host
//! memory for the moment it takes). Versions whose data key is destroyed, or
//! whose ciphertext fails its integrity check, are left exactly as they are
//! and counted, never dropped.

use coffer_crypto::WrappingKey;
use coffer_crypto::envelope::{SealedValue, open_value, rewrap_secret_key, seal_value};
use coffer_crypto::record::SecretRecord;

use super::Secrets;
use crate::error::{Error, Result};
use crate::store::Change;

/// How versions are moved onto the Active key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Re-wrap the secret keys of versions under another data key.
    Rewrap,
    /// Re-encrypt every version's value under a fresh secret key.
    Full,
}

/// What moving one or more records did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Moved {
    /// Records looked at.
    pub records: u64,
    /// Versions now under the Active key that were not (or re-encrypted).
    pub versions: u64,
    /// Versions that could not be opened (destroyed key, failed integrity).
    pub unreadable: u64,
    /// Records that could not be read or written back (a malformed record,
    /// a secret too busy to update); left as they are for the next pass.
    #[serde(default)]
    pub failed: u64,
}

impl Moved {
    pub fn add(&mut self, other: Moved) {
        self.records += other.records;
        self.versions += other.versions;
        self.unreadable += other.unreadable;
        self.failed += other.failed;
    }
}

impl Secrets {
    /// Moves the versions of one secret onto the Active data key.
    pub async fn rewrap(&self, namespace: &str, name: &str, mode: Mode) -> Result<Moved> {
        self.update(namespace, name, move |mut record| async move {
            if record.versions.is_empty() {
                return Ok((record, Change::Keep(Moved::default())));
            }
            let active = self.keys.active(namespace).await?;
            let mut moved = self
                .move_versions(namespace, name, &mut record, &active, mode)
                .await?;
            moved.records = 1;
            let change = if moved.versions == 0 {
                Change::Keep(moved)
            } else {
                Change::Write(moved)
            };
            Ok((record, change))
        })
        .await
    }

    /// Re-seals, in `record`, the versions `mode` selects under `active`.
    pub(crate) async fn move_versions(
        &self,
        namespace: &str,
        name: &str,
        record: &mut SecretRecord,
        active: &WrappingKey,
        mode: Mode,
    ) -> Result<Moved> {
        let mut moved = Moved::default();
        for entry in &mut record.versions {
            if entry.is_destroyed() || mode == Mode::Rewrap && entry.data_key_id == active.id {
                continue;
            }
            let from = match self.keys.by_id(namespace, entry.data_key_id).await {
                Ok(key) => key,
                Err(Error::KeyDestroyed(_) | Error::KeyUnavailable(_)) => {
                    moved.unreadable += 1;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let sealed = SealedValue {
                wrapped_key: std::mem::take(&mut entry.wrapped_key),
                ciphertext: std::mem::take(&mut entry.ciphertext),
            };
            let resealed = match mode {
                Mode::Rewrap => {
                    rewrap_secret_key(&from, active, namespace, name, entry.version, &sealed)
                }
                Mode::Full => open_value(&from, namespace, name, entry.version, &sealed)
                    .map(|value| seal_value(active, namespace, name, entry.version, &value)),
            };
            match resealed {
                Ok(resealed) => {
                    entry.data_key_id = active.id;
                    entry.wrapped_key = resealed.wrapped_key;
                    entry.ciphertext = resealed.ciphertext;
                    moved.versions += 1;
                }
                Err(error) => {
                    tracing::warn!(
                        namespace,
                        version = entry.version,
                        %error,
                        "a secret version could not be opened to move it; left as it is"
                    );
                    entry.wrapped_key = sealed.wrapped_key;
                    entry.ciphertext = sealed.ciphertext;
                    moved.unreadable += 1;
                }
            }
        }
        Ok(moved)
    }
}
