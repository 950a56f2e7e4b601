//! The error type shared by every part of the crate.

use crate::key::Algorithm;

/// Everything that can go wrong while handling keys, ciphertexts and records.
///
/// [`CryptoError::Integrity`] deliberately carries no detail: telling a caller
/// *why* authentication failed (wrong key, wrong AAD, flipped bit) would hand an
/// attacker an oracle, and callers cannot act on the difference anyway.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext, its tag or its associated data does not authenticate.
    #[error("ciphertext failed authentication")]
    Integrity,
    /// The input is structurally wrong: too short, a bad length, trailing bytes.
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    /// A stored record starts with a format version this build does not know.
    #[error("unsupported record format version {0:#04x}")]
    UnsupportedFormat(u8),
    /// A prefixed blob names a different key than the one asked to open it.
    #[error("blob was made by key {found}, not key {expected}")]
    KeyIdMismatch { expected: u32, found: u32 },
    /// Key bytes whose length does not fit the algorithm.
    #[error("{algorithm} key must be {} bytes, got {len}", algorithm.key_len())]
    KeyLength { algorithm: Algorithm, len: usize },
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, CryptoError>;
