//! The crate's error type. Authentication failures carry no detail on
//! purpose: which byte or key failed is information for an attacker.

use crate::key::Algorithm;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Ciphertext failed authentication: tampered, truncated in a way that
    /// still parsed, moved to another context, or the wrong key.
    #[error("ciphertext failed authentication")]
    Integrity,
    /// A blob or record is shorter or longer than its format allows.
    #[error("malformed data: {0}")]
    Malformed(&'static str),
    /// A record starts with a format version this build does not know.
    #[error("unsupported record format version {0}")]
    UnsupportedFormat(u8),
    /// A wrapped key names another key than the one asked to unwrap it.
    #[error("ciphertext is for key {found}, not key {expected}")]
    KeyIdMismatch { expected: u32, found: u32 },
    /// Key material of the wrong length for its algorithm.
    #[error("{} needs a {}-byte key, got {len}", algorithm.as_str(), algorithm.key_len())]
    KeyLength { algorithm: Algorithm, len: usize },
}

pub type Result<T> = std::result::Result<T, CryptoError>;
