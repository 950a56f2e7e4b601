//! `coffer reencrypt`: moves a namespace's secrets onto its Active data key
//! in batches. Progress is kept in storage after every batch, so a pass
//! interrupted (client gone, server killed) continues where it stopped; a
//! pass saved under an Active key that has since been rotated starts over,
//! since the secrets it already moved are under a retired key again.

use serde::{Deserialize, Serialize};

use super::KeyAdmin;
use crate::error::{Error, Result};
use crate::secrets::{Mode, Moved, check_namespace};
use crate::store::layout;

/// Most secrets one batch handles.
pub const MAX_BATCH: u32 = 1000;

/// One batch of a pass.
#[derive(Clone, Copy, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReencryptRequest {
    /// Re-encrypt values under fresh secret keys, not just re-wrap.
    #[serde(default)]
    pub full: bool,
    /// Secrets in this batch (at most and by default 1000).
    pub limit: Option<u32>,
    /// Start over instead of continuing a saved pass.
    #[serde(default)]
    pub restart: bool,
}

/// Where a pass stands after a batch.
#[derive(Clone, Debug, Serialize)]
pub struct ReencryptProgress {
    pub namespace: String,
    pub mode: &'static str,
    pub batch: Moved,
    /// Since the pass started (across interruptions).
    pub total: Moved,
    pub done: bool,
}

/// A pass in progress, as stored between batches.
#[derive(Default, Serialize, Deserialize)]
pub struct ReencryptPass {
    full: bool,
    /// The Active key the pass moves secrets onto.
    #[serde(default)]
    active: u32,
    after: Option<String>,
    total: Moved,
}

impl KeyAdmin {
    /// Runs one batch of the namespace's pass, starting one if none is
    /// saved (or its mode or Active key differs, or `restart`).
    pub async fn reencrypt(
        &self,
        namespace: &str,
        request: ReencryptRequest,
    ) -> Result<ReencryptProgress> {
        check_namespace(namespace)?;
        let limit = request.limit.unwrap_or(MAX_BATCH).clamp(1, MAX_BATCH);
        let mode = if request.full {
            Mode::Full
        } else {
            Mode::Rewrap
        };
        self.leased(async |_| {
            let active = self
                .existing(namespace)
                .await?
                .active()
                .map(|key| key.id)
                .ok_or_else(|| {
                    Error::Internal(format!("namespace {namespace} has no Active data key"))
                })?;
            let record = layout::reencrypt_pass(namespace);
            // A saved pass that cannot be read (damaged, or refused) is
            // started over: repeating work costs time, never data.
            let stored = match self.store.read::<ReencryptPass>(&record).await {
                Ok(stored) => stored,
                Err(error @ (Error::Integrity(_) | Error::Internal(_))) => {
                    tracing::warn!(%error, namespace, "starting the re-encryption pass over");
                    None
                }
                Err(error) => return Err(error),
            };
            let base = stored.as_ref().map(|s| s.version);
            let mut pass = match stored.map(|s| s.record) {
                Some(pass)
                    if !request.restart && pass.full == request.full && pass.active == active =>
                {
                    pass
                }
                _ => ReencryptPass {
                    full: request.full,
                    active,
                    ..ReencryptPass::default()
                },
            };
            let page = self
                .rewrap_page(namespace, pass.after.as_deref(), limit, mode)
                .await?;
            pass.total.add(page.moved);
            pass.after = page.next;
            let done = pass.after.is_none();
            let saved = match (done, base) {
                (true, Some(base)) => self
                    .store
                    .delete::<ReencryptPass>(&record, base)
                    .await
                    .map(drop),
                (true, None) => Ok(()),
                (false, _) => self.store.put(&record, &pass, base).await.map(drop),
            };
            // Losing this race only means the next batch repeats some work.
            if let Err(error) = saved {
                tracing::warn!(%error, namespace, "could not save re-encryption progress");
            }
            Ok(ReencryptProgress {
                namespace: namespace.to_owned(),
                mode: if request.full { "full" } else { "rewrap" },
                batch: page.moved,
                total: pass.total,
                done,
            })
        })
        .await
    }
}
