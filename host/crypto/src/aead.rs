//! AES-GCM with random 96-bit nonces and 128-bit tags: the only cipher coffer
//! uses. The algorithm follows from the key length (16 bytes → AES-128-GCM,
//! 32 bytes → AES-256-GCM).
//!
//! Sealed blobs are `nonce (12) ‖ ciphertext ‖ tag (16)`, which is also what a
//! Tink `AesGcmKey` with `RAW` output prefix produces.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce, Tag};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};
use crate::key::{Algorithm, KeyMaterial};

/// Nonce length in bytes.
pub const NONCE_LEN: usize = 12;

/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Bytes [`seal`] adds to a plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Encrypts `plaintext` under a fresh random nonce, binding `aad`.
///
/// Random 96-bit nonces are safe for about 2^32 messages per key; coffer keys
/// each secret version with its own key, and data keys only wrap 32-byte keys,
/// so that bound is far away.
///
/// # Panics
///
/// Only if `plaintext` exceeds AES-GCM's limit of about 64 GiB.
pub fn seal(key: &KeyMaterial, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(&nonce);
    seal_into(key, &nonce, plaintext, aad, &mut out);
    out
}

/// Decrypts a blob made by [`seal`]. A blob too short to hold a nonce and a tag
/// is [`CryptoError::Malformed`]; anything that fails authentication is
/// [`CryptoError::Integrity`].
pub fn open(key: &KeyMaterial, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let Some((nonce, rest)) = blob.split_first_chunk::<NONCE_LEN>() else {
        return Err(CryptoError::Malformed(
            "ciphertext is shorter than nonce and tag",
        ));
    };
    if rest.len() < TAG_LEN {
        return Err(CryptoError::Malformed(
            "ciphertext is shorter than nonce and tag",
        ));
    }
    open_detached(key, nonce, rest, aad)
}

/// Raw AES-GCM with a caller-chosen nonce.
///
/// Reusing a nonce under one key reveals the XOR of plaintexts and lets an
/// attacker forge tags, so nothing outside known-answer tests and interop
/// checks should call these: use [`seal`] and [`open`].
pub mod subtle {
    use zeroize::Zeroizing;

    use super::{NONCE_LEN, TAG_LEN, open_detached, seal_into};
    use crate::error::{CryptoError, Result};
    use crate::key::KeyMaterial;

    /// Returns `ciphertext ‖ tag` (no nonce).
    ///
    /// # Panics
    ///
    /// Only if `plaintext` exceeds AES-GCM's limit of about 64 GiB.
    pub fn seal_with_nonce(
        key: &KeyMaterial,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        seal_into(key, nonce, plaintext, aad, &mut out);
        out
    }

    /// Opens `ciphertext ‖ tag` made with `nonce`.
    pub fn open_with_nonce(
        key: &KeyMaterial,
        nonce: &[u8; NONCE_LEN],
        ciphertext_and_tag: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if ciphertext_and_tag.len() < TAG_LEN {
            return Err(CryptoError::Malformed("ciphertext is shorter than the tag"));
        }
        open_detached(key, nonce, ciphertext_and_tag, aad)
    }
}

/// Both key sizes behind one value, so callers need not be generic.
// The size gap is harmless: a Cipher lives on the stack for one operation, and
// boxing would cost an allocation per seal/open.
#[allow(clippy::large_enum_variant)]
enum Cipher {
    Aes128(Aes128Gcm),
    Aes256(Aes256Gcm),
}

impl Cipher {
    fn new(key: &KeyMaterial) -> Cipher {
        // KeyMaterial's constructors guarantee the length matches the algorithm,
        // so the slice conversions below cannot fail.
        const INVARIANT: &str = "KeyMaterial length always matches its algorithm";
        match key.algorithm() {
            Algorithm::Aes128Gcm => {
                Cipher::Aes128(Aes128Gcm::new_from_slice(key.as_bytes()).expect(INVARIANT))
            }
            Algorithm::Aes256Gcm => {
                Cipher::Aes256(Aes256Gcm::new_from_slice(key.as_bytes()).expect(INVARIANT))
            }
        }
    }

    fn encrypt(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buffer: &mut [u8]) -> Tag {
        let nonce = Nonce::from_slice(nonce);
        let result = match self {
            Cipher::Aes128(c) => c.encrypt_in_place_detached(nonce, aad, buffer),
            Cipher::Aes256(c) => c.encrypt_in_place_detached(nonce, aad, buffer),
        };
        result.expect("AES-GCM plaintext exceeds 64 GiB")
    }

    fn decrypt(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<()> {
        let nonce = Nonce::from_slice(nonce);
        let tag = Tag::from_slice(tag);
        let result = match self {
            Cipher::Aes128(c) => c.decrypt_in_place_detached(nonce, aad, buffer, tag),
            Cipher::Aes256(c) => c.decrypt_in_place_detached(nonce, aad, buffer, tag),
        };
        result.map_err(|_| CryptoError::Integrity)
    }
}

/// Appends `ciphertext ‖ tag` to `out`.
fn seal_into(
    key: &KeyMaterial,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(plaintext);
    let tag = Cipher::new(key).encrypt(nonce, aad, &mut out[start..]);
    out.extend_from_slice(&tag);
}

/// `body` is `ciphertext ‖ tag` and at least a tag long.
fn open_detached(
    key: &KeyMaterial,
    nonce: &[u8; NONCE_LEN],
    body: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let Some((ciphertext, tag)) = body.split_last_chunk::<TAG_LEN>() else {
        return Err(CryptoError::Malformed("ciphertext is shorter than the tag"));
    };
    // Decrypt in a wiping buffer so a failed or finished plaintext leaves no copy.
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    Cipher::new(key).decrypt(nonce, aad, &mut buffer, tag)?;
    Ok(buffer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_sizes() {
        for algorithm in [Algorithm::Aes128Gcm, Algorithm::Aes256Gcm] {
            let key = KeyMaterial::generate(algorithm);
            let blob = seal(&key, b"hello", b"aad");
            assert_eq!(blob.len(), 5 + OVERHEAD);
            assert_eq!(open(&key, &blob, b"aad").unwrap().as_slice(), b"hello");
            assert_eq!(open(&key, &blob, b"other"), Err(CryptoError::Integrity));
        }
    }

    #[test]
    fn nonces_are_fresh() {
        let key = KeyMaterial::generate(Algorithm::Aes256Gcm);
        assert_ne!(
            seal(&key, b"x", b"")[..NONCE_LEN],
            seal(&key, b"x", b"")[..NONCE_LEN]
        );
    }

    #[test]
    fn short_blobs_are_malformed() {
        let key = KeyMaterial::generate(Algorithm::Aes128Gcm);
        for len in 0..OVERHEAD {
            assert!(matches!(
                open(&key, &vec![0; len], b""),
                Err(CryptoError::Malformed(_))
            ));
        }
        assert_eq!(open(&key, &[0; OVERHEAD], b""), Err(CryptoError::Integrity));
    }
}
