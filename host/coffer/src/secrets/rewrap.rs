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
use crate::store::{Change, Start, Stored, layout};

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
        self.update(namespace, name, Start::Read, move |mut record| async move {
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

    /// Moves the versions of many secrets of `namespace` onto the Active
    /// data key, reading and writing them back in one storage call each
    /// (at most [`coffer_runtime::MAX_BATCH`] names). Answers each name as
    /// [`Secrets::rewrap`] would; the outer error when storage answered
    /// none of them. A secret written by someone else meanwhile is moved
    /// again on its own, as `rewrap` moves it.
    pub async fn rewrap_many(
        &self,
        namespace: &str,
        names: &[String],
        mode: Mode,
    ) -> Result<Vec<Result<Moved>>> {
        let keys: Vec<String> = names
            .iter()
            .map(|name| layout::secret(namespace, name))
            .collect();
        let stored = self.store.read_many::<SecretRecord>(&keys).await?;
        let active = self.keys.active(namespace).await?;
        let mut answers: Vec<Option<Result<Moved>>> = Vec::with_capacity(names.len());
        let mut edits = Vec::new();
        let mut edited = Vec::new();
        for ((key, name), read) in keys.into_iter().zip(names).zip(stored) {
            let Stored {
                mut record,
                version,
            } = match read {
                Ok(Some(stored)) if !stored.record.versions.is_empty() => stored,
                Ok(_) => {
                    answers.push(Some(Ok(Moved::default())));
                    continue;
                }
                Err(error) => {
                    answers.push(Some(Err(error)));
                    continue;
                }
            };
            let moved = self
                .move_versions(namespace, name, &mut record, &active, mode)
                .await
                .map(|moved| Moved {
                    records: 1,
                    ..moved
                });
            match moved {
                Ok(moved) if moved.versions > 0 => {
                    edited.push((answers.len(), moved));
                    edits.push((key, record, Some(version)));
                    answers.push(None);
                }
                settled => answers.push(Some(settled)),
            }
        }
        let written = self.store.put_many(&edits).await?;
        for ((at, moved), written) in edited.into_iter().zip(written) {
            answers[at] = Some(match written {
                Ok(Some(_)) => Ok(moved),
                // Another writer was first: re-read and retry, on its own.
                Ok(None) => self.rewrap(namespace, &names[at], mode).await,
                Err(error) => Err(error),
            });
        }
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    Err(Error::Internal(
                        "storage left a write unanswered".to_owned(),
                    ))
                })
            })
            .collect())
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
