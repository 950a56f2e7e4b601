//! The ring of server transport keys: which keys exist, which one clients
//! seal to now (the newest), and until when a replaced one still opens
//! what was sealed to it. One sealed, tracked record holds the ring, so
//! storage can neither roll a retired key back in nor drop the current
//! one unnoticed; each key's private half is a system key of its own
//! (`transport-<kid>`), wrapped by the KEK and re-wrapped when it rotates.

use serde::{Deserialize, Serialize};

/// One transport key in the ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingEntry {
    pub kid: u32,
    pub created_at_ms: i64,
    /// When the key stops being the one clients seal to: the first
    /// request for the key after that rotates it.
    pub expires_at_ms: i64,
    /// Set once the key is replaced: until then it still opens requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_at_ms: Option<i64>,
}

/// The ring, oldest key first; the last one is current.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportRing {
    pub keys: Vec<RingEntry>,
}

/// What a rotation did to the ring.
#[derive(Debug, PartialEq, Eq)]
pub struct Rotated {
    /// The new current key.
    pub kid: u32,
    /// Keys past their grace, dropped from the ring: their private halves
    /// can go.
    pub dropped: Vec<u32>,
}

/// The name of the system key holding transport key `kid`'s private half.
pub fn system_key_name(kid: u32) -> String {
    format!("transport-{kid}")
}

impl TransportRing {
    /// The key clients seal to now.
    pub fn current(&self) -> Option<&RingEntry> {
        self.keys.last()
    }

    /// Whether the current key has reached its expiry (or there is none).
    pub fn due(&self, now_ms: i64) -> bool {
        self.current().is_none_or(|key| key.expires_at_ms <= now_ms)
    }

    /// The key `kid`, if it still opens requests at `now_ms`.
    pub fn accepted(&self, kid: u32, now_ms: i64) -> Option<&RingEntry> {
        self.keys
            .iter()
            .find(|key| key.kid == kid)
            .filter(|key| key.retire_at_ms.is_none_or(|retire| retire > now_ms))
    }

    /// Makes a new key current, lifetime `lifetime_ms`; the one it replaces
    /// stays accepted for `grace_ms`. Keys whose grace has run out leave.
    pub fn rotate(&mut self, now_ms: i64, lifetime_ms: i64, grace_ms: i64) -> Rotated {
        let kid = self
            .keys
            .iter()
            .map(|key| key.kid)
            .max()
            .map_or(1, |kid| kid.saturating_add(1));
        if let Some(replaced) = self.keys.last_mut() {
            replaced.retire_at_ms = Some(now_ms.saturating_add(grace_ms));
        }
        let mut dropped = Vec::new();
        self.keys.retain(|key| {
            let gone = key.retire_at_ms.is_some_and(|retire| retire <= now_ms);
            if gone {
                dropped.push(key.kid);
            }
            !gone
        });
        self.keys.push(RingEntry {
            kid,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(lifetime_ms),
            retire_at_ms: None,
        });
        Rotated { kid, dropped }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_new_ring_is_due_and_its_first_key_is_one() {
        let mut ring = TransportRing::default();
        assert!(ring.due(0));
        let rotated = ring.rotate(1_000, 30 * DAY, DAY);
        assert_eq!(
            rotated,
            Rotated {
                kid: 1,
                dropped: vec![]
            }
        );
        assert!(!ring.due(1_000 + 30 * DAY - 1));
        assert!(ring.due(1_000 + 30 * DAY));
    }

    #[test]
    fn a_replaced_key_is_accepted_through_its_grace_then_dropped() {
        let mut ring = TransportRing::default();
        ring.rotate(0, 30 * DAY, DAY);
        let rotated = ring.rotate(10 * DAY, 30 * DAY, DAY);
        assert_eq!(rotated.kid, 2);
        assert_eq!(ring.current().unwrap().kid, 2);
        assert!(ring.accepted(1, 11 * DAY - 1).is_some());
        assert!(ring.accepted(1, 11 * DAY).is_none());
        assert!(ring.accepted(3, 0).is_none());

        let rotated = ring.rotate(12 * DAY, 30 * DAY, DAY);
        assert_eq!(
            rotated,
            Rotated {
                kid: 3,
                dropped: vec![1]
            }
        );
        let kids: Vec<u32> = ring.keys.iter().map(|key| key.kid).collect();
        assert_eq!(kids, vec![2, 3]);
    }

    #[test]
    fn each_replaced_key_keeps_its_own_grace() {
        let mut ring = TransportRing::default();
        ring.rotate(0, 30 * DAY, DAY);
        ring.rotate(DAY / 2, 30 * DAY, DAY);
        ring.rotate(DAY - 1, 30 * DAY, 5 * DAY);
        assert_eq!(ring.keys[0].retire_at_ms, Some(DAY / 2 + DAY));
        assert_eq!(ring.keys[1].retire_at_ms, Some(DAY - 1 + 5 * DAY));
        assert_eq!(ring.keys[2].retire_at_ms, None);
    }
}
