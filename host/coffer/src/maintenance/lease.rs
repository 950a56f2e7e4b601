//! The key-management lease: one storage record naming the node that may
//! change keys and run the janitor, taken and renewed with compare-and-set
//! and taken over by another node once it expires.
//!
//! The lease keeps nodes from doing the same work twice; correctness never
//! rests on it alone. Every key change is itself a compare-and-set of the
//! namespace's key record, so even a node that lost its lease mid-change
//! cannot produce two Active keys.

use std::time::{Duration, Instant};

use coffer_runtime::{Expected, Storage};
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::edit::is_conflict;
use crate::error::{Error, Result};

const RECORD: &str = "sys/leases/keys";
/// Pause between attempts while another node holds the lease.
const RETRY: Duration = Duration::from_millis(100);

#[derive(Serialize, Deserialize)]
struct LeaseRecord {
    holder: String,
    expires_at_ms: i64,
}

/// This node's handle on the lease.
pub struct Lease {
    storage: std::sync::Arc<dyn Storage>,
    node: String,
    ttl: Duration,
    /// Serialises this node's own key work (API calls and the janitor).
    local: tokio::sync::Mutex<()>,
}

/// Proof of holding the lease; renew it during long work, release it after.
pub struct LeaseGuard<'a> {
    lease: &'a Lease,
    _local: tokio::sync::MutexGuard<'a, ()>,
    revision: u64,
    renewed: Instant,
}

impl Lease {
    pub fn new(storage: std::sync::Arc<dyn Storage>, node: String, ttl: Duration) -> Lease {
        Lease {
            storage,
            node,
            ttl,
            local: tokio::sync::Mutex::new(()),
        }
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
            let current = self.storage.get(RECORD).await?;
            let (expected, busy) = match &current {
                None => (Expected::Absent, None),
                Some(entry) => {
                    let held: Option<LeaseRecord> = serde_json::from_slice(&entry.value).ok();
                    let busy = held.filter(|h| h.holder != self.node && h.expires_at_ms > now);
                    (Expected::Revision(entry.revision), busy)
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
            match self.write(expected).await {
                Ok(revision) => {
                    return Ok(LeaseGuard {
                        lease: self,
                        _local: local,
                        revision,
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

    async fn write(&self, expected: Expected) -> Result<u64> {
        self.put(expected, now_ms() + millis(self.ttl)).await
    }

    async fn put(&self, expected: Expected, expires_at_ms: i64) -> Result<u64> {
        let record = LeaseRecord {
            holder: self.node.clone(),
            expires_at_ms,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?;
        match self.storage.put(RECORD, &bytes, expected).await {
            Ok(revision) => Ok(revision),
            Err(error) if is_conflict(&error) => Err(Error::Conflict(
                "another node took the key-management lease".to_owned(),
            )),
            Err(error) => Err(error.into()),
        }
    }
}

impl LeaseGuard<'_> {
    /// Extends the lease once a third of its time has passed; fails if
    /// another node took it meanwhile, so the caller stops its work.
    pub async fn renew_if_due(&mut self) -> Result<()> {
        if self.renewed.elapsed() < self.lease.ttl / 3 {
            return Ok(());
        }
        self.revision = self.lease.write(Expected::Revision(self.revision)).await?;
        self.renewed = Instant::now();
        Ok(())
    }

    /// Gives the lease up so another node need not wait for it to expire.
    pub async fn release(self) {
        if let Err(error) = self.lease.put(Expected::Revision(self.revision), 0).await {
            tracing::warn!(%error, "could not release the key-management lease; it expires by itself");
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
