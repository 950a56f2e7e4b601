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
/// Longest key name accepted from a KMS (an ARN is about 100 bytes).
const MAX_NAME_BYTES: usize = 2048;
/// What the start-up check wraps under, and unwraps under another.
const CANARY_AAD: &[u8] = b"coffer.kms-binding-check.v1|wrapped";
const OTHER_AAD: &[u8] = b"coffer.kms-binding-check.v1|other";

/// A KMS key as last described.
pub struct KmsKek {
    kms: Arc<dyn Kms>,
    key: KmsKey,
    keys: Vec<KekKeyInfo>,
}

impl KmsKek {
    /// The KEK of `kms` whose key stands as `key` describes.
    pub fn new(kms: Arc<dyn Kms>, key: KmsKey) -> Result<KmsKek> {
        if key.name.is_empty() || key.name.len() > MAX_NAME_BYTES {
            return Err(Error::Backend(format!(
                "the KMS plugin described a key named in {} bytes: expected 1 to {MAX_NAME_BYTES}",
                key.name.len()
            )));
        }
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

    /// Checks at start that the KMS binds what it wraps to the AAD: a
    /// random key wrapped under one AAD must come back under it, and be
    /// refused under another. A KMS (or a proxy, or an old server) that
    /// drops the associated data would let storage move wrapped keys
    /// between namespaces unnoticed by the KMS.
    pub async fn check_binding(&self) -> Result<()> {
        let canary = coffer_crypto::KeyMaterial::generate(coffer_crypto::Algorithm::Aes256Gcm);
        let (_, blob) = self.wrap(canary.as_bytes(), CANARY_AAD).await?;
        let back = self.kms.unwrap(&blob, CANARY_AAD).await?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            back.as_slice(),
            canary.as_bytes(),
        )) {
            return Err(Error::Backend(format!(
                "KMS key {}: a key wrapped and unwrapped came back changed",
                self.key.name
            )));
        }
        match self.kms.unwrap(&blob, OTHER_AAD).await {
            Err(error) if matches!(error.guest(), Some(GuestError::Invalid(_))) => Ok(()),
            Err(error) => Err(error.into()),
            Ok(_) => Err(Error::Backend(format!(
                "KMS key {} unwraps a key under associated data it was not wrapped with: \
                 the KMS ignores it (an old server, or a proxy dropping it), and coffer \
                 will not bind its keys to their namespaces without it",
                self.key.name
            ))),
        }
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
