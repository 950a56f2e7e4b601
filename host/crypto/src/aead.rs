//! AES-GCM with random 96-bit nonces and 128-bit tags. A sealed blob is
//! `nonce (12) ‖ ciphertext ‖ tag (16)`, Tink's AES-GCM payload layout.
//!
//! Random nonces are safe for up to about 2^32 messages per key; every
//! secret version gets its own key, and data keys wrap only keys.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};
use crate::key::KeyMaterial;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// Encrypts `plaintext` bound to `aad` under a fresh random nonce.
pub fn seal(key: &KeyMaterial, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let mut blob = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&subtle::seal_with_nonce(key, &nonce, plaintext, aad));
    blob
}

/// Decrypts a blob made by [`seal`] with the same key and `aad`.
pub fn open(key: &KeyMaterial, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed("ciphertext shorter than nonce and tag"));
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    let mut fixed = [0u8; NONCE_LEN];
    fixed.copy_from_slice(nonce);
    subtle::open_with_nonce(key, &fixed, sealed, aad)
}

/// Raw AES-GCM with a caller-chosen nonce. Reusing a nonce under one key
/// destroys confidentiality and integrity: only known-answer tests use this.
pub mod subtle {
    use super::*;

    /// `ciphertext ‖ tag` of `plaintext` under `nonce`.
    pub fn seal_with_nonce(key: &KeyMaterial, nonce: &[u8; NONCE_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = Nonce::from_slice(nonce);
        let payload = Payload { msg: plaintext, aad };
        // Encryption only fails for inputs beyond AES-GCM's 64 GiB limit,
        // far above anything coffer accepts.
        let sealed = match key.as_bytes().len() {
            16 => Aes128Gcm::new_from_slice(key.as_bytes()).map(|c| c.encrypt(nonce, payload)),
            _ => Aes256Gcm::new_from_slice(key.as_bytes()).map(|c| c.encrypt(nonce, payload)),
        };
        match sealed {
            Ok(Ok(bytes)) => bytes,
            _ => Vec::new(),
        }
    }

    /// The plaintext of `ciphertext ‖ tag` under `nonce`.
    pub fn open_with_nonce(
        key: &KeyMaterial,
        nonce: &[u8; NONCE_LEN],
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < TAG_LEN {
            return Err(CryptoError::Malformed("ciphertext shorter than its tag"));
        }
        let nonce = Nonce::from_slice(nonce);
        let payload = Payload { msg: sealed, aad };
        let opened = match key.as_bytes().len() {
            16 => Aes128Gcm::new_from_slice(key.as_bytes()).map(|c| c.decrypt(nonce, payload)),
            _ => Aes256Gcm::new_from_slice(key.as_bytes()).map(|c| c.decrypt(nonce, payload)),
        };
        match opened {
            Ok(Ok(plaintext)) => Ok(Zeroizing::new(plaintext)),
            _ => Err(CryptoError::Integrity),
        }
    }
}
