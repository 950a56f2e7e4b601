//! Property tests of the data-key status machine: whatever sequence of
//! transitions runs, and whatever usage the keys have, the rules in
//! `coffer_crypto::lifecycle` hold after every step.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use coffer_crypto::lifecycle::{LifecycleError, Outcome, new_entry};
use coffer_crypto::record::{DataKeySet, DataKeyStatus};
use coffer_crypto::{Algorithm, DataKeyEntry};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Rotate,
    Deprecate(usize),
    Inactivate(usize),
    Destroy(usize, bool),
    Import,
    Rewrap(usize),
    /// Secret versions move onto (or off) a key: usage changes outside the set.
    SetUsage(usize, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Rotate),
        2 => (0..8usize).prop_map(Op::Deprecate),
        3 => (0..8usize).prop_map(Op::Inactivate),
        3 => (0..8usize, any::<bool>()).prop_map(|(k, f)| Op::Destroy(k, f)),
        1 => Just(Op::Import),
        1 => (0..8usize).prop_map(Op::Rewrap),
        3 => (0..8usize, prop_oneof![Just(0u64), 1..5u64]).prop_map(|(k, u)| Op::SetUsage(k, u)),
    ]
}

fn first_set() -> DataKeySet {
    let mut set = DataKeySet {
        scope: "ns".to_owned(),
        keys: Vec::new(),
    };
    set.rotate(new_entry(1, Algorithm::Aes256Gcm, 7, vec![1; 60]), 1)
        .unwrap();
    set
}

/// The id of the `index`-th key (wrapping), or an id no key has.
fn pick(set: &DataKeySet, index: usize) -> u32 {
    if index == 7 {
        return 999_999;
    }
    set.keys[index % set.keys.len()].id
}

