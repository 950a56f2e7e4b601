//! One audit record and the keyed chain that links it to the one before.
//!
//! A record's `mac` is HMAC-SHA256, under the chain key, over the previous
//! record's `mac`, its sequence number and its entry's canonical JSON
//! (fields in declaration order). Sequence numbers count up by one, and the
//! first record of a log chains to [`GENESIS`]. Whoever can write the log
//! file but does not hold the audit key can neither edit, insert, delete
//! nor reorder records, nor rewrite the chain after an edit: the first
//! record touched breaks it. Cutting records off the end is what the
//! checkpoints in storage catch ([`super::checkpoint`]).
//!
//! Builds before the keyed chain wrote `hash` (unkeyed SHA-256, same
//! input) instead of `mac`; such records are still read, and checked, as
//! the start of a log.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest `detail` an entry carries.
pub const MAX_DETAIL: usize = 512;

/// What happened in one request. Sensitive strings (secret names) are
/// pseudonyms; values and tokens never appear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    pub request_id: String,
    /// Token id (public), or none for unauthenticated requests.
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    /// Such as `secret.read`, `token.create`, `sys.health`.
    pub action: String,
    pub namespace: Option<String>,
    /// `hmac-sha256:<hex>` of the secret name or other sensitive path part.
    pub path: Option<String>,
    /// `requested` (written before a change runs), then `allowed`,
    /// `denied` or `error`.
    pub outcome: String,
    pub status: u16,
    pub remote: String,
    /// What the engine adds: versions a write pruned, a record refused as
    /// tampered, requests dropped by throttling. Never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request's value crossed the wire sealed (HPKE): its body, or
    /// the answer, or both. Left out when it did not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
}

/// An entry as stored: numbered and chained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub prev: String,
    #[serde(flatten)]
    pub entry: Entry,
    /// The keyed chain value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// An older build's unkeyed chain value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl Record {
    /// This record's link: what the next record's `prev` must be.
    pub fn link(&self) -> &str {
        self.mac.as_deref().or(self.hash.as_deref()).unwrap_or("")
    }
}

/// The key the chain is computed under, derived from the audit key.
pub struct ChainKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

impl ChainKey {
    /// `HMAC(audit key, "coffer.audit-chain.v1")`: the audit key also makes
    /// pseudonyms, and the two uses must never meet.
    pub fn derive(audit_key: &[u8]) -> ChainKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(audit_key)
            .expect("HMAC takes keys of any length");
        mac.update(b"coffer.audit-chain.v1");
        ChainKey(Zeroizing::new(mac.finalize().into_bytes().to_vec()))
    }

    /// Numbers and chains `entry` (already serialized as `entry_json`)
    /// after the record whose link is `prev`.
    pub fn seal(&self, seq: u64, prev: &str, entry: Entry, entry_json: &[u8]) -> Record {
        Record {
            seq,
            prev: prev.to_owned(),
            entry,
            mac: Some(self.mac(seq, prev, entry_json)),
            hash: None,
        }
    }

    /// Whether the record's stored chain value is the one its contents
    /// give: its `mac` under this key, or an older build's `hash`.
    pub fn is_intact(&self, record: &Record) -> bool {
        let Ok(json) = serde_json::to_vec(&record.entry) else {
            return false;
        };
        match (&record.mac, &record.hash) {
            (Some(mac), None) => {
                let expected = self.mac(record.seq, &record.prev, &json);
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    expected.as_bytes(),
                    mac.as_bytes(),
                ))
            }
            (None, Some(hash)) => legacy_hash(record.seq, &record.prev, &json) == *hash,
            _ => false,
        }
    }

    fn mac(&self, seq: u64, prev: &str, entry_json: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(prev.as_bytes());
        mac.update(&seq.to_be_bytes());
        mac.update(entry_json);
        crate::lower_hex::lower_hex(&mac.finalize().into_bytes())
    }
}

/// The unkeyed chain of older builds: SHA-256 over the same input.
fn legacy_hash(seq: u64, prev: &str, entry_json: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(seq.to_be_bytes());
    hasher.update(entry_json);
    hex::encode(hasher.finalize())
}

/// The JSON line of `record`, reusing the entry's JSON: `{"seq":…,"prev":…,
/// <entry fields>,"mac":…}`.
pub fn line(record: &Record, entry_json: &[u8]) -> Vec<u8> {
    let fields = entry_json
        .strip_prefix(b"{")
        .and_then(|j| j.strip_suffix(b"}"))
        .unwrap_or(entry_json);
    let mut line = Vec::with_capacity(entry_json.len() + 192);
    line.extend_from_slice(b"{\"seq\":");
    line.extend_from_slice(record.seq.to_string().as_bytes());
    line.extend_from_slice(b",\"prev\":");
    push_quoted(&mut line, &record.prev);
    line.push(b',');
    line.extend_from_slice(fields);
    line.extend_from_slice(b",\"mac\":");
    push_quoted(&mut line, record.link());
    line.extend_from_slice(b"}\n");
    line
}

/// `text` as a JSON string. `prev` and the link are hex when this engine
/// made them, but a chain picked up from a file another hand wrote may
/// hold anything: whatever is not plainly alphanumeric is escaped.
fn push_quoted(line: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        line.push(b'"');
        line.extend_from_slice(text.as_bytes());
        line.push(b'"');
    } else if serde_json::to_writer(&mut *line, text).is_err() {
        line.extend_from_slice(b"\"\"");
    }
}

/// Cuts `text` to at most [`MAX_DETAIL`] bytes, at a character boundary.
pub fn bounded_detail(text: &str) -> String {
    let mut end = text.len().min(MAX_DETAIL);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            time: "2026-12-07T20:00:00.000Z".to_owned(),
            request_id: "abc".to_owned(),
            actor_id: Some("t1".to_owned()),
            actor_name: Some("ops \"night\"".to_owned()),
            action: "secret.write".to_owned(),
            namespace: Some("pay".to_owned()),
            path: Some("hmac-sha256:00".to_owned()),
            outcome: "allowed".to_owned(),
            status: 200,
            remote: "127.0.0.1".to_owned(),
            detail: Some("pruned versions 1".to_owned()),
            sealed: true,
        }
    }

    #[test]
    fn a_line_reads_back_as_its_record() {
        let key = ChainKey::derive(b"audit key");
        for prev in [GENESIS, "from \"another\" hand\n"] {
            let json = serde_json::to_vec(&entry()).unwrap();
            let record = key.seal(7, prev, entry(), &json);
            let line = line(&record, &json);
            assert_eq!(line.last(), Some(&b'\n'));
            let read: Record = serde_json::from_slice(&line).unwrap();
            assert_eq!(read, record);
            assert!(key.is_intact(&read));
        }
    }
}
