//! Checking an audit log: every line a record, every record numbered and
//! chained to the one before under the chain key, across rotated files,
//! from where the retained log starts up to at least the last checkpoint
//! storage holds.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{ChainKey, GENESIS, Record};

/// A point in the chain: a record's number and link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub seq: u64,
    pub mac: String,
}

impl Link {
    /// Before the first record of a log.
    pub fn genesis() -> Link {
        Link {
            seq: 0,
            mac: GENESIS.to_owned(),
        }
    }
}

/// Where the chain first breaks.
#[derive(Debug, PartialEq, Eq)]
pub struct Break {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} line {}: {}",
            self.file.display(),
            self.line,
            self.reason
        )
    }
}

/// What a verification found intact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Records checked.
    pub records: u64,
    /// The last record.
    pub head: Option<Link>,
    /// A file whose last line was cut short (a crash mid-write); its
    /// records before that line are intact.
    pub torn_tail: Option<PathBuf>,
}

/// Verifies `files` as one log, in order, starting after `start` (the
/// genesis, or where retention left the log) and reaching at least
/// `checkpoint` when storage holds one. Records before the start — a file
/// retention vouched for but a crash kept from deleting — are skipped.
pub fn verify(
    files: &[PathBuf],
    key: &ChainKey,
    start: &Link,
    checkpoint: Option<&Link>,
) -> Result<Report, Break> {
    let mut report = Report::default();
    let mut expected_seq = start.seq + 1;
    let mut prev = start.mac.clone();
    let mut keyed = false;
    let mut last_place = (PathBuf::new(), 0);
    for file in files {
        let fail = |line: usize, reason: String| Break {
            file: file.clone(),
            line,
            reason,
        };
        let reader = std::fs::File::open(file)
            .map(std::io::BufReader::new)
            .map_err(|e| fail(0, format!("cannot read: {e}")))?;
        let mut lines = reader.split(b'\n').enumerate().peekable();
        while let Some((index, line)) = lines.next() {
            let line = line.map_err(|e| fail(index + 1, format!("cannot read: {e}")))?;
            let last_of_file = lines.peek().is_none();
            let record: Record = match serde_json::from_slice(&line) {
                Ok(record) => record,
                Err(_) if last_of_file && ends_without_newline(file) => {
                    report.torn_tail = Some(file.clone());
                    break;
                }
                Err(_) if line.is_empty() && last_of_file => break,
                Err(e) => return Err(fail(index + 1, format!("not an audit record: {e}"))),
            };
            if report.records == 0 && record.seq <= start.seq {
                continue;
            }
            if record.seq != expected_seq {
                return Err(fail(
                    index + 1,
                    format!(
                        "record {} where record {expected_seq} belongs (a record was deleted, \
                         inserted or moved)",
                        record.seq
                    ),
                ));
            }
            if record.prev != prev {
                return Err(fail(
                    index + 1,
                    format!(
                        "record {} does not chain to the record before it",
                        record.seq
                    ),
                ));
            }
            if keyed && record.mac.is_none() {
                return Err(fail(
                    index + 1,
                    format!("record {} is unkeyed, after keyed records", record.seq),
                ));
            }
            if !key.is_intact(&record) {
                return Err(fail(
                    index + 1,
                    format!("record {} was edited (its mac does not match)", record.seq),
                ));
            }
            keyed |= record.mac.is_some();
            if let Some(checkpoint) = checkpoint
                && checkpoint.seq == record.seq
                && checkpoint.mac != record.link()
            {
                return Err(fail(
                    index + 1,
                    format!(
                        "record {} is not the record the checkpoint in storage vouches for",
                        record.seq
                    ),
                ));
            }
            prev = record.link().to_owned();
            report.records += 1;
            report.head = Some(Link {
                seq: record.seq,
                mac: prev.clone(),
            });
            expected_seq += 1;
            last_place = (file.clone(), index + 1);
        }
    }
    if let Some(checkpoint) = checkpoint
        && checkpoint.seq >= expected_seq
    {
        return Err(Break {
            file: last_place.0,
            line: last_place.1,
            reason: format!(
                "the log ends at record {}, but storage holds a checkpoint of record {}: \
                 records were cut from the end",
                expected_seq - 1,
                checkpoint.seq
            ),
        });
    }
    Ok(report)
}

/// Whether the file's last byte is not a newline (a torn last line).
fn ends_without_newline(file: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut handle) = std::fs::File::open(file) else {
        return false;
    };
    let mut last = [0u8; 1];
    handle.seek(SeekFrom::End(-1)).is_ok()
        && handle.read_exact(&mut last).is_ok()
        && last[0] != b'\n'
}