fn check_invariants(set: &DataKeySet, before: &DataKeySet) {
    let active = set
        .keys
        .iter()
        .filter(|k| k.status == DataKeyStatus::Active)
        .count();
    assert_eq!(active, 1, "exactly one active key: {set:?}");
    for key in &set.keys {
        if key.status == DataKeyStatus::Destroyed {
            assert!(key.wrapped.is_empty(), "destroyed keys hold no material");
        }
        if let Some(old) = before.by_id(key.id) {
            assert!(key.version >= old.version, "versions never go back");
            if old.status == DataKeyStatus::Destroyed {
                assert_eq!(key.status, DataKeyStatus::Destroyed, "destroyed is final");
            }
            if old != key {
                assert!(key.version > old.version, "every change bumps the version");
                assert!(key.updated_at_ms >= old.updated_at_ms);
            }
        }
    }
    for old in &before.keys {
        assert!(set.by_id(old.id).is_some(), "keys are never dropped");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn transitions_keep_the_rules(ops in proptest::collection::vec(op(), 1..40)) {
        let mut set = first_set();
        let mut usage: HashMap<u32, u64> = HashMap::new();
        let mut next_id = 2u32;
        for (step, op) in ops.into_iter().enumerate() {
            let now = 10 + step as i64;
            let before = set.clone();
            let result = match op {
                Op::Rotate => {
                    next_id += 1;
                    set.rotate(new_entry(next_id, Algorithm::Aes128Gcm, 7, vec![2; 44]), now)
                }
                Op::Deprecate(i) => set.deprecate(pick(&set, i), now),
                Op::Inactivate(i) => {
                    let id = pick(&set, i);
                    let used = usage.get(&id).copied().unwrap_or(0);
                    let result = set.inactivate(id, used, now);
                    if used > 0 {
                        prop_assert!(result.is_err() || before.by_id(id).unwrap().status == DataKeyStatus::Inactive);
                    }
                    result
                }
                Op::Destroy(i, force) => {
                    let id = pick(&set, i);
                    let used = usage.get(&id).copied().unwrap_or(0);
                    let result = set.destroy(id, used, force, now);
                    let was = before.by_id(id).map(|k| k.status);
                    if used > 0 && !force && was != Some(DataKeyStatus::Destroyed) {
                        prop_assert!(result.is_err(), "an in-use key is destroyed only when forced");
                    }
                    if was == Some(DataKeyStatus::Active) {
                        prop_assert!(result.is_err(), "the active key is never destroyed");
                    }
                    result
                }
                Op::Import => {
                    next_id += 1;
                    let mut key: DataKeyEntry = new_entry(next_id, Algorithm::Aes256Gcm, 9, vec![3; 60]);
                    key.status = DataKeyStatus::Active;
                    let result = set.import(key, now);
                    prop_assert_eq!(set.by_id(next_id).unwrap().status, DataKeyStatus::Deprecated);
                    result
                }
                Op::Rewrap(i) => {
                    let id = pick(&set, i);
                    set.rewrap(id, 8, vec![4; 60], now).map(|()| Outcome::Changed)
                }
                Op::SetUsage(i, n) => {
                    usage.insert(pick(&set, i), n);
                    Ok(Outcome::Unchanged)
                }
            };
            match result {
                Ok(Outcome::Unchanged) => prop_assert_eq!(&set, &before),
                Ok(Outcome::Changed) => prop_assert_ne!(&set, &before),
                Err(_) => prop_assert_eq!(&set, &before, "a refused transition changes nothing"),
            }
            check_invariants(&set, &before);
        }
    }
}

#[test]
fn refusals_say_why() {
    let mut set = first_set();
    set.rotate(new_entry(2, Algorithm::Aes256Gcm, 7, vec![1; 60]), 5)
        .unwrap();
    assert_eq!(
        set.inactivate(1, 3, 6),
        Err(LifecycleError::InUse { id: 1, usage: 3 })
    );
    let refused = set.destroy(2, 0, true, 6).unwrap_err().to_string();
    assert!(refused.contains("it is active"), "{refused}");
    assert_eq!(set.destroy(1, 3, true, 7), Ok(Outcome::Changed));
    assert_eq!(
        set.deprecate(1, 8).unwrap_err().to_string(),
        "cannot deprecate data key 1: it is destroyed; a destroyed key is gone for good"
    );
    assert_eq!(
        set.rotate(new_entry(2, Algorithm::Aes256Gcm, 7, vec![]), 9),
        Err(LifecycleError::DuplicateKey(2))
    );
}

#[test]
fn no_sequence_of_rotations_and_destroys_outgrows_the_record() {
    use coffer_crypto::lifecycle::{MAX_DESTROYED_KEYS, MAX_LIVE_KEYS};
    let mut set = first_set();
    let mut next_id = 2u32;
    let mut now = 2i64;
    // Rotate until refused: the set stops at the cap, never past it.
    let refused = loop {
        now += 1;
        let key = new_entry(next_id, Algorithm::Aes256Gcm, 7, vec![1; 60]);
        next_id += 1;
        if let Err(error) = set.rotate(key, now) {
            break error;
        }
    };
    assert_eq!(
        refused,
        LifecycleError::TooManyKeys {
            live: MAX_LIVE_KEYS
        }
    );
    assert_eq!(set.live().count(), MAX_LIVE_KEYS);
    // Destroy and rotate over and over: destroyed entries stay bounded too.
    for _ in 0..(MAX_DESTROYED_KEYS + 500) {
        now += 1;
        let retired = set
            .keys
            .iter()
            .find(|k| k.status == DataKeyStatus::Deprecated)
            .unwrap()
            .id;
        set.destroy(retired, 0, false, now).unwrap();
        let key = new_entry(next_id, Algorithm::Aes256Gcm, 7, vec![1; 60]);
        next_id += 1;
        set.rotate(key, now).unwrap();
    }
    let destroyed = set
        .keys
        .iter()
        .filter(|k| k.status == DataKeyStatus::Destroyed)
        .count();
    assert_eq!(destroyed, MAX_DESTROYED_KEYS);
    assert!(set.keys.len() <= coffer_crypto::record::MAX_ENTRIES);
    assert_eq!(DataKeySet::decode(&set.encode()).unwrap(), set);
    // The most recently destroyed key is still remembered as destroyed.
    let newest = set
        .keys
        .iter()
        .filter(|k| k.status == DataKeyStatus::Destroyed)
        .max_by_key(|k| k.updated_at_ms)
        .unwrap();
    assert_eq!(newest.updated_at_ms, now);
}
