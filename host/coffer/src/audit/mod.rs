//! The audit trail: one record per request, allowed or denied, written to
//! every configured sink before the answer leaves. Records form a keyed
//! chain ([`record`]) so that [`verify`] proves a log intact or names the
//! first bad record, and checkpoints in storage ([`checkpoint`]) show a log
//! whose tail was cut. Secret names appear only as pseudonyms.
//!
//! Fail-closed: when no sink can write, requests are refused (503) and
//! health says so, until a sink works again.
//!
//! After a crash the last line of the file may be torn: the chain picks up
//! after the last whole record (the torn bytes are cut and the cut is
//! recorded), never back at record 1.

mod checkpoint;
pub mod record;
mod sink;
pub mod verify;

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

pub use checkpoint::Checkpoint;
use record::{ChainKey, Entry, Record};
use sink::{FileSink, Sink};
use verify::{Break, Link, Report};

use crate::clock::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::pseudonyms::Pseudonyms;
use crate::store::Store;

/// Settings of the audit trail.
#[derive(Clone, Debug)]
pub struct AuditSettings {
    pub enabled: bool,
    pub file: Option<PathBuf>,
    pub stdout: bool,
    pub rotate_bytes: u64,
    /// Rotated files kept; older ones are deleted once verified.
    pub keep_files: Option<usize>,
    /// Bytes of rotated files kept; beyond, the oldest are deleted once
    /// verified.
    pub keep_bytes: Option<u64>,
    /// How often the chain's head is checkpointed in storage.
    pub checkpoint_interval: std::time::Duration,
    /// Actions not written (such as `sys.health`).
    pub exclude: BTreeSet<String>,
}

struct Chain {
    seq: u64,
    prev: String,
    sinks: Vec<Sink>,
}

pub struct Audit {
    settings: AuditSettings,
    names: Arc<Pseudonyms>,
    key: Arc<ChainKey>,
    chain: Mutex<Chain>,
    healthy: AtomicBool,
    store: Arc<Store>,
    /// This node's name: whose checkpoint is whose.
    node: String,
    /// The record before the first retained file.
    start: Mutex<Link>,
    last_checkpoint: Mutex<Option<Link>>,
    /// Retention found a file that does not verify and stopped.
    retention_blocked: AtomicBool,
}

/// Why a record could not be written anywhere.
#[derive(Debug, thiserror::Error)]
#[error("no audit sink could write")]
pub struct AuditUnavailable;

