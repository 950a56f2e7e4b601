//! Wrapped keys and their output prefixes: reading a key id or unwrapping
//! arbitrary bytes under every prefix type never panics, and never opens.

#![no_main]

use coffer_crypto::prefix::{OutputPrefix, split_prefix, tink_key_id};
use coffer_crypto::{Algorithm, KeyMaterial, WrappingKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tink_key_id(data);
    for prefix in [
        OutputPrefix::Tink,
        OutputPrefix::Legacy,
        OutputPrefix::Crunchy,
        OutputPrefix::Raw,
    ] {
        let _ = split_prefix(prefix, data);
        let material = KeyMaterial::new(Algorithm::Aes256Gcm, vec![3; 32]).expect("a 32-byte key");
        let key = WrappingKey::new(0x0102_0304, prefix, material);
        assert!(key.unwrap(data, b"aad").is_err(), "forged a wrapped key");
    }
});
