//! The janitor: a background task that, on the node holding the
//! key-management lease, finishes what key rotations leave to do.
//!
//! Each cycle (every `interval`) it
//! 1. reads the keyset from the keyring (another node may have rotated it)
//!    and re-wraps data keys and system keys still under an old KEK (so a
//!    KEK rotation cut short by a crash completes by itself), then
//! 2. walks the namespaces that have Deprecated data keys and re-wraps the
//!    secret keys still under them onto the Active key, at most `limit`
//!    secrets per cycle, continuing next cycle where it stopped.
//!
//! Values are never re-encrypted here and no plaintext value is handled.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use coffer_crypto::record::DataKeyStatus;

use super::{KeyAdmin, Lease, LeaseGuard};
use crate::clock::now_ms;
use crate::error::Result;
use crate::secrets::{Mode, Moved};

/// Secrets per storage page the janitor asks for.
const PAGE: u32 = 1000;

/// `[janitor]` settings.
#[derive(Clone, Copy, Debug)]
pub struct JanitorSettings {
    pub enabled: bool,
    pub interval: Duration,
    /// Most secrets looked at per cycle.
    pub limit: u32,
}

/// What one cycle did.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct CycleReport {
    /// False when another node (or this node's own key work) held the lease.
    pub ran: bool,
    pub data_keys_rewrapped: u64,
    pub moved: Moved,
}

/// Where the janitor stands in one namespace.
#[derive(Default)]
struct Cursor {
    /// Continue after this secret name.
    after: Option<String>,
    /// A whole pass found nothing left under retired keys for the key
    /// record at this revision: skip the namespace until it changes.
    clean_at: Option<u64>,
    /// Versions moved, and secrets that failed, so far in the current pass.
    pass_work: u64,
    /// When the current pass began.
    pass_started_ms: i64,
}

pub struct Janitor {
    admin: Arc<KeyAdmin>,
    lease: Arc<Lease>,
    settings: JanitorSettings,
    cursors: tokio::sync::Mutex<HashMap<String, Cursor>>,
    counts: Counts,
}

/// What the janitor did since this node started, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JanitorCounts {
    /// Cycles that ran under the lease.
    pub cycles: u64,
    /// Cycles left to another node holding the lease.
    pub skipped: u64,
    pub failed: u64,
    pub data_keys_rewrapped: u64,
    pub versions_moved: u64,
    /// Versions or records that could not be moved (left for later).
    pub left_behind: u64,
}

#[derive(Default)]
struct Counts {
    cycles: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
    data_keys_rewrapped: AtomicU64,
    versions_moved: AtomicU64,
    left_behind: AtomicU64,
}

impl Janitor {
    pub fn new(admin: Arc<KeyAdmin>, lease: Arc<Lease>, settings: JanitorSettings) -> Janitor {
        Janitor {
            admin,
            lease,
            settings,
            cursors: tokio::sync::Mutex::new(HashMap::new()),
            counts: Counts::default(),
        }
    }

    /// What the janitor did since this node started.
    pub fn counts(&self) -> JanitorCounts {
        let c = &self.counts;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        JanitorCounts {
            cycles: get(&c.cycles),
            skipped: get(&c.skipped),
            failed: get(&c.failed),
            data_keys_rewrapped: get(&c.data_keys_rewrapped),
            versions_moved: get(&c.versions_moved),
            left_behind: get(&c.left_behind),
        }
    }

    /// Runs cycles every `interval` until the task is dropped.
    pub fn spawn(self: Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if !self.settings.enabled {
            tracing::info!("the key janitor is disabled ([janitor] enabled = false)");
            return None;
        }
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(self.settings.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match self.cycle().await {
                    Ok(report) if report.data_keys_rewrapped + report.moved.versions > 0 => {
                        tracing::info!(
                            data_keys = report.data_keys_rewrapped,
                            versions = report.moved.versions,
                            secrets = report.moved.records,
                            "janitor moved keys onto the active keys"
                        );
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "janitor cycle failed; retrying next cycle")
                    }
                }
            }
        }))
    }

    /// One cycle, if this node can take the lease now.
    pub async fn cycle(&self) -> Result<CycleReport> {
        let c = &self.counts;
        let add = |n: &AtomicU64, by: u64| n.fetch_add(by, Ordering::Relaxed);
        let Some(mut guard) = self.lease.try_acquire().await.inspect_err(|_| {
            add(&c.failed, 1);
        })?
        else {
            add(&c.skipped, 1);
            return Ok(CycleReport::default());
        };
        let result = self.cycle_leased(&mut guard).await;
        guard.release().await;
        match &result {
            Ok(report) => {
                add(&c.cycles, 1);
                add(&c.data_keys_rewrapped, report.data_keys_rewrapped);
                add(&c.versions_moved, report.moved.versions);
                add(
                    &c.left_behind,
                    report.moved.unreadable + report.moved.failed,
                );
            }
            Err(_) => {
                add(&c.failed, 1);
            }
        }
        result
    }

    async fn cycle_leased(&self, guard: &mut LeaseGuard<'_>) -> Result<CycleReport> {
        let keys = self.admin.data_keys().clone();
        let kek = self.admin.sync_kek().await?;
        let mut report = CycleReport {
            ran: true,
            ..CycleReport::default()
        };
        let kek_report = self.admin.rewrap_all(&kek, guard).await?;
        report.data_keys_rewrapped =
            kek_report.data_keys_rewrapped + kek_report.system_keys_rewrapped;

        let mut budget = self.settings.limit;
        let mut cursors = self.cursors.lock().await;
        let mut scopes = keys.scan_scopes();
        'scopes: while let Some(page) = scopes.next_page().await? {
            for scope in &page {
                let Some((set, revision)) = keys.load(scope).await? else {
                    continue;
                };
                // No node seals with a Deprecated key of this set after this.
                let sealing_stopped_by = set
                    .keys
                    .iter()
                    .filter(|k| k.status == DataKeyStatus::Deprecated)
                    .map(|k| self.admin.sealed_with_until(k))
                    .max();
                let Some(sealing_stopped_by) = sealing_stopped_by else {
                    continue;
                };
                let cursor = cursors.entry(scope.clone()).or_default();
                if cursor.clean_at == Some(revision) {
                    continue;
                }
                while budget > 0 {
                    guard.renew_if_due().await?;
                    if cursor.after.is_none() {
                        cursor.pass_work = 0;
                        cursor.pass_started_ms = now_ms();
                    }
                    let page = self
                        .admin
                        .rewrap_page(
                            scope,
                            cursor.after.as_deref(),
                            budget.min(PAGE),
                            Mode::Rewrap,
                        )
                        .await?;
                    budget = budget.saturating_sub(
                        u32::try_from(page.moved.records).unwrap_or(u32::MAX).max(1),
                    );
                    report.moved.add(page.moved);
                    cursor.pass_work += page.moved.versions + page.moved.failed;
                    cursor.after = page.next;
                    if cursor.after.is_none() {
                        // Only a whole pass with nothing to move and no
                        // failures is clean, and only if it began after every node had
                        // stopped sealing with the retired keys.
                        if cursor.pass_work == 0 && sealing_stopped_by <= cursor.pass_started_ms {
                            cursor.clean_at = Some(revision);
                        }
                        break;
                    }
                }
                if budget == 0 {
                    break 'scopes;
                }
            }
        }
        self.admin.shred_if_pending().await;
        Ok(report)
    }
}
