//! The per-secret-version envelope: each version's value is encrypted under its
//! own fresh AES-256-GCM key, and that key is wrapped under the scope's data key.
//!
//! Rotating a data key then only re-wraps 32-byte secret keys
//! ([`rewrap_secret_key`]); values are never re-encrypted.

use zeroize::Zeroizing;

use crate::aad::{secret_key_aad, value_aad};
use crate::aead;
use crate::error::{CryptoError, Result};
use crate::key::{Algorithm, KeyMaterial};
use crate::prefix::tink_key_id;
use crate::wrap::WrappingKey;

/// What is stored for one secret version. Both halves are ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedValue {
    /// The version's secret key, wrapped under the data key (output prefix ‖ AES-GCM).
    pub wrapped_key: Vec<u8>,
    /// The value: `nonce ‖ ciphertext ‖ tag` under the secret key.
    pub ciphertext: Vec<u8>,
}

/// Encrypts `plaintext` as version `version` of `namespace/name`.
///
/// # Panics
///
/// Only if `plaintext` exceeds AES-GCM's limit of about 64 GiB.
pub fn seal_value(
    data_key: &WrappingKey,
    namespace: &str,
    name: &str,
    version: u32,
    plaintext: &[u8],
) -> SealedValue {
    let secret_key = KeyMaterial::generate(Algorithm::Aes256Gcm);
    let ciphertext = aead::seal(&secret_key, plaintext, &value_aad(namespace, name, version));
    let wrapped_key = data_key.wrap(
        secret_key.as_bytes(),
        &secret_key_aad(namespace, name, version, data_key.id),
    );
    SealedValue {
        wrapped_key,
        ciphertext,
    }
}

/// Decrypts a value sealed by [`seal_value`] for the same coordinates.
pub fn open_value(
    data_key: &WrappingKey,
    namespace: &str,
    name: &str,
    version: u32,
    sealed: &SealedValue,
) -> Result<Zeroizing<Vec<u8>>> {
    let secret_key = unwrap_secret_key(data_key, namespace, name, version, sealed)?;
    aead::open(
        &secret_key,
        &sealed.ciphertext,
        &value_aad(namespace, name, version),
    )
}

/// Moves a version's secret key from data key `from` to data key `to`, leaving
/// the value ciphertext untouched.
pub fn rewrap_secret_key(
    from: &WrappingKey,
    to: &WrappingKey,
    namespace: &str,
    name: &str,
    version: u32,
    sealed: &SealedValue,
) -> Result<SealedValue> {
    let secret_key = unwrap_secret_key(from, namespace, name, version, sealed)?;
    let wrapped_key = to.wrap(
        secret_key.as_bytes(),
        &secret_key_aad(namespace, name, version, to.id),
    );
    Ok(SealedValue {
        wrapped_key,
        ciphertext: sealed.ciphertext.clone(),
    })
}

/// The id of the data key a sealed value's secret key is wrapped under, read
/// from its `TINK` prefix, so the caller can fetch that key before opening.
pub fn sealed_data_key_id(sealed: &SealedValue) -> Result<u32> {
    tink_key_id(&sealed.wrapped_key)
}

fn unwrap_secret_key(
    data_key: &WrappingKey,
    namespace: &str,
    name: &str,
    version: u32,
    sealed: &SealedValue,
) -> Result<KeyMaterial> {
    let raw = data_key.unwrap(
        &sealed.wrapped_key,
        &secret_key_aad(namespace, name, version, data_key.id),
    )?;
    // Infer the algorithm from the length so 128-bit secret keys written by
    // another implementation still open.
    let algorithm = Algorithm::from_key_len(raw.len()).ok_or(CryptoError::Malformed(
        "unwrapped secret key has an unsupported length",
    ))?;
    KeyMaterial::from_zeroizing(algorithm, raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::prefix::OutputPrefix;

    #[test]
    fn seal_open_rewrap() {
        let old = WrappingKey::new(
            11,
            OutputPrefix::Tink,
            KeyMaterial::generate(Algorithm::Aes256Gcm),
        );
        let new = WrappingKey::new(
            22,
            OutputPrefix::Tink,
            KeyMaterial::generate(Algorithm::Aes128Gcm),
        );
        let sealed = seal_value(&old, "ns", "db", 1, b"pw");
        assert_eq!(sealed_data_key_id(&sealed), Ok(11));
        assert_eq!(
            open_value(&old, "ns", "db", 1, &sealed).unwrap().as_slice(),
            b"pw"
        );

        let moved = rewrap_secret_key(&old, &new, "ns", "db", 1, &sealed).unwrap();
        assert_eq!(moved.ciphertext, sealed.ciphertext);
        assert_eq!(sealed_data_key_id(&moved), Ok(22));
        assert_eq!(
            open_value(&new, "ns", "db", 1, &moved).unwrap().as_slice(),
            b"pw"
        );
        assert_eq!(
            open_value(&old, "ns", "db", 1, &moved),
            Err(CryptoError::KeyIdMismatch {
                expected: 11,
                found: 22
            })
        );
    }
}
