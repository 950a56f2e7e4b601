//! Symmetric key material and the algorithms it is used with.
//!
//! Key bytes live only in [`zeroize::Zeroizing`] buffers so they are wiped when
//! dropped, and never appear in `Debug` output.

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};

/// The AEAD algorithms coffer supports. Both are AES-GCM with a 96-bit random
/// nonce and a 128-bit tag; they differ only in key length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Aes128Gcm,
    Aes256Gcm,
}

impl Algorithm {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Algorithm::Aes128Gcm => 16,
            Algorithm::Aes256Gcm => 32,
        }
    }

    /// The Tink key template name (`AES128_GCM` / `AES256_GCM`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Aes128Gcm => "AES128_GCM",
            Algorithm::Aes256Gcm => "AES256_GCM",
        }
    }

    /// The algorithm whose keys are `len` bytes long, if any.
    pub const fn from_key_len(len: usize) -> Option<Algorithm> {
        match len {
            16 => Some(Algorithm::Aes128Gcm),
            32 => Some(Algorithm::Aes256Gcm),
            _ => None,
        }
    }

    /// Same as [`Algorithm::from_key_len`]; kept for callers using this name.
    pub const fn for_key_len(len: usize) -> Option<Algorithm> {
        Self::from_key_len(len)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = CryptoError;

    /// Accepts the Tink template names, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("AES128_GCM") {
            Ok(Algorithm::Aes128Gcm)
        } else if s.eq_ignore_ascii_case("AES256_GCM") {
            Ok(Algorithm::Aes256Gcm)
        } else {
            Err(CryptoError::Malformed("unknown algorithm name"))
        }
    }
}

/// Written as its Tink template name.
impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Read from a Tink template name, in any ASCII case.
impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown algorithm {name:?}: expected AES256_GCM or AES128_GCM"
            ))
        })
    }
}

/// Raw symmetric key bytes whose length is valid for an [`Algorithm`].
///
/// Equality is constant time so comparing keys leaks nothing through timing.
#[derive(Clone)]
pub struct KeyMaterial {
    algorithm: Algorithm,
    bytes: Zeroizing<Vec<u8>>,
}

impl KeyMaterial {
    /// Takes ownership of `bytes` (no copy is made), checking the length.
    /// On error the bytes are wiped before being dropped.
    pub fn new(algorithm: Algorithm, bytes: Vec<u8>) -> Result<KeyMaterial> {
        Self::from_zeroizing(algorithm, Zeroizing::new(bytes))
    }

    /// Like [`KeyMaterial::new`] for bytes that are already in a wiping buffer.
    pub fn from_zeroizing(algorithm: Algorithm, bytes: Zeroizing<Vec<u8>>) -> Result<KeyMaterial> {
        if bytes.len() != algorithm.key_len() {
            return Err(CryptoError::KeyLength {
                algorithm,
                len: bytes.len(),
            });
        }
        Ok(KeyMaterial { algorithm, bytes })
    }

    /// Fresh key bytes from the operating system's CSPRNG.
    #[cfg(feature = "envelope")]
    pub fn generate(algorithm: Algorithm) -> KeyMaterial {
        use rand::RngCore;
        let mut bytes = Zeroizing::new(vec![0u8; algorithm.key_len()]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        KeyMaterial { algorithm, bytes }
    }

    /// The algorithm these bytes are sized for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: the constructors refuse empty keys. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl PartialEq for KeyMaterial {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && bool::from(self.bytes.ct_eq(&other.bytes))
    }
}

impl Eq for KeyMaterial {}

/// A random, nonzero 32-bit key id. Zero is avoided because some tools treat it
/// as "unset".
#[cfg(feature = "envelope")]
pub fn random_key_id() -> u32 {
    use rand::RngCore;
    loop {
        let id = rand::rngs::OsRng.next_u32();
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_bytes() {
        let key = KeyMaterial::new(Algorithm::Aes128Gcm, vec![0xAB; 16]);
        let text = format!("{key:?}");
        assert_eq!(text, "Ok(KeyMaterial { len: 16 })");
    }

    #[test]
    fn wrong_length_is_refused() {
        let err = KeyMaterial::new(Algorithm::Aes256Gcm, vec![0; 16]);
        assert!(matches!(
            err,
            Err(CryptoError::KeyLength {
                algorithm: Algorithm::Aes256Gcm,
                len: 16
            })
        ));
    }

    #[test]
    fn algorithm_names_round_trip() {
        for algorithm in [Algorithm::Aes128Gcm, Algorithm::Aes256Gcm] {
            assert_eq!(algorithm.as_str().parse::<Algorithm>(), Ok(algorithm));
            assert_eq!(
                Algorithm::from_key_len(algorithm.key_len()),
                Some(algorithm)
            );
        }
        assert!("aes256_gcm".parse::<Algorithm>().is_ok());
        assert!("AES192_GCM".parse::<Algorithm>().is_err());
    }

    #[cfg(feature = "envelope")]
    #[test]
    fn generated_keys_differ_and_ids_are_nonzero() {
        let a = KeyMaterial::generate(Algorithm::Aes256Gcm);
        let b = KeyMaterial::generate(Algorithm::Aes256Gcm);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_ne!(random_key_id(), 0);
    }
}
