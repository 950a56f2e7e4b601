//! Tink's ciphertext output prefixes, which name the key that made a
//! ciphertext so a keyset with many keys can pick the right one.

use crate::error::{CryptoError, Result};

/// Tink's `OutputPrefixType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputPrefix {
    /// `0x01 ‖ key id (4 bytes, big endian)`.
    Tink,
    /// `0x00 ‖ key id`.
    Legacy,
    /// `0x00 ‖ key id`.
    Crunchy,
    /// No prefix.
    Raw,
}

/// Length of a TINK/LEGACY/CRUNCHY prefix.
pub const PREFIX_LEN: usize = 5;

const TINK_START_BYTE: u8 = 0x01;
const LEGACY_START_BYTE: u8 = 0x00;

impl OutputPrefix {
    /// The bytes ciphertexts of key `key_id` start with.
    pub fn prefix_bytes(self, key_id: u32) -> Vec<u8> {
        let start = match self {
            OutputPrefix::Tink => TINK_START_BYTE,
            OutputPrefix::Legacy | OutputPrefix::Crunchy => LEGACY_START_BYTE,
            OutputPrefix::Raw => return Vec::new(),
        };
        let mut bytes = Vec::with_capacity(PREFIX_LEN);
        bytes.push(start);
        bytes.extend_from_slice(&key_id.to_be_bytes());
        bytes
    }
}

/// The key id of a TINK-prefixed blob.
pub fn tink_key_id(blob: &[u8]) -> Result<u32> {
    match blob {
        [TINK_START_BYTE, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [_, _, _, _, _, ..] => Err(CryptoError::Malformed("not a TINK-prefixed ciphertext")),
        _ => Err(CryptoError::Malformed("ciphertext shorter than its prefix")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prefixes_match_tink() {
        assert_eq!(OutputPrefix::Tink.prefix_bytes(0xA1B2C3D4), [1, 0xA1, 0xB2, 0xC3, 0xD4]);
        assert_eq!(OutputPrefix::Legacy.prefix_bytes(7), [0, 0, 0, 0, 7]);
        assert!(OutputPrefix::Raw.prefix_bytes(7).is_empty());
        assert_eq!(tink_key_id(&[1, 0, 0, 1, 0, 9]).unwrap(), 256);
        assert!(tink_key_id(&[0, 0, 0, 1, 0]).is_err());
        assert!(tink_key_id(&[1, 0]).is_err());
    }
}
