//! The key-management lease: one storage record naming the node that may
//! change keys and run the janitor, taken and renewed with compare-and-set
//! and taken over by another node once it expires.
//!
//! The lease keeps nodes from doing the same work twice; correctness never
//! rests on it alone. Every key change is itself a compare-and-set of the
//! namespace's key record, so even a node that lost its lease mid-change
//! cannot produce two Active keys.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::{Store, Version, layout};

/// Pause between attempts while another node holds the lease.
const RETRY: Duration = Duration::from_millis(100);

/// Who holds the lease, until when.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRecord {
    holder: String,
    expires_at_ms: i64,
}

/// This node's handle on the lease.
pub struct Lease {
    store: std::sync::Arc<Store>,
    node: String,
    ttl: Duration,
    /// Serialises this node's own key work (API calls and the janitor).
    local: tokio::sync::Mutex<()>,
    /// Guards alive now (0 or 1, as `local` allows one).
    held: AtomicUsize,
}

/// Proof of holding the lease; renew it during long work, release it after.
pub struct LeaseGuard<'a> {
    lease: &'a Lease,
    _local: tokio::sync::MutexGuard<'a, ()>,
    version: Version,
    renewed: Instant,
}

impl Lease {
    pub fn new(store: std::sync::Arc<Store>, node: String, ttl: Duration) -> Lease {
        Lease {
            store,
            node,
            ttl,
            local: tokio::sync::Mutex::new(()),
            held: AtomicUsize::new(0),
        }
    }

    /// Whether this node holds the lease now (a guard is alive).
    pub fn held(&self) -> bool {
        self.held.load(Ordering::Relaxed) > 0
    }

    /// This node's name in the lease record.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Takes the lease, waiting up to `wait` while another node holds it.
    pub async fn acquire(&self, wait: Duration) -> Result<LeaseGuard<'_>> {
        let local = self.local.lock().await;
        self.take(local, wait).await
    }

    /// Takes the lease only if it is free now (for the janitor, which
    /// simply tries again next cycle).
    pub async fn try_acquire(&self) -> Result<Option<LeaseGuard<'_>>> {
        let Ok(local) = self.local.try_lock() else {
            return Ok(None);
        };
        match self.take(local, Duration::ZERO).await {
            Ok(guard) => Ok(Some(guard)),
            Err(Error::Conflict(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn take<'a>(
        &'a self,
        local: tokio::sync::MutexGuard<'a, ()>,
        wait: Duration,
    ) -> Result<LeaseGuard<'a>> {
        let deadline = Instant::now() + wait;
        loop {
            let now = now_ms();
            let current = self.store.read::<LeaseRecord>(layout::LEASE).await?;
            let (base, busy) = match current {
                None => (None, None),
                Some(stored) => {
                    let held = stored.record;
                    let busy =
                        (held.holder != self.node && held.expires_at_ms > now).then_some(held);
                    (Some(stored.version), busy)
                }
            };
            if let Some(busy) = busy {
                if Instant::now() >= deadline {
                    return Err(Error::Conflict(format!(
                        "key management is running on node {} (lease held for {} ms more); retry later",
                        busy.holder,
                        busy.expires_at_ms - now
                    )));
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
            match self.write(base).await {
                Ok(version) => {
                    self.held.fetch_add(1, Ordering::Relaxed);
                    return Ok(LeaseGuard {
                        lease: self,
                        _local: local,
                        version,
                        renewed: Instant::now(),
                    });
                }
                Err(Error::Conflict(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(RETRY).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn write(&self, base: Option<Version>) -> Result<Version> {
        self.put(base, now_ms() + millis(self.ttl)).await
    }

    async fn put(&self, base: Option<Version>, expires_at_ms: i64) -> Result<Version> {
        let record = LeaseRecord {
            holder: self.node.clone(),
            expires_at_ms,
        };
        self.store
            .put(layout::LEASE, &record, base)
            .await?
            .ok_or_else(|| Error::Conflict("another node took the key-management lease".to_owned()))
    }
}

impl LeaseGuard<'_> {
    /// Extends the lease once a third of its time has passed; fails if
    /// another node took it meanwhile, so the caller stops its work.
    pub async fn renew_if_due(&mut self) -> Result<()> {
        if self.renewed.elapsed() < self.lease.ttl / 3 {
            return Ok(());
        }
        self.version = self.lease.write(Some(self.version)).await?;
        self.renewed = Instant::now();
        Ok(())
    }

    /// Gives the lease up so another node need not wait for it to expire.
    pub async fn release(self) {
        if let Err(error) = self.lease.put(Some(self.version), 0).await {
            tracing::warn!(%error, "could not release the key-management lease; it expires by itself");
        }
    }
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        self.lease.held.fetch_sub(1, Ordering::Relaxed);
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
