//! The binary part of a Tink keyset: arbitrary bytes as the `AesGcmKey`
//! protobuf inside an otherwise valid keyset never panic the parser.

#![no_main]

use base64::Engine as _;
use coffer_crypto::tink::parse_keyset_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let value = base64::engine::general_purpose::STANDARD.encode(data);
    let text = format!(
        r#"{{"primaryKeyId":1,"key":[{{"keyData":{{"typeUrl":"type.googleapis.com/google.crypto.tink.AesGcmKey","value":"{value}","keyMaterialType":"SYMMETRIC"}},"status":"ENABLED","keyId":1,"outputPrefixType":"TINK"}}]}}"#
    );
    if let Ok(keyset) = parse_keyset_json(&text) {
        let len = keyset.keys[0].material.len();
        assert!(len == 16 || len == 32);
    }
});
