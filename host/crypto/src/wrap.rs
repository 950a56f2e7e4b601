//! Wrapping keys with keys, in Tink's ciphertext layout: `output prefix ‖
//! nonce ‖ ciphertext ‖ tag`. A Tink keyset holding the same key decrypts
//! what [`WrappingKey::wrap`] produced, given the same associated data.

use std::fmt;

use zeroize::Zeroizing;

use crate::aead;
use crate::error::{CryptoError, Result};
use crate::key::{Algorithm, KeyMaterial};
use crate::prefix::{OutputPrefix, PREFIX_LEN};

/// A key that wraps other keys (a KEK or a data key), with its id.
#[derive(Clone)]
pub struct WrappingKey {
    pub id: u32,
    pub algorithm: Algorithm,
    pub prefix: OutputPrefix,
    material: KeyMaterial,
}

impl WrappingKey {
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

    /// Encrypts `plaintext` (key material) bound to `aad`.
    pub fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut blob = self.prefix.prefix_bytes(self.id);
        blob.extend_from_slice(&aead::seal(&self.material, plaintext, aad));
        blob
    }

    /// Decrypts a blob made by [`WrappingKey::wrap`] with this key and `aad`.
    pub fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let expected = self.prefix.prefix_bytes(self.id);
        if blob.len() < expected.len() {
            return Err(CryptoError::Malformed("ciphertext shorter than its prefix"));
        }
        let (prefix, rest) = blob.split_at(expected.len());
        if prefix != expected.as_slice() {
            let found = if prefix.len() == PREFIX_LEN {
                u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]])
            } else {
                0
            };
            return Err(CryptoError::KeyIdMismatch {
                expected: self.id,
                found,
            });
        }
        aead::open(&self.material, rest, aad)
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
