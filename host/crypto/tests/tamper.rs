//! Tamper tests: every way of altering or relocating stored ciphertext must
//! fail loudly with the right error, never decrypt to garbage, never panic.
#![cfg(feature = "envelope")]
#![allow(clippy::unwrap_used)]

use coffer_crypto::aad::data_key_aad;
use coffer_crypto::envelope::{SealedValue, open_value, seal_value};
use coffer_crypto::{Algorithm, CryptoError, KeyMaterial, OutputPrefix, PREFIX_LEN, WrappingKey};

const DATA_KEY_ID: u32 = 0x0A0B_0C0D;

fn data_key() -> WrappingKey {
    WrappingKey::new(
        DATA_KEY_ID,
        OutputPrefix::Tink,
        KeyMaterial::generate(Algorithm::Aes256Gcm),
    )
}

fn flip(blob: &[u8], bit: usize) -> Vec<u8> {
    let mut out = blob.to_vec();
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

#[test]
fn flipped_bit_anywhere_in_wrapped_key_or_ciphertext_is_detected() {
    let key = data_key();
    let sealed = seal_value(&key, "team", "db-password", 3, b"hunter2");
    assert_eq!(
        open_value(&key, "team", "db-password", 3, &sealed)
            .unwrap()
            .as_slice(),
        b"hunter2"
    );

    for bit in 0..sealed.wrapped_key.len() * 8 {
        let tampered = SealedValue {
            wrapped_key: flip(&sealed.wrapped_key, bit),
            ..sealed.clone()
        };
        let result = open_value(&key, "team", "db-password", 3, &tampered);
        match bit / 8 {
            // The start byte: no longer a TINK prefix.
            0 => assert!(
                matches!(result, Err(CryptoError::Malformed(_))),
                "bit {bit}: {result:?}"
            ),
            // The key id: names another key.
            1..PREFIX_LEN => assert!(
                matches!(
                    result,
                    Err(CryptoError::KeyIdMismatch {
                        expected: DATA_KEY_ID,
                        ..
                    })
                ),
                "bit {bit}: {result:?}"
            ),
            _ => assert_eq!(result, Err(CryptoError::Integrity), "bit {bit}"),
        }
    }
    for bit in 0..sealed.ciphertext.len() * 8 {
        let tampered = SealedValue {
            ciphertext: flip(&sealed.ciphertext, bit),
            ..sealed.clone()
        };
        assert_eq!(
            open_value(&key, "team", "db-password", 3, &tampered),
            Err(CryptoError::Integrity),
            "bit {bit}"
        );
    }
}

#[test]
fn truncated_blobs_are_malformed_or_integrity_and_never_panic() {
    let key = data_key();
    let sealed = seal_value(&key, "ns", "name", 1, b"some value");
    for len in 0..sealed.wrapped_key.len() {
        let cut = SealedValue {
            wrapped_key: sealed.wrapped_key[..len].to_vec(),
            ..sealed.clone()
        };
        let result = open_value(&key, "ns", "name", 1, &cut);
        assert!(
            matches!(
                result,
                Err(CryptoError::Malformed(_) | CryptoError::Integrity)
            ),
            "wrapped key cut to {len}: {result:?}"
        );
    }
    for len in 0..sealed.ciphertext.len() {
        let cut = SealedValue {
            ciphertext: sealed.ciphertext[..len].to_vec(),
            ..sealed.clone()
        };
        let result = open_value(&key, "ns", "name", 1, &cut);
        assert!(
            matches!(
                result,
                Err(CryptoError::Malformed(_) | CryptoError::Integrity)
            ),
            "ciphertext cut to {len}: {result:?}"
        );
    }
    // Extra bytes are as bad as missing ones.
    let mut longer = sealed.clone();
    longer.ciphertext.push(0);
    assert_eq!(
        open_value(&key, "ns", "name", 1, &longer),
        Err(CryptoError::Integrity)
    );
}

#[test]
fn sealed_value_moved_to_another_name_version_or_namespace_fails_integrity() {
    let key = data_key();
    let sealed = seal_value(&key, "prod", "api-key", 7, b"value");
    assert!(open_value(&key, "prod", "api-key", 7, &sealed).is_ok());
    for (namespace, name, version) in [
        ("prod", "api-key2", 7),
        ("prod", "api-ke", 7),
        ("prod", "API-KEY", 7),
        ("prod", "api-key", 6),
        ("prod", "api-key", 8),
        ("staging", "api-key", 7),
        ("pro", "dapi-key", 7),
    ] {
        assert_eq!(
            open_value(&key, namespace, name, version, &sealed),
            Err(CryptoError::Integrity),
            "{namespace}/{name}@{version}"
        );
    }
}

#[test]
fn wrapped_key_swapped_between_versions_fails_integrity() {
    let key = data_key();
    let v1 = seal_value(&key, "ns", "name", 1, b"one");
    let v2 = seal_value(&key, "ns", "name", 2, b"two");
    let mixed = SealedValue {
        wrapped_key: v1.wrapped_key.clone(),
        ciphertext: v2.ciphertext.clone(),
    };
    assert_eq!(
        open_value(&key, "ns", "name", 1, &mixed),
        Err(CryptoError::Integrity)
    );
    assert_eq!(
        open_value(&key, "ns", "name", 2, &mixed),
        Err(CryptoError::Integrity)
    );
}

#[test]
fn wrapped_data_key_moved_to_another_scope_fails_integrity() {
    let kek = WrappingKey::new(
        77,
        OutputPrefix::Tink,
        KeyMaterial::generate(Algorithm::Aes256Gcm),
    );
    let data_key = KeyMaterial::generate(Algorithm::Aes256Gcm);
    let wrapped = kek.wrap(
        data_key.as_bytes(),
        &data_key_aad("billing", DATA_KEY_ID, Algorithm::Aes256Gcm),
    );

    let opened = kek
        .unwrap(
            &wrapped,
            &data_key_aad("billing", DATA_KEY_ID, Algorithm::Aes256Gcm),
        )
        .unwrap();
    assert_eq!(opened.as_slice(), data_key.as_bytes());
    for aad in [
        data_key_aad("marketing", DATA_KEY_ID, Algorithm::Aes256Gcm),
        data_key_aad("billing", DATA_KEY_ID + 1, Algorithm::Aes256Gcm),
        data_key_aad("billing", DATA_KEY_ID, Algorithm::Aes128Gcm),
    ] {
        assert_eq!(kek.unwrap(&wrapped, &aad), Err(CryptoError::Integrity));
    }
}

#[test]
fn wrong_key_id_prefix_is_key_id_mismatch() {
    let key = data_key();
    let sealed = seal_value(&key, "ns", "name", 1, b"v");
    // Same material under another id: the prefix, not the tag, catches it.
    let other = WrappingKey::new(DATA_KEY_ID + 1, OutputPrefix::Tink, key.material().clone());
    assert_eq!(
        open_value(&other, "ns", "name", 1, &sealed),
        Err(CryptoError::KeyIdMismatch {
            expected: DATA_KEY_ID + 1,
            found: DATA_KEY_ID
        })
    );
}

#[test]
fn right_id_but_wrong_material_fails_integrity() {
    let key = data_key();
    let sealed = seal_value(&key, "ns", "name", 1, b"v");
    let impostor = data_key();
    assert_eq!(
        open_value(&impostor, "ns", "name", 1, &sealed),
        Err(CryptoError::Integrity)
    );
}

#[test]
fn raw_wrapping_keys_have_no_prefix_and_still_authenticate() {
    let key = WrappingKey::new(
        5,
        OutputPrefix::Raw,
        KeyMaterial::generate(Algorithm::Aes128Gcm),
    );
    let blob = key.wrap(b"payload", b"ad");
    assert_eq!(blob.len(), 12 + 7 + 16);
    assert_eq!(key.unwrap(&blob, b"ad").unwrap().as_slice(), b"payload");
    assert_eq!(
        key.unwrap(&flip(&blob, 0), b"ad"),
        Err(CryptoError::Integrity)
    );
}
