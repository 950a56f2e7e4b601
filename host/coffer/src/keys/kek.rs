//! The root of the key hierarchy as requests see it: a snapshot of the KEK
//! — the keyring's keyset held in memory ([`KeysetKek`]), or a remote KMS
//! key that never leaves the KMS ([`KmsKek`]). Both wrap and unwrap data
//! keys and system keys under an AAD that names what is wrapped, and both
//! number their keys (keyset key ids, KMS key versions) so every wrapped
//! key records which one wraps it.

use zeroize::Zeroizing;

use super::keyset::KeysetKek;
use super::kms::KmsKek;
use crate::error::{Error, Result};

/// What `kek status` shows of one KEK key (never its material).
#[derive(Clone, Debug, serde::Serialize)]
pub struct KekKeyInfo {
    /// A keyset key id, or a KMS key version.
    pub id: u32,
    pub algorithm: &'static str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_prefix: Option<&'static str>,
    pub primary: bool,
}

/// The KEK in use.
pub enum Kek {
    /// A keyset the keyring plugin holds, its keys in this process.
    Keyset(KeysetKek),
    /// A key inside a remote KMS.
    Kms(KmsKek),
}

impl Kek {
    /// What the root is: `keyring` or `kms`.
    pub fn kind(&self) -> &'static str {
        match self {
            Kek::Keyset(_) => "keyring",
            Kek::Kms(_) => "kms",
        }
    }

    /// The KMS's name for its key, for a KMS root.
    pub fn kms_key(&self) -> Option<&str> {
        match self {
            Kek::Keyset(_) => None,
            Kek::Kms(kms) => Some(kms.key_name()),
        }
    }

    /// The key (keyset id, KMS version) new wraps use.
    pub fn primary_id(&self) -> u32 {
        match self {
            Kek::Keyset(keyset) => keyset.primary().id,
            Kek::Kms(kms) => kms.version(),
        }
    }

    /// Whether key `id` can unwrap.
    pub fn holds(&self, id: u32) -> bool {
        match self {
            Kek::Keyset(keyset) => keyset.get(id).is_some(),
            Kek::Kms(kms) => kms.holds(id),
        }
    }

    /// Every key, without material.
    pub fn keys(&self) -> &[KekKeyInfo] {
        match self {
            Kek::Keyset(keyset) => keyset.keys(),
            Kek::Kms(kms) => kms.keys(),
        }
    }

    /// The error for `what` (a data key, a system key), wrapped by key
    /// `id` this KEK does not hold.
    pub fn missing(&self, what: &str, id: u32) -> Error {
        Error::KeyUnavailable(match self {
            Kek::Keyset(_) => format!(
                "{what} is wrapped by KEK {id}, which the keyset does not hold (or holds \
                 disabled): restore that key to the keyset"
            ),
            Kek::Kms(kms) => format!(
                "{what} is wrapped by version {id} of KMS key {}, which has versions 1 to {}: \
                 is this the KMS key the data was written with?",
                kms.key_name(),
                kms.version()
            ),
        })
    }

    /// Wraps `plaintext` under the primary key, bound to `aad`. Returns the
    /// wrapping key's id and the wrapped bytes.
    pub async fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<(u32, Vec<u8>)> {
        match self {
            Kek::Keyset(keyset) => {
                let primary = keyset.primary();
                Ok((primary.id, primary.wrap(plaintext, aad)))
            }
            Kek::Kms(kms) => kms.wrap(plaintext, aad).await,
        }
    }

    /// Unwraps `wrapped`, made by key `id` under `aad`; `what` names it in
    /// errors.
    pub async fn unwrap(
        &self,
        what: &str,
        id: u32,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Kek::Keyset(keyset) => {
                let key = keyset.get(id).ok_or_else(|| self.missing(what, id))?;
                key.unwrap(wrapped, aad)
                    .map_err(|e| Error::Integrity(format!("{what}: {e}")))
            }
            Kek::Kms(kms) => {
                if !kms.holds(id) {
                    return Err(self.missing(what, id));
                }
                kms.unwrap(what, wrapped, aad).await
            }
        }
    }
}
