//! Stored records: the sealed envelope, every record body and the legacy
//! format never panic on arbitrary bytes, and what decodes re-encodes to
//! the same bytes.

#![no_main]

use coffer_crypto::record::{DataKeySet, SecretRecord, SystemKeyRecord};
use coffer_crypto::sealed::{self, RecordKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = RecordKey::new(&[7; 32]).expect("a 32-byte key");
    let _ = sealed::open(&key, "secrets/ns/name", b'S', data);
    if let Ok(parts) = sealed::danger_parse_unverified(data) {
        let resealed = sealed::seal(&key, "k", parts.kind, parts.generation, parts.body);
        let opened = sealed::open(&key, "k", parts.kind, &resealed).expect("what was sealed opens");
        assert_eq!(opened.body, parts.body);
    }
    if let Ok(record) = SecretRecord::decode(data) {
        assert_eq!(record.encode(), data);
    }
    if let Ok(set) = DataKeySet::decode(data) {
        assert_eq!(set.encode(), data);
    }
    let _ = SecretRecord::decode_legacy(data);
    let _ = DataKeySet::decode_legacy(data);
    if let Ok(system) = SystemKeyRecord::decode(data) {
        assert_eq!(SystemKeyRecord::decode(&system.encode()), Ok(system));
    }
});
