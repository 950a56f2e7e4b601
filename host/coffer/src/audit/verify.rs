//! Checking an audit log: every line a record, every hash right, every
//! record numbered and chained to the one before, across rotated files.

use std::path::{Path, PathBuf};

use super::record::{GENESIS, Record};

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

/// Verifies `files` as one log, in order; returns how many records are intact.
pub fn verify(files: &[PathBuf]) -> Result<u64, Break> {
    let mut expected_seq = 1u64;
    let mut prev = GENESIS.to_owned();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| Break {
            file: file.clone(),
            line: 0,
            reason: format!("cannot read: {e}"),
        })?;
        for (index, line) in text.lines().enumerate() {
            let fail = |reason: String| Break {
                file: file.clone(),
                line: index + 1,
                reason,
            };
            let record: Record = serde_json::from_str(line)
                .map_err(|e| fail(format!("not an audit record: {e}")))?;
            if record.seq != expected_seq {
                return Err(fail(format!(
                    "record {} where record {expected_seq} belongs (a record was deleted, inserted or moved)",
                    record.seq
                )));
            }
            if record.prev != prev {
                return Err(fail(format!(
                    "record {} does not chain to the record before it",
                    record.seq
                )));
            }
            if !record.hash_is_intact() {
                return Err(fail(format!(
                    "record {} was edited (its hash does not match)",
                    record.seq
                )));
            }
            prev = record.hash;
            expected_seq += 1;
        }
    }
    Ok(expected_seq - 1)
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
    use crate::audit::record::Entry;

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
        }
    }

    fn lines(count: u64) -> Vec<String> {
        let mut prev = GENESIS.to_owned();
        (1..=count)
            .map(|seq| {
                let entry = entry(&format!("action-{seq}"));
                let json = serde_json::to_vec(&entry).unwrap();
                let record = Record::seal(seq, &prev, entry, &json);
                prev = record.hash.clone();
                serde_json::to_string(&record).unwrap()
            })
            .collect()
    }

    fn check(lines: &[String]) -> Result<u64, Break> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.log");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        verify(&[file])
    }

    #[test]
    fn written_lines_read_back_as_the_same_records() {
        let entry = entry("secret.read");
        let json = serde_json::to_vec(&entry).unwrap();
        let record = Record::seal(7, GENESIS, entry, &json);
        let line = crate::audit::record_line(&record, &json);
        let parsed: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed, record);
        assert!(parsed.hash_is_intact());
    }

    #[test]
    fn an_intact_log_verifies() {
        assert_eq!(check(&lines(5)).unwrap(), 5);
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
    fn a_deleted_record_is_caught() {
        let mut log = lines(5);
        log.remove(1);
        assert_eq!(check(&log).unwrap_err().line, 2);
    }

    #[test]
    fn an_inserted_record_is_caught() {
        let mut log = lines(5);
        let forged_entry = entry("forged");
        let json = serde_json::to_vec(&forged_entry).unwrap();
        let forged = Record::seal(3, GENESIS, forged_entry, &json);
        log.insert(2, serde_json::to_string(&forged).unwrap());
        let error = check(&log).unwrap_err();
        assert_eq!(error.line, 3, "{error}");
    }

    #[test]
    fn reordered_records_are_caught() {
        let mut log = lines(5);
        log.swap(1, 2);
        assert_eq!(check(&log).unwrap_err().line, 2);
    }

    #[test]
    fn a_renumbered_tail_is_caught_by_the_chain() {
        // Delete record 2 and renumber the rest: sequence numbers look fine,
        // the chain does not.
        let mut log = lines(3);
        let mut third: Record = serde_json::from_str(&log[2]).unwrap();
        third.seq = 2;
        log = vec![log[0].clone(), serde_json::to_string(&third).unwrap()];
        assert!(check(&log).unwrap_err().reason.contains("chain"));
    }
}
