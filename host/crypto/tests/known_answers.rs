//! Known-answer tests for the raw AES-GCM primitive: the GCM specification's
//! test cases and Wycheproof's 96-bit-nonce, 128-bit-tag groups.
#![cfg(feature = "envelope")]
#![allow(clippy::unwrap_used)]

use coffer_crypto::aead::subtle::{open_with_nonce, seal_with_nonce};
use coffer_crypto::{Algorithm, CryptoError, KeyMaterial};
use serde_json::Value;

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().unwrap()).unwrap()
}

fn key(raw: Vec<u8>) -> KeyMaterial {
    let algorithm = Algorithm::from_key_len(raw.len()).unwrap();
    KeyMaterial::new(algorithm, raw).unwrap()
}

fn nonce(raw: Vec<u8>) -> [u8; 12] {
    raw.try_into().unwrap()
}

#[test]
fn gcm_spec_test_cases_encrypt_and_decrypt_exactly() {
    let doc: Value = serde_json::from_str(include_str!("vectors/gcm_spec.json")).unwrap();
    let tests = doc["tests"].as_array().unwrap();
    let numbers: Vec<u64> = tests
        .iter()
        .map(|t| t["testCase"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4, 13, 14, 15, 16]);
    for t in tests {
        let case = &t["testCase"];
        let key = key(bytes(t, "key"));
        let iv = nonce(bytes(t, "iv"));
        let (aad, plaintext) = (bytes(t, "aad"), bytes(t, "plaintext"));
        let expected = [bytes(t, "ciphertext"), bytes(t, "tag")].concat();

        assert_eq!(
            seal_with_nonce(&key, &iv, &plaintext, &aad),
            expected,
            "test case {case}"
        );
        let opened = open_with_nonce(&key, &iv, &expected, &aad).unwrap();
        assert_eq!(opened.as_slice(), plaintext, "test case {case}");
    }
}

#[test]
fn wycheproof_valid_vectors_match_and_invalid_ones_fail_integrity() {
    let doc: Value = serde_json::from_str(include_str!("vectors/wycheproof_aes_gcm.json")).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        assert_eq!(group["ivSize"], 96);
        assert_eq!(group["tagSize"], 128);
        for t in group["tests"].as_array().unwrap() {
            let id = &t["tcId"];
            let key = key(bytes(t, "key"));
            let iv = nonce(bytes(t, "iv"));
            let (aad, msg) = (bytes(t, "aad"), bytes(t, "msg"));
            let ct_tag = [bytes(t, "ct"), bytes(t, "tag")].concat();
            match t["result"].as_str().unwrap() {
                "valid" => {
                    valid += 1;
                    assert_eq!(seal_with_nonce(&key, &iv, &msg, &aad), ct_tag, "tcId {id}");
                    let opened = open_with_nonce(&key, &iv, &ct_tag, &aad).unwrap();
                    assert_eq!(opened.as_slice(), msg, "tcId {id}");
                }
                "invalid" => {
                    invalid += 1;
                    assert_eq!(
                        open_with_nonce(&key, &iv, &ct_tag, &aad),
                        Err(CryptoError::Integrity),
                        "tcId {id}"
                    );
                }
                other => panic!("tcId {id}: unexpected result {other}"),
            }
        }
    }
    assert_eq!(doc["numberOfTests"], valid + invalid);
    assert!(
        valid >= 30 && invalid >= 54,
        "{valid} valid, {invalid} invalid"
    );
}
