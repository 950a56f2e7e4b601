//! Throttling of failed authentication, per client address.
//!
//! Every request without a valid token costs a token lookup and an audit
//! record. An address that keeps failing spends a bucket of [`BURST`]
//! failures, refilled at [`REFILL_PER_SECOND`]; once it is empty, requests
//! from that address that do not carry a token already known to be good
//! are dropped with 429 before any lookup, and are not audited one by one:
//! the trail gets one summary per address at most every [`REPORT_EVERY`].
//! Requests with good tokens are never throttled. IPv6 addresses count per
//! /64, which is what one client usually holds.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures an address may have in a burst.
pub const BURST: f64 = 20.0;
/// Failures an address regains per second.
pub const REFILL_PER_SECOND: f64 = 2.0;
/// Least time between two audit summaries of one address's dropped requests.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Addresses tracked at once; the least recently seen are forgotten.
const TRACKED: u64 = 100_000;

struct Bucket {
    left: f64,
    refilled: Instant,
    dropped: u64,
    reported: Option<Instant>,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let gained = now.duration_since(self.refilled).as_secs_f64() * REFILL_PER_SECOND;
        self.left = (self.left + gained).min(BURST);
        self.refilled = now;
    }
}

/// Failure buckets of recently seen addresses.
pub struct Throttle {
    buckets: moka::sync::Cache<IpAddr, Arc<Mutex<Bucket>>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            buckets: moka::sync::Cache::builder()
                .max_capacity(TRACKED)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }
}

impl Throttle {
    /// Whether `address` has spent its failures: its requests without a
    /// known-good token are to be dropped.
    pub fn limited(&self, address: IpAddr) -> bool {
        self.buckets.get(&client(address)).is_some_and(|bucket| {
            let mut bucket = bucket.lock().unwrap_or_else(|p| p.into_inner());
            bucket.refill(Instant::now());
            bucket.left < 1.0
        })
    }

    /// Counts a request from `address` as dropped. Returns how many were
    /// dropped since the last summary when a summary is due.
    pub fn dropped(&self, address: IpAddr) -> Option<u64> {
        let bucket = self.buckets.get(&client(address))?;
        let mut bucket = bucket.lock().unwrap_or_else(|p| p.into_inner());
        bucket.dropped += 1;
        let now = Instant::now();
        let due = bucket
            .reported
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY);
        if !due {
            return None;
        }
        bucket.reported = Some(now);
        Some(std::mem::take(&mut bucket.dropped))
    }

    /// Counts a failed authentication from `address`.
    pub fn failed(&self, address: IpAddr) {
        let bucket = self.buckets.get_with(client(address), || {
            Arc::new(Mutex::new(Bucket {
                left: BURST,
                refilled: Instant::now(),
                dropped: 0,
                reported: None,
            }))
        });
        let mut bucket = bucket.lock().unwrap_or_else(|p| p.into_inner());
        bucket.refill(Instant::now());
        bucket.left = (bucket.left - 1.0).max(0.0);
    }
}

/// The client an address belongs to: itself, or its /64 for IPv6.
fn client(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_that_keeps_failing_is_dropped_and_reported_once() {
        let throttle = Throttle::default();
        let address = IpAddr::from([192, 0, 2, 7]);
        for _ in 0..BURST as usize {
            assert!(!throttle.limited(address));
            throttle.failed(address);
        }
        assert!(throttle.limited(address));
        assert_eq!(throttle.dropped(address), Some(1));
        for _ in 0..10 {
            assert_eq!(throttle.dropped(address), None);
        }
        assert!(!throttle.limited(IpAddr::from([192, 0, 2, 8])));
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let a = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
        let b = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0xffff, 1]);
        assert_eq!(client(a), client(b));
    }
}
