//! What every compare-and-set edit of a stored record shares: read the
//! record, let the caller change it, write it back only if its revision is
//! still the one read, and otherwise back off and start again from a fresh
//! read. Several nodes may edit the same record; none loses the others'
//! changes.

use coffer_runtime::{GuestError, PluginError};

/// What an edit of a stored record decided.
pub enum Change<T> {
    /// Nothing changed; do not write.
    Keep(T),
    /// Write the edited record back.
    Write(T),
}

/// Waits a little, growing with each lost race, so writers on several
/// nodes stop colliding.
pub async fn backoff(attempt: usize) {
    if attempt > 0 {
        let jitter = rand::random::<u64>() % 5;
        let millis = (1u64 << attempt.min(6)) + jitter;
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}

/// Whether a storage write failed because the record changed since it was
/// read (the compare-and-set lost).
pub fn is_conflict(error: &PluginError) -> bool {
    matches!(error.guest(), Some(GuestError::Conflict(_)))
}
