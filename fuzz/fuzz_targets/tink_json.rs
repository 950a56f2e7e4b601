//! Tink JSON keysets: parsing arbitrary text never panics, and a keyset
//! that parses writes back to JSON that parses to the same keyset.

#![no_main]

use coffer_crypto::tink::{keyset_to_json, parse_keyset_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(keyset) = parse_keyset_json(text) {
        let again = parse_keyset_json(&keyset_to_json(&keyset)).expect("written keysets parse");
        assert_eq!(again, keyset);
    }
});
