//! The service-level error every operation returns; the HTTP layer and the
//! CLI turn it into their own shapes.

use coffer_runtime::PluginError;

/// What went wrong, in terms a client can act on.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the message says how.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The token's policy does not grant the request.
    #[error("permission denied")]
    Forbidden,
    /// A check-and-set did not hold, or writers raced too often.
    #[error("{0}")]
    Conflict(String),
    /// Stored data failed authentication: forged, edited, moved, rolled
    /// back, or sealed under a key this engine does not hold. The detail
    /// names the record (secret names as pseudonyms) for the log and the
    /// audit trail; clients get only the fact.
    #[error("stored data failed its integrity check: {0}")]
    Integrity(String),
    /// The storage backend answered something that cannot be right (a
    /// listing that does not move forward, more than it may hold).
    #[error("{0}")]
    Backend(String),
    /// A key needed to decrypt is not available.
    #[error("{0}")]
    KeyUnavailable(String),
    /// The data was sealed under a key that was destroyed on purpose: it
    /// is gone for good, and retrying cannot help.
    #[error("{0}")]
    KeyDestroyed(String),
    /// A plugin failed or answered with an error.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A broken invariant; details are logged, not returned.
    #[error("{0}")]
    Internal(String),
}

impl From<coffer_crypto::CryptoError> for Error {
    fn from(error: coffer_crypto::CryptoError) -> Self {
        match error {
            coffer_crypto::CryptoError::Integrity => {
                Error::Integrity("a ciphertext failed authentication".to_owned())
            }
            other => Error::Internal(format!("malformed stored data: {other}")),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
