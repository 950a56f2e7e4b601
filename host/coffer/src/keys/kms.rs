//! A KEK inside a remote KMS (Vault/OpenBao transit, AWS KMS): the host
//! asks the KMS plugin to wrap and unwrap, and the key never leaves the
//! KMS. Keys are the KMS key's versions, 1 up to the current one.

use std::sync::Arc;

use coffer_runtime::{GuestError, Kms, KmsKey};
use zeroize::Zeroizing;

use super::kek::KekKeyInfo;
use crate::error::{Error, Result};

/// Largest wrapped blob accepted from a KMS (they are a few hundred
/// bytes); a larger one is not stored.
const MAX_BLOB_BYTES: usize = 4096;

/// A KMS key as last described.
pub struct KmsKek {
    kms: Arc<dyn Kms>,
    key: KmsKey,
    keys: Vec<KekKeyInfo>,
}

impl KmsKek {
    /// The KEK of `kms` whose key stands as `key` describes.
    pub fn new(kms: Arc<dyn Kms>, key: KmsKey) -> Result<KmsKek> {
        if key.version == 0 {
            return Err(Error::Backend(format!(
                "the KMS plugin says key {} has version 0; versions start at 1",
                key.name
            )));
        }
        let keys = vec![KekKeyInfo {
            id: key.version,
            algorithm: "KMS",
            status: "ENABLED",
            output_prefix: None,
            primary: true,
        }];
        Ok(KmsKek { kms, key, keys })
    }

    pub fn key_name(&self) -> &str {
        &self.key.name
    }

    /// The version new wraps use.
    pub fn version(&self) -> u32 {
        self.key.version
    }

    /// Whether `version` is one the key has had.
    pub fn holds(&self, version: u32) -> bool {
        (1..=self.key.version).contains(&version)
    }

    /// The current version; older ones show in `kek status` through what
    /// they still wrap.
    pub fn keys(&self) -> &[KekKeyInfo] {
        &self.keys
    }

    pub async fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<(u32, Vec<u8>)> {
        let wrapped = self.kms.wrap(plaintext, aad).await?;
        if wrapped.version == 0 || wrapped.blob.is_empty() || wrapped.blob.len() > MAX_BLOB_BYTES {
            return Err(Error::Backend(format!(
                "the KMS plugin wrapped a key into {} bytes under version {}: expected 1 to \
                 {MAX_BLOB_BYTES} bytes under a version from 1",
                wrapped.blob.len(),
                wrapped.version
            )));
        }
        Ok((wrapped.version, wrapped.blob))
    }

    /// Unwraps `blob`; a blob the KMS finds forged or bound to another AAD
    /// is an integrity failure, anything else the plugin's error.
    pub async fn unwrap(&self, what: &str, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match self.kms.unwrap(blob, aad).await {
            Ok(plaintext) => Ok(plaintext),
            Err(error) if matches!(error.guest(), Some(GuestError::Invalid(_))) => Err(
                Error::Integrity(format!("{what}: the KMS refused to unwrap it: {error}")),
            ),
            Err(error) => Err(error.into()),
        }
    }
}