/// The files of the log at `current`, oldest first: rotated `NAME.N` files
/// (`.1` the oldest) and then `current` itself.
pub fn log_files(current: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u64, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (
        current.parent(),
        current.file_name().and_then(|n| n.to_str()),
    ) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if let Some(n) = file_name
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|n| n.parse().ok())
                && entry.path().is_file()
            {
                rotated.push((n, entry.path()));
            }
        }
    }
    rotated.sort_by_key(|(n, _)| *n);
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, path)| path).collect();
    // Only regular files: a log pointed at a device (say /dev/full) has no
    // records to read back.
    if current.is_file() {
        files.push(current.to_path_buf());
    }
    files
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::record::{Entry, line};

    fn entry(action: &str) -> Entry {
        Entry {
            time: "2026-11-23T00:00:00.000Z".into(),
            request_id: "r".into(),
            actor_id: Some("abc".into()),
            actor_name: Some("root".into()),
            action: action.into(),
            namespace: Some("ns".into()),
            path: None,
            outcome: "allowed".into(),
            status: 200,
            remote: "127.0.0.1".into(),
            detail: None,
            sealed: false,
        }
    }

    fn key() -> ChainKey {
        ChainKey::derive(&[7; 32])
    }

    fn lines(count: u64) -> Vec<String> {
        let key = key();
        let mut prev = GENESIS.to_owned();
        (1..=count)
            .map(|seq| {
                let entry = entry(&format!("action-{seq}"));
                let json = serde_json::to_vec(&entry).unwrap();
                let record = key.seal(seq, &prev, entry, &json);
                prev = record.link().to_owned();
                String::from_utf8(line(&record, &json))
                    .unwrap()
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }

    fn check_with(lines: &[String], checkpoint: Option<&Link>) -> Result<Report, Break> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.log");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        verify(&[file], &key(), &Link::genesis(), checkpoint)
    }

    fn check(lines: &[String]) -> Result<Report, Break> {
        check_with(lines, None)
    }

    fn link_of(line: &str) -> Link {
        let record: Record = serde_json::from_str(line).unwrap();
        Link {
            seq: record.seq,
            mac: record.link().to_owned(),
        }
    }

    #[test]
    fn an_intact_log_verifies() {
        assert_eq!(check(&lines(5)).unwrap().records, 5);
    }

    #[test]
    fn an_edited_record_is_caught() {
        let mut log = lines(5);
        log[2] = log[2].replace("action-3", "action-x");
        let error = check(&log).unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.reason.contains("edited"), "{error}");
    }

    #[test]
    fn a_rewritten_chain_without_the_key_is_caught() {
        // Edit record 3 and recompute every link after it with another key.
        let forger = ChainKey::derive(&[8; 32]);
        let mut log = lines(5);
        let mut prev = link_of(&log[1]).mac;
        for (i, text) in log.iter_mut().enumerate().skip(2) {
            let mut record: Record = serde_json::from_str(text).unwrap();
            if i == 2 {
                record.entry.action = "forged".into();
            }
            let json = serde_json::to_vec(&record.entry).unwrap();
            let resealed = forger.seal(record.seq, &prev, record.entry, &json);
            prev = resealed.link().to_owned();
            *text = String::from_utf8(line(&resealed, &json))
                .unwrap()
                .trim_end()
                .to_owned();
        }
        assert_eq!(check(&log).unwrap_err().line, 3);
    }

    #[test]
    fn deleted_inserted_and_reordered_records_are_caught() {
        let mut log = lines(5);
        log.remove(1);
        assert_eq!(check(&log).unwrap_err().line, 2);
        let mut log = lines(5);
        log.swap(1, 2);
        assert_eq!(check(&log).unwrap_err().line, 2);
        let mut log = lines(5);
        let extra = lines(3)[2].clone();
        log.insert(2, extra);
        assert!(check(&log).is_err());
    }

    #[test]
    fn a_cut_tail_is_caught_by_the_checkpoint() {
        let log = lines(5);
        let checkpoint = link_of(&log[3]);
        assert_eq!(check_with(&log, Some(&checkpoint)).unwrap().records, 5);
        let error = check_with(&log[..3], Some(&checkpoint)).unwrap_err();
        assert!(error.reason.contains("cut from the end"), "{error}");
        // Without the checkpoint, the shorter log would have passed.
        assert!(check(&log[..3]).is_ok());
    }

    #[test]
    fn records_before_the_retained_start_are_skipped() {
        let log = lines(5);
        let start = link_of(&log[2]);
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("audit.log.1");
        let current = dir.path().join("audit.log");
        std::fs::write(&old, log[..3].join("\n") + "\n").unwrap();
        std::fs::write(&current, log[3..].join("\n") + "\n").unwrap();
        let report = verify(&[old, current.clone()], &key(), &start, None).unwrap();
        assert_eq!(report.records, 2);
        // The retained part must still chain to the start.
        let other = link_of(&log[1]);
        assert!(verify(&[current], &key(), &other, None).is_err());
    }

    #[test]
    fn a_torn_last_line_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.log");
        let log = lines(3);
        let text = format!("{}\n{}\n{}", log[0], log[1], &log[2][..20]);
        std::fs::write(&file, text).unwrap();
        let report = verify(std::slice::from_ref(&file), &key(), &Link::genesis(), None).unwrap();
        assert_eq!((report.records, report.torn_tail), (2, Some(file)));
    }

    #[test]
    fn written_lines_read_back_as_the_same_records() {
        let entry = entry("secret.read");
        let json = serde_json::to_vec(&entry).unwrap();
        let record = key().seal(7, GENESIS, entry, &json);
        let parsed: Record = serde_json::from_slice(&line(&record, &json)).unwrap();
        assert_eq!(parsed, record);
        assert!(key().is_intact(&parsed));
    }
}
