//! What this node last wrote of the records it edits from a guess
//! ([`super::Start::Guess`]): each one's encoded body and the version it
//! was written at, so that the next edit of a secret written again and
//! again starts from it instead of a read. Storage still decides: the
//! edit's compare-and-set expects that version, and when another node
//! wrote in between, storage refuses it and the edit reads.
//!
//! Bodies are what storage holds anyway (versions' wrapped keys and
//! ciphertexts), never a plaintext. The memory is bounded in bytes
//! ([`RECENT_BYTES`]), least recently used forgotten first
//! ([`super::bounded`]).

use std::sync::Arc;

use super::Version;
use super::bounded::{BoundedMap, Weigh};

/// Bytes of records (and their keys) a node remembers.
pub const RECENT_BYTES: u64 = 32 * 1024 * 1024;

/// One record as this node last wrote it.
pub struct Recent {
    pub body: Vec<u8>,
    pub version: Version,
}

impl Weigh for Arc<Recent> {
    fn weight(&self, key: &str) -> u64 {
        (key.len() + self.body.len()) as u64
    }
}

/// The records this node last wrote, by storage key.
pub struct RecentWrites {
    records: BoundedMap<Arc<Recent>>,
}

impl RecentWrites {
    pub fn new() -> RecentWrites {
        RecentWrites {
            records: BoundedMap::new(RECENT_BYTES),
        }
    }

    /// The record at `key` as this node last wrote it.
    pub fn get(&self, key: &str) -> Option<Arc<Recent>> {
        self.records.get(key)
    }

    /// Remembers `body`, just written at `key` at `version`.
    pub fn remember(&self, key: &str, body: Vec<u8>, version: Version) {
        let recent = Arc::new(Recent { body, version });
        self.records.update(key, |_| recent);
    }

    /// Forgets `key`: what this node wrote there is no longer the record.
    pub fn forget(&self, key: &str) {
        self.records.remove(key);
    }
}
