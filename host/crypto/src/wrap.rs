//! Key wrapping: AES-GCM under a key that has an id and a Tink output prefix.
//!
//! `wrap` output is `prefix ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, byte for byte
//! what Tink's `AesGcm` primitive produces for a key with the same id and output
//! prefix type, so either side can decrypt the other's output given the same
//! associated data.

use std::fmt;

use zeroize::Zeroizing;

use crate::aead;
use crate::error::{CryptoError, Result};
use crate::key::{Algorithm, KeyMaterial};
use crate::prefix::{OutputPrefix, split_prefix};

/// A key that wraps other keys (a KEK or a data key), tagged with its id.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappingKey {
    pub id: u32,
    pub algorithm: Algorithm,
    pub prefix: OutputPrefix,
    material: KeyMaterial,
}

impl WrappingKey {
    /// The algorithm is taken from the material's length.
    pub fn new(id: u32, prefix: OutputPrefix, material: KeyMaterial) -> WrappingKey {
        WrappingKey {
            id,
            algorithm: material.algorithm(),
            prefix,
            material,
        }
    }

    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// Encrypts `plaintext` and prepends this key's output prefix.
    ///
    /// # Panics
    ///
    /// Only if `plaintext` exceeds AES-GCM's limit of about 64 GiB.
    pub fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = self.prefix.prefix_bytes(self.id);
        out.extend_from_slice(&aead::seal(&self.material, plaintext, aad));
        out
    }

    /// Reverses [`WrappingKey::wrap`]. A prefix naming another key is
    /// [`CryptoError::KeyIdMismatch`], so callers holding a keyset can tell
    /// "wrong key" from "tampered".
    pub fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let (found, body) = split_prefix(self.prefix, blob)?;
        if let Some(found) = found
            && found != self.id
        {
            return Err(CryptoError::KeyIdMismatch {
                expected: self.id,
                found,
            });
        }
        aead::open(&self.material, body, aad)
    }
}

impl fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappingKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(id: u32, prefix: OutputPrefix) -> WrappingKey {
        WrappingKey::new(id, prefix, KeyMaterial::generate(Algorithm::Aes256Gcm))
    }

    #[test]
    fn round_trip_every_prefix() {
        for prefix in [
            OutputPrefix::Tink,
            OutputPrefix::Legacy,
            OutputPrefix::Crunchy,
            OutputPrefix::Raw,
        ] {
            let k = key(42, prefix);
            let blob = k.wrap(b"secret", b"ad");
            assert_eq!(blob.len(), prefix.prefix_len() + 6 + aead::OVERHEAD);
            assert_eq!(k.unwrap(&blob, b"ad").unwrap().as_slice(), b"secret");
        }
    }

    #[test]
    fn debug_hides_material() {
        let text = format!("{:?}", key(9, OutputPrefix::Tink));
        assert_eq!(
            text,
            "WrappingKey { id: 9, algorithm: Aes256Gcm, prefix: Tink, .. }"
        );
    }

    #[test]
    fn prefix_type_mismatch_is_malformed() {
        let tink = key(1, OutputPrefix::Tink);
        let legacy = WrappingKey::new(1, OutputPrefix::Legacy, tink.material().clone());
        let blob = tink.wrap(b"x", b"");
        assert!(matches!(
            legacy.unwrap(&blob, b""),
            Err(CryptoError::Malformed(_))
        ));
    }
}
