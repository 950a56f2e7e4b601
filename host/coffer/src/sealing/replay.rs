//! Sealed requests are good once. A sealed body carries its timestamp
//! (bound into the seal), and one outside the window around the server's
//! clock is refused as stale; inside it, each encapsulated key (`enc`,
//! fresh randomness per seal) is remembered, and a second request with the
//! same one is refused as a replay.
//!
//! The memory is two generations of encapsulated keys, each spanning twice
//! the window: a key is kept at least that long after it is first seen,
//! and by then its timestamp is stale. Each generation holds at most
//! `capacity` keys; beyond that, sealed requests are refused (retry later)
//! rather than anything forgotten early — a replay never gets through
//! because the server was busy.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use coffer_crypto::sealing::KEY_LEN;

/// Why a sealed request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its timestamp is outside the window.
    Stale,
    /// Its encapsulated key was seen within the window.
    Replayed,
    /// The memory of the window is full.
    Busy,
}

/// What requests were seen within the window.
pub struct ReplayGuard {
    window: Duration,
    capacity: usize,
    seen: Mutex<Generations>,
}

struct Generations {
    current: HashSet<[u8; KEY_LEN]>,
    previous: HashSet<[u8; KEY_LEN]>,
    started: Instant,
}

impl ReplayGuard {
    pub fn new(window: Duration, capacity: usize) -> ReplayGuard {
        ReplayGuard {
            window,
            capacity,
            seen: Mutex::new(Generations {
                current: HashSet::new(),
                previous: HashSet::new(),
                started: Instant::now(),
            }),
        }
    }

    /// Checks `timestamp` (seconds since the epoch) against `now_ms`.
    pub fn check_time(&self, timestamp: u64, now_ms: i64) -> Result<(), Refusal> {
        let sealed_ms = i128::from(timestamp) * 1000;
        let drift = (sealed_ms - i128::from(now_ms)).unsigned_abs();
        if drift > self.window.as_millis() {
            return Err(Refusal::Stale);
        }
        Ok(())
    }

    /// Admits `enc` once: refused if it was seen within the window.
    pub fn admit(&self, enc: &[u8; KEY_LEN]) -> Result<(), Refusal> {
        self.admit_at(enc, Instant::now())
    }

    fn admit_at(&self, enc: &[u8; KEY_LEN], now: Instant) -> Result<(), Refusal> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let span = self.window.saturating_mul(2);
        if now.saturating_duration_since(seen.started) >= span {
            let stale = std::mem::take(&mut seen.current);
            seen.previous = if now.saturating_duration_since(seen.started) >= span * 2 {
                HashSet::new()
            } else {
                stale
            };
            seen.started = now;
        }
        if seen.current.contains(enc) || seen.previous.contains(enc) {
            return Err(Refusal::Replayed);
        }
        if seen.current.len() >= self.capacity {
            return Err(Refusal::Busy);
        }
        seen.current.insert(*enc);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    #[test]
    fn a_timestamp_is_accepted_within_the_window_either_way() {
        let guard = ReplayGuard::new(WINDOW, 10);
        let now_ms = 1_765_000_000_000;
        assert_eq!(guard.check_time(1_765_000_000, now_ms), Ok(()));
        assert_eq!(guard.check_time(1_765_000_060, now_ms), Ok(()));
        assert_eq!(guard.check_time(1_764_999_940, now_ms), Ok(()));
        assert_eq!(guard.check_time(1_765_000_061, now_ms), Err(Refusal::Stale));
        assert_eq!(guard.check_time(1_764_999_939, now_ms), Err(Refusal::Stale));
        assert_eq!(guard.check_time(u64::MAX, now_ms), Err(Refusal::Stale));
        assert_eq!(guard.check_time(0, now_ms), Err(Refusal::Stale));
    }

    #[test]
    fn an_enc_is_admitted_once_for_as_long_as_its_timestamp_holds() {
        let guard = ReplayGuard::new(WINDOW, 10);
        let start = Instant::now();
        let enc = [7u8; KEY_LEN];
        assert_eq!(guard.admit_at(&enc, start), Ok(()));
        assert_eq!(guard.admit_at(&enc, start), Err(Refusal::Replayed));
        // Still remembered after a generation turns over...
        let later = start + WINDOW * 3;
        assert_eq!(guard.admit_at(&enc, later), Err(Refusal::Replayed));
        // ...and forgotten only once two spans have passed.
        let much_later = later + WINDOW * 4;
        assert_eq!(guard.admit_at(&enc, much_later), Ok(()));
    }

    #[test]
    fn a_full_memory_refuses_rather_than_forgets() {
        let guard = ReplayGuard::new(WINDOW, 2);
        let now = Instant::now();
        assert_eq!(guard.admit_at(&[1; KEY_LEN], now), Ok(()));
        assert_eq!(guard.admit_at(&[2; KEY_LEN], now), Ok(()));
        assert_eq!(guard.admit_at(&[3; KEY_LEN], now), Err(Refusal::Busy));
        assert_eq!(
            guard.admit_at(&[1; KEY_LEN], now),
            Err(Refusal::Replayed),
            "what was admitted stays remembered"
        );
    }
}
