//! The audit trail: one record per request, allowed or denied, written to
//! every configured sink before the answer leaves. Records are hash-chained
//! ([`record`]) so that [`verify`] proves a log intact or names the first
//! bad record. Secret names appear only as HMAC-SHA256 under the audit key.
//!
//! Fail-closed: when no sink can write, requests are refused (503) and
//! health says so, until a sink works again.

pub mod record;
mod sink;
pub mod verify;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use record::{Entry, GENESIS, Record};
use sink::{FileSink, Sink};

/// Settings of the audit trail.
#[derive(Clone, Debug)]
pub struct AuditSettings {
    pub enabled: bool,
    pub file: Option<PathBuf>,
    pub stdout: bool,
    pub rotate_bytes: u64,
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
    key: Zeroizing<Vec<u8>>,
    chain: Mutex<Chain>,
    healthy: AtomicBool,
}

/// Why a record could not be written anywhere.
#[derive(Debug, thiserror::Error)]
#[error("no audit sink could write")]
pub struct AuditUnavailable;

impl Audit {
    /// Opens the sinks and picks the chain up where the file left it.
    pub fn open(settings: AuditSettings, key: Zeroizing<Vec<u8>>) -> Audit {
        let mut sinks = Vec::new();
        let (mut seq, mut prev) = (0, GENESIS.to_owned());
        if settings.enabled {
            if let Some(file) = &settings.file {
                if let Some(last) = last_record(file) {
                    (seq, prev) = (last.seq, last.hash);
                }
                sinks.push(Sink::File(FileSink::new(
                    file.clone(),
                    settings.rotate_bytes,
                )));
            }
            if settings.stdout {
                sinks.push(Sink::Stdout);
            }
        }
        Audit {
            settings,
            key,
            chain: Mutex::new(Chain { seq, prev, sinks }),
            healthy: AtomicBool::new(true),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Whether the last write reached a sink.
    pub fn healthy(&self) -> bool {
        !self.settings.enabled || self.healthy.load(Ordering::Relaxed)
    }

    /// Whether `action` is written at all.
    pub fn records(&self, action: &str) -> bool {
        self.settings.enabled && !self.settings.exclude.contains(action)
    }

    /// `hmac-sha256:<hex>` of `value` under the audit key, as records show it.
    pub fn hash(&self, value: &str) -> String {
        // HMAC takes keys of any length.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(value.as_bytes());
        format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Chains and writes `entry` to every sink; succeeds if at least one took it.
    pub fn write(&self, entry: Entry) -> Result<(), AuditUnavailable> {
        // Serialize before taking the lock: only chaining is serial.
        let entry_json = serde_json::to_vec(&entry).map_err(|_| AuditUnavailable)?;
        let mut chain = match self.chain.lock() {
            Ok(chain) => chain,
            Err(poisoned) => poisoned.into_inner(),
        };
        let record = Record::seal(chain.seq + 1, &chain.prev, entry, &entry_json);
        let line = record_line(&record, &entry_json);
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
        chain.prev = record.hash;
        Ok(())
    }

    /// The log files of this node, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        self.settings
            .file
            .as_deref()
            .map(verify::log_files)
            .unwrap_or_default()
    }
}

/// The last record of the log at `file` (or of its newest rotated file).
fn last_record(file: &std::path::Path) -> Option<Record> {
    verify::log_files(file).iter().rev().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
        serde_json::from_str(line).ok()
    })
}

/// The JSON line of `record`, reusing the entry's JSON: `{"seq":…,"prev":…,
/// <entry fields>,"hash":…}`.
pub(crate) fn record_line(record: &Record, entry_json: &[u8]) -> Vec<u8> {
    let fields = entry_json
        .strip_prefix(b"{")
        .and_then(|j| j.strip_suffix(b"}"))
        .unwrap_or(entry_json);
    let mut line = Vec::with_capacity(entry_json.len() + 192);
    line.extend_from_slice(
        format!("{{\"seq\":{},\"prev\":\"{}\",", record.seq, record.prev).as_bytes(),
    );
    line.extend_from_slice(fields);
    line.extend_from_slice(format!(",\"hash\":\"{}\"}}\n", record.hash).as_bytes());
    line
}
