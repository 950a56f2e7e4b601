//! Random numbers from the host's random source, for what a backend needs
//! to be unpredictable but not secret — a first revision, a jitter. Never
//! for key material: the host makes every key.

use std::hash::{BuildHasher, Hasher};

/// A random `u64`.
pub fn u64() -> u64 {
    // Each RandomState is keyed from the host's random source (once per
    // instance, then stepped): its hash of nothing is unpredictable.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
