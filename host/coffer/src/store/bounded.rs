//! A map of what a node remembers about storage keys, bounded in weight
//! (entries, or bytes): the entries used least recently are forgotten
//! first. It keeps two generations per shard: entries go into the current
//! one, and an entry used from the previous one moves back into the
//! current one; when the current one holds half the weight allowed, the
//! previous one is dropped and the current one takes its place. So at
//! most the bound is held, and at least the most recently used half of it.
//!
//! Every write of a secret looks it up and updates it, so it is a plain
//! map behind a lock per shard: a general-purpose cache costs several
//! times as much per use.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

/// Shards the map is split in, each with a lock of its own.
const SHARDS: usize = 16;

/// What an entry weighs against the bound.
pub trait Weigh {
    fn weight(&self, key: &str) -> u64;
}

pub struct BoundedMap<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    hasher: RandomState,
}

struct Shard<V> {
    current: HashMap<String, V>,
    previous: HashMap<String, V>,
    /// The weight of `current`.
    weight: u64,
    /// The weight at which `current` becomes the previous generation.
    turnover: u64,
}

impl<V: Weigh + Clone> BoundedMap<V> {
    /// A map holding at most `bound` of weight.
    pub fn new(bound: u64) -> BoundedMap<V> {
        let turnover = (bound / SHARDS as u64 / 2).max(1);
        BoundedMap {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        current: HashMap::new(),
                        previous: HashMap::new(),
                        weight: 0,
                        turnover,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// The entry of `key`, if it is remembered.
    pub fn get(&self, key: &str) -> Option<V> {
        let mut shard = self.shard(key);
        if let Some(value) = shard.current.get(key) {
            return Some(value.clone());
        }
        let value = shard.previous.remove(key)?;
        shard.put(key.to_owned(), value.clone());
        Some(value)
    }

    /// Sets the entry of `key` to what `update` makes of the one there.
    pub fn update(&self, key: &str, update: impl FnOnce(Option<&V>) -> V) {
        let mut shard = self.shard(key);
        let value = update(shard.current.get(key).or_else(|| shard.previous.get(key)));
        shard.previous.remove(key);
        shard.put(key.to_owned(), value);
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &str) {
        let mut shard = self.shard(key);
        if let Some(value) = shard.current.remove(key) {
            shard.weight = shard.weight.saturating_sub(value.weight(key));
        }
        shard.previous.remove(key);
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard<V>> {
        let index = self.hasher.hash_one(key) as usize % self.shards.len();
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<V: Weigh> Shard<V> {
    /// Puts `value` in the current generation (which `key` is not in the
    /// previous one of), turning generations over when it is full.
    fn put(&mut self, key: String, value: V) {
        let added = value.weight(&key);
        if let Some(replaced) = self.current.insert(key.clone(), value) {
            self.weight = self.weight.saturating_sub(replaced.weight(&key));
        }
        self.weight += added;
        if self.weight >= self.turnover {
            self.previous = std::mem::take(&mut self.current);
            self.weight = 0;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Counted(u32);

    impl Weigh for Counted {
        fn weight(&self, _: &str) -> u64 {
            1
        }
    }

    #[test]
    fn entries_are_kept_updated_and_removed() {
        let map: BoundedMap<Counted> = BoundedMap::new(1000);
        assert_eq!(map.get("a"), None);
        map.update("a", |old| Counted(old.map_or(1, |c| c.0 + 1)));
        map.update("a", |old| Counted(old.map_or(1, |c| c.0 + 1)));
        assert_eq!(map.get("a"), Some(Counted(2)));
        map.remove("a");
        assert_eq!(map.get("a"), None);
    }

    #[test]
    fn the_weight_held_is_bounded_and_recent_entries_stay() {
        let bound = 64 * SHARDS as u64;
        let map = BoundedMap::new(bound);
        for i in 0..100_000 {
            map.update(&format!("k{i}"), |_| Counted(i));
            // One key kept in use stays, whatever else comes and goes.
            assert_eq!(map.get("k0"), Some(Counted(0)));
        }
        let held: usize = map
            .shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap();
                s.current.len() + s.previous.len()
            })
            .sum();
        assert!(held as u64 <= bound, "{held} held");
        assert!(held as u64 >= bound / 4, "{held} held");
        assert_eq!(map.get("k99999"), Some(Counted(99_999)));
    }
}
