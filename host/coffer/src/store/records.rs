//! Every kind of record coffer stores, with its kind byte, its encoding and
//! whether nodes watch it for rollback. All of them travel sealed
//! ([`coffer_crypto::sealed`]); the table below is the whole list.

use coffer_crypto::record::{DataKeySet, KIND_DATA_KEYS, KIND_SECRET, SecretRecord};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A record kind: how its body is encoded, and what a node remembers of it.
pub trait Record: Sized {
    /// The kind byte in the sealed header.
    const KIND: u8;
    /// What the record is, for messages.
    const NAME: &'static str;
    /// Whether a node remembers the highest generation it has seen of each
    /// such record and refuses an older one (or its disappearance): for
    /// records whose going back would undo something that matters — a
    /// rotated password, a destroyed key, a revoked token.
    const TRACKED: bool;
    /// Whether this node's writers of one such record queue on a lock
    /// rather than race each other through compare-and-set retries: for
    /// records clients write hard (one secret, many writers). Only secrets
    /// queue, so an edit of one (which may create its namespace's key set
    /// on the way) never waits on a lock an edit of another kind holds.
    const QUEUED: bool = false;

    fn encode(&self) -> Result<Vec<u8>>;
    fn decode(body: &[u8]) -> Result<Self>;
}

impl Record for SecretRecord {
    const KIND: u8 = KIND_SECRET;
    const NAME: &'static str = "secret record";
    const TRACKED: bool = true;
    const QUEUED: bool = true;

    fn encode(&self) -> Result<Vec<u8>> {
        Ok(SecretRecord::encode(self))
    }

    fn decode(body: &[u8]) -> Result<Self> {
        SecretRecord::decode(body).map_err(|e| malformed(Self::NAME, e))
    }
}

impl Record for DataKeySet {
    const KIND: u8 = KIND_DATA_KEYS;
    const NAME: &'static str = "data key set";
    const TRACKED: bool = true;

    fn encode(&self) -> Result<Vec<u8>> {
        Ok(DataKeySet::encode(self))
    }

    fn decode(body: &[u8]) -> Result<Self> {
        DataKeySet::decode(body).map_err(|e| malformed(Self::NAME, e))
    }
}

/// Records whose body is JSON: `kind byte, name, tracked`.
macro_rules! json_records {
    ($($type:ty => $kind:literal, $name:literal, $tracked:literal;)*) => {$(
        impl Record for $type {
            const KIND: u8 = $kind;
            const NAME: &'static str = $name;
            const TRACKED: bool = $tracked;

            fn encode(&self) -> Result<Vec<u8>> {
                serde_json::to_vec(self).map_err(|e| Error::Internal(format!("{}: {e}", $name)))
            }

            fn decode(body: &[u8]) -> Result<Self> {
                serde_json::from_slice(body).map_err(|e| malformed($name, e))
            }
        }
    )*};
}

json_records! {
    crate::auth::TokenRecord => b'T', "token record", true;
    crate::maintenance::LeaseRecord => b'L', "lease record", false;
    crate::maintenance::ReencryptPass => b'J', "re-encryption pass", false;
    crate::audit::Checkpoint => b'C', "audit checkpoint", true;
    FormatMarker => b'M', "format marker", false;
    crate::sealing::ring::TransportRing => b'X', "transport key ring", true;
}

/// Which record format a store holds; written once, when the store is new
/// or has been upgraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatMarker {
    pub format: u8,
}

fn malformed(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Internal(format!("malformed {what}: {error}"))
}
