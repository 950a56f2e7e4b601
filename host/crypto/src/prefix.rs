//! Tink output prefixes: the 5 bytes in front of a ciphertext that name the key
//! which made it, so a keyset holding many keys can pick the right one.

use std::fmt;
use std::str::FromStr;

use crate::error::{CryptoError, Result};

/// Length of a non-raw prefix: one start byte and a 4-byte big-endian key id.
pub const PREFIX_LEN: usize = 5;

/// Start byte of a `TINK` prefix.
pub const TINK_START_BYTE: u8 = 0x01;

/// Start byte of a `LEGACY` or `CRUNCHY` prefix.
pub const LEGACY_START_BYTE: u8 = 0x00;

/// Tink's `OutputPrefixType`. For AEAD, `LEGACY` and `CRUNCHY` produce the same
/// bytes; they are kept apart only so keysets round-trip unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputPrefix {
    Tink,
    Legacy,
    Crunchy,
    Raw,
}

impl OutputPrefix {
    /// The prefix this type puts in front of ciphertexts made by `key_id`.
    pub fn prefix_bytes(self, key_id: u32) -> Vec<u8> {
        match self.start_byte() {
            Some(start) => {
                let mut out = Vec::with_capacity(PREFIX_LEN);
                out.push(start);
                out.extend_from_slice(&key_id.to_be_bytes());
                out
            }
            None => Vec::new(),
        }
    }

    /// How many bytes [`OutputPrefix::prefix_bytes`] returns.
    pub fn prefix_len(self) -> usize {
        match self {
            OutputPrefix::Raw => 0,
            _ => PREFIX_LEN,
        }
    }

    /// The first prefix byte, or `None` for raw keys.
    pub fn start_byte(self) -> Option<u8> {
        match self {
            OutputPrefix::Tink => Some(TINK_START_BYTE),
            OutputPrefix::Legacy | OutputPrefix::Crunchy => Some(LEGACY_START_BYTE),
            OutputPrefix::Raw => None,
        }
    }

    /// Tink's JSON name: `TINK`, `LEGACY`, `CRUNCHY` or `RAW`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutputPrefix::Tink => "TINK",
            OutputPrefix::Legacy => "LEGACY",
            OutputPrefix::Crunchy => "CRUNCHY",
            OutputPrefix::Raw => "RAW",
        }
    }
}

impl fmt::Display for OutputPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutputPrefix {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "TINK" => Ok(OutputPrefix::Tink),
            "LEGACY" => Ok(OutputPrefix::Legacy),
            "CRUNCHY" => Ok(OutputPrefix::Crunchy),
            "RAW" => Ok(OutputPrefix::Raw),
            _ => Err(CryptoError::Malformed("unknown output prefix type")),
        }
    }
}

/// The key id carried by a `TINK`-prefixed blob (`0x01 ‖ id (u32 BE) ‖ …`).
pub fn tink_key_id(blob: &[u8]) -> Result<u32> {
    match blob {
        [TINK_START_BYTE, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [_, _, _, _, _, ..] => Err(CryptoError::Malformed(
            "blob does not start with a TINK prefix",
        )),
        _ => Err(CryptoError::Malformed("blob is shorter than a TINK prefix")),
    }
}

/// Splits off the prefix `prefix` would have written and returns the key id it
/// names (`None` for raw) together with the rest of the blob.
pub fn split_prefix(prefix: OutputPrefix, blob: &[u8]) -> Result<(Option<u32>, &[u8])> {
    let Some(start) = prefix.start_byte() else {
        return Ok((None, blob));
    };
    match blob {
        [first, a, b, c, d, rest @ ..] if *first == start => {
            Ok((Some(u32::from_be_bytes([*a, *b, *c, *d])), rest))
        }
        [_, _, _, _, _, ..] => Err(CryptoError::Malformed(
            "blob carries a different output prefix type",
        )),
        _ => Err(CryptoError::Malformed(
            "blob is shorter than its output prefix",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_layouts_match_tink() {
        assert_eq!(
            OutputPrefix::Tink.prefix_bytes(0xAD8F_A938),
            [1, 0xAD, 0x8F, 0xA9, 0x38]
        );
        assert_eq!(OutputPrefix::Legacy.prefix_bytes(7), [0, 0, 0, 0, 7]);
        assert_eq!(OutputPrefix::Crunchy.prefix_bytes(7), [0, 0, 0, 0, 7]);
        assert!(OutputPrefix::Raw.prefix_bytes(7).is_empty());
    }

    #[test]
    fn tink_key_id_reads_and_refuses() {
        assert_eq!(tink_key_id(&[1, 0, 0, 1, 2, 9, 9]), Ok(258));
        assert_eq!(tink_key_id(&[1, 0, 0, 1, 2]), Ok(258));
        assert!(matches!(
            tink_key_id(&[1, 0, 0]),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            tink_key_id(&[0, 0, 0, 1, 2]),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(tink_key_id(&[]), Err(CryptoError::Malformed(_))));
    }

    #[test]
    fn names_round_trip() {
        for p in [
            OutputPrefix::Tink,
            OutputPrefix::Legacy,
            OutputPrefix::Crunchy,
            OutputPrefix::Raw,
        ] {
            assert_eq!(p.as_str().parse::<OutputPrefix>(), Ok(p));
            assert_eq!(p.prefix_bytes(1).len(), p.prefix_len());
        }
    }
}
