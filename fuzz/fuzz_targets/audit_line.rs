//! Audit lines: parsing an arbitrary line never panics, and a record that
//! parses writes back to a line that parses to the same record, whose
//! chain value is checked without panicking.

#![no_main]

use coffer::audit::record::{ChainKey, Record, line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ChainKey::derive(&[9; 32]);
    let Ok(record) = serde_json::from_slice::<Record>(data) else {
        return;
    };
    let _ = key.is_intact(&record);
    let entry = serde_json::to_vec(&record.entry).expect("an entry serializes");
    if record.mac.is_some() && record.hash.is_none() {
        let written = line(&record, &entry);
        let again: Record = serde_json::from_slice(&written).expect("a written line parses");
        assert_eq!(again.entry, record.entry);
        assert_eq!(again.seq, record.seq);
    }
});
