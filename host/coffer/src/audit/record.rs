//! One audit record and the hash chain that links it to the one before.
//!
//! A record's `hash` is SHA-256 over the previous record's hash, its
//! sequence number and its entry's canonical JSON (fields in declaration
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
    /// `requested` (written before a change runs), then `allowed`,
    /// `denied` or `error`.
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

impl Record {
    /// Numbers and chains `entry` (already serialized as `entry_json`)
    /// after the record with `prev_hash`.
    pub fn seal(seq: u64, prev_hash: &str, entry: Entry, entry_json: &[u8]) -> Record {
        let hash = chain_hash(seq, prev_hash, entry_json);
        Record {
            seq,
            prev: prev_hash.to_owned(),
            entry,
            hash,
        }
    }

    /// Whether the stored hash is the one its contents give.
    pub fn hash_is_intact(&self) -> bool {
        serde_json::to_vec(&self.entry)
            .is_ok_and(|json| chain_hash(self.seq, &self.prev, &json) == self.hash)
    }
}

/// SHA-256 over the previous hash, the sequence number (8 bytes, big
/// endian) and the entry's JSON. Serializing an entry is deterministic (its
/// fields in declaration order), so a verifier re-serializes what it read.
fn chain_hash(seq: u64, prev: &str, entry_json: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(seq.to_be_bytes());
    hasher.update(entry_json);
    hex::encode(hasher.finalize())
}
