//! One audit record and the hash chain that links it to the one before.
//!
//! A record's `hash` is SHA-256 over the previous record's hash and the
//! record's own canonical JSON (every field but `hash`, in declaration
//! order). Sequence numbers count up by one from 1, and the first record of
//! a log chains to 64 zeros, so an edit, a deletion, an insertion or a
//! reordering breaks the chain at the first record it touches.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened in one request. Sensitive strings (secret names) are
/// HMACs; values and tokens never appear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub time: String,
    pub request_id: String,
    /// Token id (public), or none for unauthenticated requests.
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    /// Such as `secret.read`, `token.create`, `sys.health`.
    pub action: String,
    pub namespace: Option<String>,
    /// `hmac-sha256:<hex>` of the secret name or other sensitive path part.
    pub path: Option<String>,
    /// `allowed`, `denied` or `error`.
    pub outcome: String,
    pub status: u16,
    pub remote: String,
}

/// An entry as stored: numbered and chained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u64,
    pub prev: String,
    #[serde(flatten)]
    pub entry: Entry,
    pub hash: String,
}

/// The part of a record its hash covers.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    prev: &'a str,
    #[serde(flatten)]
    entry: &'a Entry,
}

impl Record {
    /// Numbers and chains `entry` after the record with `prev_hash`.
    pub fn seal(seq: u64, prev_hash: &str, entry: Entry) -> Record {
        let hash = chain_hash(seq, prev_hash, &entry);
        Record {
            seq,
            prev: prev_hash.to_owned(),
            entry,
            hash,
        }
    }

    /// Whether the stored hash is the one its contents give.
    pub fn hash_is_intact(&self) -> bool {
        chain_hash(self.seq, &self.prev, &self.entry) == self.hash
    }
}

fn chain_hash(seq: u64, prev: &str, entry: &Entry) -> String {
    let body = Hashed { seq, prev, entry };
    // Serializing strings and integers cannot fail.
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(&json);
    hex::encode(hasher.finalize())
}
