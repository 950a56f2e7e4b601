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

/// Largest record remembered: one bigger would push out many others, so
/// its writes read it first.
const MAX_RECENT_BODY: usize = (RECENT_BYTES / 64) as usize;

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

    /// Remembers `body`, just written at `key` at `version` (or forgets
    /// `key`, when the body is too large to keep).
    pub fn remember(&self, key: &str, body: Vec<u8>, version: Version) {
        if body.len() > MAX_RECENT_BODY {
            self.forget(key);
            return;
        }
        let recent = Arc::new(Recent { body, version });
        self.records.update(key, |_| recent);
    }

    /// Forgets `key`: what this node wrote there is no longer the record.
    pub fn forget(&self, key: &str) {
        self.records.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSION: Version = Version {
        revision: 1,
        generation: 1,
    };

    #[test]
    fn a_record_too_large_to_keep_is_forgotten() {
        let recent = RecentWrites::new();
        recent.remember("k", vec![0; 16], VERSION);
        assert!(recent.get("k").is_some());
        recent.remember("k", vec![0; MAX_RECENT_BODY + 1], VERSION);
        assert!(recent.get("k").is_none());
    }
}
