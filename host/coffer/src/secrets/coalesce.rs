//! Writes of one name coalesced. Writers of one secret wait in line for
//! each other (they would race on its compare-and-set otherwise), so a name
//! many clients write at once is as slow as one read, one write and one
//! commit each, back to back. Instead, the writes waiting for a name join
//! its line, and one task takes them in batches: each batch is one
//! compare-and-set and one commit (after a read only when this node cannot
//! start from what it wrote last, [`crate::store::Start::Guess`]), in
//! which every write still gets its own version, its own check-and-set
//! verdict and its own answer — the outcome of running them one by one in
//! the order they arrived.
//!
//! A write that finds its name's line empty, as most do, runs in its own
//! request's task, alone: a task of its own would cost more than the
//! write's own work on the host. Whoever joins the line meanwhile is handed
//! to a task of the line's own once that write is done or cut short
//! ([`Handoff`]), so one client going away never cuts short another's
//! write.

use std::collections::HashMap;
use std::sync::Mutex;

use coffer_crypto::record::ValueFormat;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::{Secrets, Written};
use crate::error::Result;

/// Most writes one batch takes.
const MAX_BATCH: usize = 64;

/// One write waiting in a line.
pub(super) struct Pending {
    pub value: Zeroizing<Vec<u8>>,
    pub format: ValueFormat,
    pub cas: Option<u32>,
    pub reply: oneshot::Sender<Result<Written>>,
}

/// The lines of the names being written now, by storage key.
#[derive(Default)]
pub(super) struct Lines {
    waiting: Mutex<HashMap<String, Vec<Pending>>>,
}

impl Lines {
    /// Puts `pending` in the line of `key`. True when there was no line,
    /// so the caller must start the task that drains it.
    pub fn join(&self, key: &str, pending: Pending) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match waiting.get_mut(key) {
            Some(line) => {
                line.push(pending);
                false
            }
            None => {
                waiting.insert(key.to_owned(), vec![pending]);
                true
            }
        }
    }

    /// The next writes in the line of `key`, in arrival order; none, and
    /// the line closed, when it is empty.
    pub fn next_batch(&self, key: &str) -> Vec<Pending> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let Some(line) = waiting.get_mut(key) else {
            return Vec::new();
        };
        if line.is_empty() {
            waiting.remove(key);
            return Vec::new();
        }
        let take = line.len().min(MAX_BATCH);
        line.drain(..take).collect()
    }

    /// The first write in the line of `key` alone (none when it is empty).
    pub fn first(&self, key: &str) -> Vec<Pending> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match waiting.get_mut(key) {
            Some(line) if !line.is_empty() => vec![line.remove(0)],
            _ => Vec::new(),
        }
    }

    /// Closes the line of `key` if nothing waits in it; false when writes
    /// do.
    pub fn close_if_empty(&self, key: &str) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.get(key).is_some_and(|line| !line.is_empty()) {
            return false;
        }
        waiting.remove(key);
        true
    }

    /// How many writes wait in the line of `key`.
    #[cfg(test)]
    pub fn waiting(&self, key: &str) -> usize {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.get(key).map_or(0, Vec::len)
    }

    /// Closes the line of `key` whatever waits in it: their writers hear
    /// that their write did not run.
    pub fn abandon(&self, key: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.remove(key);
    }
}

/// Closes a line whose task stopped before draining it (it panicked), so
/// the name's later writers start a new one instead of waiting forever.
pub(super) struct Draining<'a> {
    lines: &'a Lines,
    key: &'a str,
    pub drained: bool,
}

impl<'a> Draining<'a> {
    pub fn new(lines: &'a Lines, key: &'a str) -> Draining<'a> {
        Draining {
            lines,
            key,
            drained: false,
        }
    }
}

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        if !self.drained {
            self.lines.abandon(self.key);
        }
    }
}

/// Held while a line's first write runs in its request's task: when it
/// ends, done or cut short, the line closes if nothing waits in it, and
/// goes to a task of its own ([`Secrets::drain_line`]) otherwise.
pub(super) struct Handoff<'a> {
    pub secrets: &'a Secrets,
    pub namespace: &'a str,
    pub name: &'a str,
    pub key: &'a str,
}

impl Drop for Handoff<'_> {
    fn drop(&mut self) {
        let lines = &self.secrets.lines;
        if lines.close_if_empty(self.key) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // The server is stopping: no task can take the line.
            lines.abandon(self.key);
            return;
        };
        let secrets = self.secrets.clone();
        let (namespace, name, key) = (
            self.namespace.to_owned(),
            self.name.to_owned(),
            self.key.to_owned(),
        );
        runtime.spawn(async move { secrets.drain_line(&namespace, &name, &key).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> (Pending, oneshot::Receiver<Result<Written>>) {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            value: Zeroizing::new(b"v".to_vec()),
            format: ValueFormat::Text,
            cas: None,
            reply,
        };
        (pending, answer)
    }

    #[test]
    fn the_first_writer_starts_a_line_and_the_line_closes_once_drained() {
        let lines = Lines::default();
        assert!(lines.join("k", pending().0));
        assert!(!lines.join("k", pending().0));
        assert!(lines.join("other", pending().0));
        assert_eq!(lines.next_batch("k").len(), 2);
        assert!(lines.next_batch("k").is_empty());
        // Closed: the next writer starts a new line.
        assert!(lines.join("k", pending().0));
    }

    #[test]
    fn a_batch_is_bounded_and_keeps_arrival_order() {
        let lines = Lines::default();
        for cas in 0..(MAX_BATCH as u32 + 3) {
            let (mut write, _) = pending();
            write.cas = Some(cas);
            lines.join("k", write);
        }
        let first = lines.next_batch("k");
        assert_eq!(first.len(), MAX_BATCH);
        assert!(
            first
                .iter()
                .enumerate()
                .all(|(i, w)| w.cas == Some(i as u32))
        );
        assert_eq!(lines.next_batch("k").len(), 3);
    }

    #[test]
    fn the_first_write_is_taken_alone_and_an_empty_line_closes() {
        let lines = Lines::default();
        assert!(lines.join("k", pending().0));
        assert!(!lines.join("k", pending().0));
        assert_eq!(lines.first("k").len(), 1);
        assert!(!lines.close_if_empty("k"), "a write still waits");
        assert_eq!(lines.first("k").len(), 1);
        assert!(lines.close_if_empty("k"));
        assert!(lines.first("k").is_empty());
        assert!(lines.join("k", pending().0), "a new line starts");
    }

    #[test]
    fn a_line_whose_task_stopped_is_closed() {
        let lines = Lines::default();
        let (write, mut answer) = pending();
        lines.join("k", write);
        drop(Draining::new(&lines, "k"));
        assert!(answer.try_recv().is_err(), "the waiting writer hears");
        assert!(lines.join("k", pending().0), "a new line starts");
    }
}
