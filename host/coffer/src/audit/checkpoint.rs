//! Checkpoints and retention: what keeps the audit trail from being cut
//! short by whoever can write its files.
//!
//! A checkpoint is a sealed record in storage, per node, naming the last
//! record written (its number and link) and where the retained log starts.
//! The log file's writer cannot rewrite it, so `verify` can tell a log whose
//! tail was cut from one that simply ended. Checkpoints are written every
//! `checkpoint_ms` while records are written, and at shutdown; what a crash
//! or an attacker removes after the last checkpoint is all that can go
//! unnoticed.
//!
//! Retention deletes the oldest rotated files beyond `keep_files` /
//! `keep_bytes`, but only a file that verifies from where the retained log
//! starts: the checkpoint then moves the start past it before the file is
//! deleted, so the rest still verifies. A file that does not verify is
//! kept, and retention stops until someone looks.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::verify::{Link, log_files, verify};
use super::{Audit, AuditSettings};
use crate::clock::now_ms;
use crate::error::Result;
use crate::store::{Change, Start, layout};

/// The audit chain as storage vouches for it, for one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The last record written when the checkpoint was taken.
    pub head: Link,
    /// The record before the first retained file: the genesis until
    /// retention deletes a file.
    pub start: Link,
    pub time_ms: i64,
}

impl Audit {
    /// This node's checkpoint, if storage holds one.
    pub async fn stored_checkpoint(&self) -> Result<Option<Checkpoint>> {
        Ok(self
            .store
            .read::<Checkpoint>(&layout::audit_checkpoint(&self.node))
            .await?
            .map(|stored| stored.record))
    }

    /// Writes a checkpoint of the chain's head, unless it has not moved
    /// since the last one.
    pub async fn checkpoint(&self) -> Result<()> {
        if !self.settings.enabled {
            return Ok(());
        }
        let head = self.head();
        if self.last_checkpoint().as_ref() == Some(&head) {
            return Ok(());
        }
        self.write_checkpoint(head.clone(), self.start()).await?;
        Ok(())
    }

    async fn write_checkpoint(&self, head: Link, start: Link) -> Result<()> {
        let checkpoint = Checkpoint {
            head: head.clone(),
            start,
            time_ms: now_ms(),
        };
        self.store
            .edit(
                &layout::audit_checkpoint(&self.node),
                Start::Read,
                || std::future::ready(Ok(checkpoint.clone())),
                |stored: Checkpoint, _| {
                    // Another process of this node (an older one) may have
                    // got further; a checkpoint never goes back.
                    let outcome = if stored.head.seq > checkpoint.head.seq {
                        (stored, Change::Keep(()))
                    } else {
                        (checkpoint.clone(), Change::Write(()))
                    };
                    std::future::ready(Ok(outcome))
                },
            )
            .await?;
        *self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(head);
        Ok(())
    }

    /// Deletes the oldest rotated files beyond the retention limits, each
    /// only once it verifies. Returns how many were deleted.
    pub async fn apply_retention(&self) -> Result<usize> {
        let Some(current) = self.settings.file.clone() else {
            return Ok(0);
        };
        let mut deleted = 0;
        while let Some(oldest) = self.next_to_retire(&current) {
            let start = self.start();
            let key = self.key.clone();
            let file = oldest.clone();
            let checked = tokio::task::spawn_blocking(move || verify(&[file], &key, &start, None))
                .await
                .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
            let report = match checked {
                Ok(report) => report,
                Err(broken) => {
                    tracing::error!(
                        %broken,
                        "an audit file due for retention does not verify: it is kept, and \
                         retention waits until it is dealt with"
                    );
                    self.retention_blocked
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    return Ok(deleted);
                }
            };
            let Some(new_start) = report.head else {
                // Empty, or wholly before the start (vouched for already,
                // then kept by a crash before its deletion).
                std::fs::remove_file(&oldest).map_err(io)?;
                deleted += 1;
                continue;
            };
            // The start moves past the file in storage before the file goes,
            // so a crash in between leaves a log that still verifies.
            self.write_checkpoint(self.head(), new_start.clone())
                .await?;
            *self.start.lock().unwrap_or_else(|p| p.into_inner()) = new_start;
            std::fs::remove_file(&oldest).map_err(io)?;
            tracing::info!(file = %oldest.display(), "deleted a verified audit file (retention)");
            deleted += 1;
        }
        Ok(deleted)
    }

    /// The oldest rotated file, if the rotated files exceed the limits.
    fn next_to_retire(&self, current: &std::path::Path) -> Option<PathBuf> {
        let settings: &AuditSettings = &self.settings;
        let rotated: Vec<PathBuf> = log_files(current)
            .into_iter()
            .filter(|path| path != current)
            .collect();
        let bytes: u64 = rotated
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|m| m.len())
            .sum();
        let too_many = settings.keep_files.is_some_and(|keep| rotated.len() > keep);
        let too_big = settings.keep_bytes.is_some_and(|keep| bytes > keep);
        (too_many || too_big)
            .then(|| rotated.into_iter().next())
            .flatten()
    }
}

fn io(error: std::io::Error) -> crate::error::Error {
    crate::error::Error::Internal(format!("audit retention: {error}"))
}