impl Audit {
    /// Opens the sinks and picks the chain up where the file — or, if the
    /// file lost records, the checkpoint in storage — left it.
    pub async fn open(
        settings: AuditSettings,
        audit_key: &Zeroizing<Vec<u8>>,
        names: Arc<Pseudonyms>,
        store: Arc<Store>,
        node: String,
    ) -> Result<Audit> {
        let audit = Audit {
            key: Arc::new(ChainKey::derive(audit_key)),
            names,
            chain: Mutex::new(Chain {
                seq: 0,
                prev: record::GENESIS.to_owned(),
                sinks: Vec::new(),
            }),
            healthy: AtomicBool::new(true),
            store,
            node,
            start: Mutex::new(Link::genesis()),
            last_checkpoint: Mutex::new(None),
            retention_blocked: AtomicBool::new(false),
            settings,
        };
        if !audit.settings.enabled {
            return Ok(audit);
        }
        let checkpoint = audit.stored_checkpoint().await?;
        let mut notes = Vec::new();
        let mut head = Link::genesis();
        if let Some(file) = &audit.settings.file {
            if let Some(cut) = cut_torn_tail(file)
                .map_err(|e| Error::Internal(format!("audit file {}: {e}", file.display())))?
            {
                notes.push(format!(
                    "a torn record of {cut} bytes (a crash mid-write) was cut from the end of the log"
                ));
            }
            if let Some(last) = last_record(file) {
                head = Link {
                    seq: last.seq,
                    mac: last.link().to_owned(),
                };
            }
        }
        if let Some(checkpoint) = &checkpoint {
            *audit.start.lock().unwrap_or_else(|p| p.into_inner()) = checkpoint.start.clone();
            if checkpoint.head.seq > head.seq {
                tracing::error!(
                    file_ends_at = head.seq,
                    checkpoint = checkpoint.head.seq,
                    "the audit log lacks records that storage holds a checkpoint of: they were \
                     removed; the chain goes on from the checkpoint"
                );
                notes.push(format!(
                    "the log ended at record {}, but the checkpoint in storage is of record {}: \
                     records were removed",
                    head.seq, checkpoint.head.seq
                ));
                head = checkpoint.head.clone();
            }
        }
        {
            let mut chain = audit.chain.lock().unwrap_or_else(|p| p.into_inner());
            chain.seq = head.seq;
            chain.prev = head.mac;
            if let Some(file) = &audit.settings.file {
                chain.sinks.push(Sink::File(FileSink::new(
                    file.clone(),
                    audit.settings.rotate_bytes,
                )));
            }
            if audit.settings.stdout {
                chain.sinks.push(Sink::Stdout);
            }
        }
        for note in notes {
            audit
                .write(audit.event("audit.recovered", "error", 500, note))
                .map_err(|_| Error::Internal("the audit trail cannot be written".to_owned()))?;
        }
        Ok(audit)
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Whether the last write reached a sink.
    pub fn healthy(&self) -> bool {
        !self.settings.enabled || self.healthy.load(Ordering::Relaxed)
    }

    /// The sequence number of the last record this node's chain holds:
    /// how many records it has written, across restarts.
    pub fn sequence(&self) -> u64 {
        self.chain.lock().unwrap_or_else(|p| p.into_inner()).seq
    }

    /// Whether retention stopped at a file that does not verify.
    pub fn retention_blocked(&self) -> bool {
        self.retention_blocked.load(Ordering::Relaxed)
    }

    /// Whether `action` is written at all.
    pub fn records(&self, action: &str) -> bool {
        self.settings.enabled && !self.settings.exclude.contains(action)
    }

    /// `hmac-sha256:<hex>` of `value`: how records show it.
    pub fn hash(&self, value: &str) -> String {
        self.names.of(value)
    }

    /// An entry for something the engine itself reports, outside any request.
    pub fn event(&self, action: &str, outcome: &str, status: u16, detail: String) -> Entry {
        Entry {
            time: rfc3339(now_ms()),
            request_id: String::new(),
            actor_id: None,
            actor_name: None,
            action: action.to_owned(),
            namespace: None,
            path: None,
            outcome: outcome.to_owned(),
            status,
            remote: "engine".to_owned(),
            detail: Some(record::bounded_detail(&detail)),
            sealed: false,
        }
    }

    /// Chains and writes `entry` to every sink; succeeds if at least one took it.
    pub fn write(&self, mut entry: Entry) -> std::result::Result<(), AuditUnavailable> {
        if !self.settings.enabled {
            return Ok(());
        }
        if let Some(detail) = entry.detail.as_mut()
            && detail.len() > record::MAX_DETAIL
        {
            *detail = record::bounded_detail(detail);
        }
        // Serialize before taking the lock: only chaining is serial.
        let entry_json = serde_json::to_vec(&entry).map_err(|_| AuditUnavailable)?;
        let mut chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        let record = self
            .key
            .seal(chain.seq + 1, &chain.prev, entry, &entry_json);
        let line = record::line(&record, &entry_json);
        let mut written = false;
        for sink in &mut chain.sinks {
            match sink.write(&line) {
                Ok(()) => written = true,
                Err(error) => tracing::error!(sink = %sink.describe(), %error, "audit sink failed"),
            }
        }
        self.healthy.store(written, Ordering::Relaxed);
        if !written {
            return Err(AuditUnavailable);
        }
        chain.seq = record.seq;
        chain.prev = record.link().to_owned();
        Ok(())
    }

    /// The last record written.
    pub fn head(&self) -> Link {
        let chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        Link {
            seq: chain.seq,
            mac: chain.prev.clone(),
        }
    }

    fn start(&self) -> Link {
        self.start.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn last_checkpoint(&self) -> Option<Link> {
        self.last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The log files of this node, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        self.settings
            .file
            .as_deref()
            .map(verify::log_files)
            .unwrap_or_default()
    }

    /// Verifies this node's log, from where the retained log starts to at
    /// least the checkpoint storage holds.
    pub async fn verify(&self) -> Result<std::result::Result<Report, Break>> {
        let checkpoint = self.stored_checkpoint().await?;
        verify_files(self.files(), self.key.clone(), checkpoint).await
    }

    /// Checkpoints and applies retention every `checkpoint_interval`, until
    /// the task is dropped.
    pub fn spawn_maintenance(self: Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if !self.settings.enabled {
            return None;
        }
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(self.settings.checkpoint_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(error) = self.checkpoint().await {
                    tracing::warn!(%error, "could not checkpoint the audit trail; retrying");
                }
                if !self.retention_blocked()
                    && let Err(error) = self.apply_retention().await
                {
                    tracing::warn!(%error, "audit retention failed; retrying");
                }
            }
        }))
    }
}

/// Verifies `files` (oldest first) under the chain key, from where
/// `checkpoint` says the retained log starts to at least its head.
pub async fn verify_files(
    files: Vec<PathBuf>,
    key: Arc<ChainKey>,
    checkpoint: Option<Checkpoint>,
) -> Result<std::result::Result<Report, Break>> {
    let start = checkpoint
        .as_ref()
        .map_or_else(Link::genesis, |c| c.start.clone());
    let head = checkpoint.map(|c| c.head);
    tokio::task::spawn_blocking(move || verify::verify(&files, &key, &start, head.as_ref()))
        .await
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Verifies `files` as the log of node `node`, with the audit key and the
/// checkpoint read from `store` — what `coffer audit verify --config` does
/// without a server.
pub async fn verify_offline(
    files: Vec<PathBuf>,
    store: &Store,
    audit_key: &[u8],
    node: &str,
) -> Result<std::result::Result<Report, Break>> {
    let checkpoint = store
        .read::<Checkpoint>(&crate::store::layout::audit_checkpoint(node))
        .await?
        .map(|stored| stored.record);
    verify_files(files, Arc::new(ChainKey::derive(audit_key)), checkpoint).await
}

/// Cuts a last line that lacks its newline (a record torn by a crash) from
/// `file`; returns how many bytes went.
fn cut_torn_tail(file: &Path) -> std::io::Result<Option<u64>> {
    let mut handle = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
    {
        Ok(handle) => handle,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let len = handle.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    // Read backwards in chunks until the last newline.
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let size = usize::try_from(end - start).unwrap_or(chunk.len());
        handle.seek(SeekFrom::Start(start))?;
        handle.read_exact(&mut chunk[..size])?;
        if let Some(at) = chunk[..size].iter().rposition(|b| *b == b'\n') {
            let keep = start + at as u64 + 1;
            if keep == len {
                return Ok(None);
            }
            handle.set_len(keep)?;
            handle.sync_all()?;
            return Ok(Some(len - keep));
        }
        end = start;
    }
    handle.set_len(0)?;
    handle.sync_all()?;
    Ok(Some(len))
}

/// The last record of the log at `file` (or of its newest rotated file).
fn last_record(file: &Path) -> Option<Record> {
    verify::log_files(file).iter().rev().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .find_map(|line| serde_json::from_str(line).ok())
    })
}
