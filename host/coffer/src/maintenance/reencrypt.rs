//! `coffer reencrypt`: moves a namespace's secrets onto its Active data key
//! in batches. Progress is kept in storage after every batch, so a pass
//! interrupted (client gone, server killed) continues where it stopped; a
//! pass saved under an Active key that has since been rotated starts over,
//! since the secrets it already moved are under a retired key again.

use coffer_runtime::Expected;
use serde::{Deserialize, Serialize};

use super::KeyAdmin;
use crate::error::{Error, Result};
use crate::secrets::{Mode, Moved, check_namespace};

/// Most secrets one batch handles.
pub const MAX_BATCH: u32 = 1000;

/// One batch of a pass.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReencryptRequest {
    /// Re-encrypt values under fresh secret keys, not just re-wrap.
    #[serde(default)]
    pub full: bool,
    /// Secrets in this batch (default 200, at most 1000).
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
struct Pass {
    full: bool,
    /// The Active key the pass moves secrets onto.
    #[serde(default)]
    active: u32,
    after: Option<String>,
    total: Moved,
}

fn pass_record(namespace: &str) -> String {
    format!("sys/jobs/reencrypt/{namespace}")
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
        let limit = request.limit.unwrap_or(200).clamp(1, MAX_BATCH);
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
            let record = pass_record(namespace);
            let stored = self.storage.get(&record).await?;
            let saved: Option<Pass> = stored
                .as_ref()
                .and_then(|e| serde_json::from_slice(&e.value).ok());
            let mut pass = match saved {
                Some(pass)
                    if !request.restart && pass.full == request.full && pass.active == active =>
                {
                    pass
                }
                _ => Pass {
                    full: request.full,
                    active,
                    ..Pass::default()
                },
            };
            let page = self
                .secrets
                .rewrap_page(namespace, pass.after.as_deref(), limit, mode)
                .await?;
            pass.total.add(page.moved);
            pass.after = page.next;
            let done = pass.after.is_none();
            let expected = stored.map_or(Expected::Absent, |e| Expected::Revision(e.revision));
            let saved = if done {
                match expected {
                    Expected::Revision(_) => self.storage.delete(&record, expected).await,
                    _ => Ok(()),
                }
            } else {
                let bytes =
                    serde_json::to_vec(&pass).map_err(|e| Error::Internal(e.to_string()))?;
                self.storage
                    .put(&record, &bytes, expected)
                    .await
                    .map(|_| ())
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
