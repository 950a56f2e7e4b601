//! Key material and the AEAD algorithms coffer uses.

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};

/// An AES-GCM variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Aes128Gcm,
    Aes256Gcm,
}

impl Algorithm {
    pub fn key_len(self) -> usize {
        match self {
            Algorithm::Aes128Gcm => 16,
            Algorithm::Aes256Gcm => 32,
        }
    }

    /// Tink's template name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Aes128Gcm => "AES128_GCM",
            Algorithm::Aes256Gcm => "AES256_GCM",
        }
    }

    /// The algorithm a key of `len` bytes is for.
    pub fn for_key_len(len: usize) -> Option<Algorithm> {
        match len {
            16 => Some(Algorithm::Aes128Gcm),
            32 => Some(Algorithm::Aes256Gcm),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "AES128_GCM" => Ok(Algorithm::Aes128Gcm),
            "AES256_GCM" => Ok(Algorithm::Aes256Gcm),
            other => Err(format!("unknown algorithm {other} (AES128_GCM or AES256_GCM)")),
        }
    }
}

/// Raw key bytes, wiped from memory when dropped. `Debug` shows only the length.
#[derive(Clone)]
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    /// Takes ownership of `bytes` (no copy is left behind) after checking
    /// the length fits `algorithm`.
    pub fn new(algorithm: Algorithm, bytes: Vec<u8>) -> Result<KeyMaterial> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() != algorithm.key_len() {
            return Err(CryptoError::KeyLength {
                algorithm,
                len: bytes.len(),
            });
        }
        Ok(KeyMaterial(bytes))
    }

    /// Like [`KeyMaterial::new`] for bytes already in a zeroizing buffer.
    pub fn from_zeroizing(algorithm: Algorithm, bytes: Zeroizing<Vec<u8>>) -> Result<KeyMaterial> {
        if bytes.len() != algorithm.key_len() {
            return Err(CryptoError::KeyLength {
                algorithm,
                len: bytes.len(),
            });
        }
        Ok(KeyMaterial(bytes))
    }

    /// Fresh random key material from the operating system's CSPRNG.
    #[cfg(feature = "envelope")]
    pub fn generate(algorithm: Algorithm) -> KeyMaterial {
        use rand::RngCore;
        let mut bytes = Zeroizing::new(vec![0u8; algorithm.key_len()]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        KeyMaterial(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The algorithm implied by the key's length.
    pub fn algorithm(&self) -> Algorithm {
        // `new` only admits 16- or 32-byte keys.
        if self.0.len() == 16 {
            Algorithm::Aes128Gcm
        } else {
            Algorithm::Aes256Gcm
        }
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial {{ len: {} }}", self.0.len())
    }
}

/// A random, nonzero key id (Tink's ids are unsigned 32-bit).
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = KeyMaterial::new(Algorithm::Aes128Gcm, vec![0xAB; 16]).unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, "KeyMaterial { len: 16 }");
    }

    #[test]
    fn lengths_are_checked() {
        assert!(KeyMaterial::new(Algorithm::Aes256Gcm, vec![0; 16]).is_err());
        assert!(KeyMaterial::new(Algorithm::Aes128Gcm, vec![0; 16]).is_ok());
        assert_eq!("aes256-gcm".parse::<Algorithm>().unwrap(), Algorithm::Aes256Gcm);
    }
}
