//! Tink JSON keyset codec: parsing tinkey-style keysets, round trips, interop
//! of the wrap format with plain AES-GCM, and every refusal.
#![allow(clippy::unwrap_used)]

use coffer_crypto::tink::{
    KeyStatus, TinkError, TinkKey, TinkKeyset, keyset_to_json, parse_keyset_json,
};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix};

const TYPE_URL: &str = "type.googleapis.com/google.crypto.tink.AesGcmKey";
/// AesGcmKey { key_value: 00 01 … 0f }.
const VALUE_16: &str = "GhAAAQIDBAUGBwgJCgsMDQ4P";
/// AesGcmKey { key_value: 20 21 … 3f }.
const VALUE_32: &str = "GiAgISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

fn key_json(id: &str, value: &str, status: &str, prefix: &str) -> String {
    format!(
        r#"{{"keyData":{{"typeUrl":"{TYPE_URL}","value":"{value}","keyMaterialType":"SYMMETRIC"}},"status":"{status}","keyId":{id},"outputPrefixType":"{prefix}"}}"#
    )
}

fn keyset_json(primary: &str, keys: &[String]) -> String {
    format!(r#"{{"primaryKeyId":{primary},"key":[{}]}}"#, keys.join(","))
}

fn error_of(text: &str) -> String {
    parse_keyset_json(text).unwrap_err().to_string()
}

#[test]
fn parses_a_tinkey_keyset() {
    let text = keyset_json(
        "2911958584",
        &[
            key_json("2911958584", VALUE_16, "ENABLED", "TINK"),
            key_json("12345", VALUE_32, "DISABLED", "RAW"),
        ],
    );
    let keyset = parse_keyset_json(&text).unwrap();
    assert_eq!(keyset.primary_key_id, 2_911_958_584);
    assert_eq!(keyset.keys.len(), 2);

    let primary = keyset.primary().unwrap();
    assert_eq!(primary.id, 2_911_958_584);
    assert_eq!(primary.algorithm, Algorithm::Aes128Gcm);
    assert_eq!(primary.status, KeyStatus::Enabled);
    assert_eq!(primary.output_prefix, OutputPrefix::Tink);
    assert_eq!(primary.material.as_bytes(), (0u8..16).collect::<Vec<_>>());

    let second = keyset.get(12345).unwrap();
    assert_eq!(second.algorithm, Algorithm::Aes256Gcm);
    assert_eq!(second.status, KeyStatus::Disabled);
    assert_eq!(second.output_prefix, OutputPrefix::Raw);
    assert_eq!(
        second.material.as_bytes(),
        (0x20u8..0x40).collect::<Vec<_>>()
    );
}

#[test]
fn debug_output_never_contains_key_material() {
    let keyset = parse_keyset_json(&keyset_json(
        "1",
        &[key_json("1", VALUE_16, "ENABLED", "TINK")],
    ))
    .unwrap();
    let text = format!("{keyset:?}");
    assert!(text.contains("id: 1"));
    assert!(!text.contains("material:"), "{text}");
}

#[test]
fn writes_pretty_json_in_tinkey_order() {
    let keyset = TinkKeyset {
        primary_key_id: 2_911_958_584,
        keys: vec![TinkKey {
            id: 2_911_958_584,
            algorithm: Algorithm::Aes128Gcm,
            status: KeyStatus::Enabled,
            output_prefix: OutputPrefix::Tink,
            material: KeyMaterial::new(Algorithm::Aes128Gcm, (0..16).collect()).unwrap(),
        }],
    };
    let expected = format!(
        r#"{{
  "primaryKeyId": 2911958584,
  "key": [
    {{
      "keyData": {{
        "typeUrl": "{TYPE_URL}",
        "value": "{VALUE_16}",
        "keyMaterialType": "SYMMETRIC"
      }},
      "status": "ENABLED",
      "keyId": 2911958584,
      "outputPrefixType": "TINK"
    }}
  ]
}}
"#
    );
    assert_eq!(keyset_to_json(&keyset), expected);
}

#[test]
fn round_trips_through_json() {
    let text = keyset_json(
        "7",
        &[
            key_json("7", VALUE_32, "ENABLED", "TINK"),
            key_json("8", VALUE_16, "DISABLED", "LEGACY"),
            key_json("9", VALUE_16, "DESTROYED", "CRUNCHY"),
            key_json("4294967295", VALUE_32, "ENABLED", "RAW"),
        ],
    );
    let keyset = parse_keyset_json(&text).unwrap();
    let written = keyset_to_json(&keyset);
    assert_eq!(parse_keyset_json(&written).unwrap(), keyset);
    // Writing is deterministic, so a second trip is byte-identical.
    assert_eq!(
        keyset_to_json(&parse_keyset_json(&written).unwrap()),
        written
    );
    // And it is plain JSON any parser accepts.
    let value: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(value["key"][3]["keyId"], 4_294_967_295u64);
}

#[cfg(feature = "envelope")]
#[test]
fn generated_keysets_round_trip() {
    let id = coffer_crypto::random_key_id();
    let keyset = TinkKeyset {
        primary_key_id: id,
        keys: vec![TinkKey {
            id,
            algorithm: Algorithm::Aes256Gcm,
            status: KeyStatus::Enabled,
            output_prefix: OutputPrefix::Tink,
            material: KeyMaterial::generate(Algorithm::Aes256Gcm),
        }],
    };
    assert_eq!(parse_keyset_json(&keyset_to_json(&keyset)).unwrap(), keyset);
}

#[test]
fn negative_key_ids_are_read_as_twos_complement() {
    let keyset = parse_keyset_json(&keyset_json(
        "-1383008712",
        &[key_json("-1383008712", VALUE_16, "ENABLED", "TINK")],
    ))
    .unwrap();
    assert_eq!(keyset.primary_key_id, 2_911_958_584);
    assert_eq!(keyset.keys[0].id, 2_911_958_584);
}

#[test]
fn unknown_fields_are_ignored() {
    let text = format!(
        r#"{{"primaryKeyId":1,"comment":"x","key":[{{"keyData":{{"typeUrl":"{TYPE_URL}","value":"{VALUE_16}","keyMaterialType":"SYMMETRIC","extra":[1,2]}},"status":"ENABLED","keyId":1,"outputPrefixType":"TINK","note":{{"a":null}}}}]}}"#
    );
    assert_eq!(parse_keyset_json(&text).unwrap().keys.len(), 1);
}

#[test]
fn destroyed_keys_without_material_are_dropped() {
    let text = r#"{"primaryKeyId":1,"key":[
        {"keyData":{"typeUrl":"type.googleapis.com/google.crypto.tink.AesGcmKey","value":"GhAAAQIDBAUGBwgJCgsMDQ4P","keyMaterialType":"SYMMETRIC"},"status":"ENABLED","keyId":1,"outputPrefixType":"TINK"},
        {"status":"DESTROYED","keyId":2,"outputPrefixType":"TINK"}]}"#;
    let keyset = parse_keyset_json(text).unwrap();
    assert_eq!(keyset.keys.iter().map(|k| k.id).collect::<Vec<_>>(), [1]);
}

#[test]
fn refusals_say_where_the_problem_is() {
    let ok = key_json("1", VALUE_16, "ENABLED", "TINK");
    let cases: Vec<(String, &str)> = vec![
        (
            keyset_json("1", &[ok.replace("AesGcmKey", "AesSivKey")]),
            "key 1: unsupported key type type.googleapis.com/google.crypto.tink.AesSivKey",
        ),
        (
            keyset_json("1", &[key_json("1", "not*base64", "ENABLED", "TINK")]),
            "key 1: keyData.value is not valid base64",
        ),
        (
            keyset_json(
                "1",
                &[key_json("1", "GhEAAQIDBAUGBwgJCgsMDQ4P", "ENABLED", "TINK")],
            ),
            "key 1: keyData.value is not an AesGcmKey protobuf: truncated field",
        ),
        (
            keyset_json(
                "1",
                &[key_json(
                    "1",
                    "CAEaEAABAgMEBQYHCAkKCwwNDg8=",
                    "ENABLED",
                    "TINK",
                )],
            ),
            "key 1: AesGcmKey version 1 is not supported (only 0)",
        ),
        (
            keyset_json(
                "7",
                &[key_json(
                    "7",
                    "GhgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    "ENABLED",
                    "TINK",
                )],
            ),
            "key 7: AES key must be 16 or 32 bytes, got 24",
        ),
        (
            keyset_json("1", &[ok.clone(), ok.clone()]),
            "key 1 appears more than once",
        ),
        (
            keyset_json("5", std::slice::from_ref(&ok)),
            "primaryKeyId 5 is not in the keyset",
        ),
        (format!(r#"{{"key":[{ok}]}}"#), "keyset has no primaryKeyId"),
        (
            keyset_json("1", &[key_json("1", VALUE_16, "DISABLED", "TINK")]),
            "primary key 1 is DISABLED, not ENABLED",
        ),
        (
            keyset_json(
                "1",
                &[r#"{"status":"ENABLED","keyId":1,"outputPrefixType":"TINK"}"#.to_string()],
            ),
            "key 1: ENABLED key has no key material",
        ),
        (
            keyset_json("1", &[key_json("1", "", "ENABLED", "TINK")]),
            "key 1: ENABLED key has no key material",
        ),
        (
            keyset_json("1", &[key_json("1", VALUE_16, "UNKNOWN_STATUS", "TINK")]),
            "key 1: unknown status UNKNOWN_STATUS",
        ),
        (
            keyset_json("1", &[key_json("1", VALUE_16, "ENABLED", "UNKNOWN_PREFIX")]),
            "key 1: unknown outputPrefixType UNKNOWN_PREFIX",
        ),
        (
            keyset_json("1", &[ok.replace("SYMMETRIC", "REMOTE")]),
            "key 1: keyMaterialType REMOTE is not SYMMETRIC",
        ),
        (
            keyset_json("4294967296", std::slice::from_ref(&ok)),
            "keyId 4294967296 does not fit in 32 bits",
        ),
        (
            r#"{"encryptedKeyset":"AAAA","keysetInfo":{"primaryKeyId":1}}"#.to_string(),
            "encrypted keysets are not supported: decrypt it with tinkey first",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error_of(&text), expected, "{text}");
    }
    assert!(matches!(
        parse_keyset_json("{not json"),
        Err(TinkError::Json(_))
    ));
    assert!(matches!(parse_keyset_json("[]"), Err(TinkError::Json(_))));
}

#[test]
fn errors_never_echo_key_material() {
    // A bad value must not be quoted back, even partially.
    let text = keyset_json(
        "1",
        &[key_json(
            "1",
            "GhAAAQIDBAUGBwgJCgsMDQ4P!!",
            "ENABLED",
            "TINK",
        )],
    );
    let message = error_of(&text);
    assert!(!message.contains("GhAA"), "{message}");
}

#[cfg(feature = "envelope")]
mod interop {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    use coffer_crypto::{CryptoError, PREFIX_LEN, WrappingKey};

    use super::*;

    fn primary() -> TinkKey {
        let text = keyset_json(
            "2911958584",
            &[key_json("2911958584", VALUE_32, "ENABLED", "TINK")],
        );
        parse_keyset_json(&text).unwrap().keys.remove(0)
    }

    #[test]
    fn wrap_output_decrypts_with_plain_aes_gcm_after_stripping_the_prefix() {
        let key = primary();
        let wrapping = WrappingKey::new(key.id, key.output_prefix, key.material.clone());
        let blob = wrapping.wrap(b"data key bytes", b"coffer");
        assert_eq!(blob[..PREFIX_LEN], [0x01, 0xAD, 0x90, 0xF6, 0x38]);

        let cipher = Aes256Gcm::new_from_slice(key.material.as_bytes()).unwrap();
        let (nonce, body) = blob[PREFIX_LEN..].split_at(12);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: b"coffer",
                },
            )
            .unwrap();
        assert_eq!(plain, b"data key bytes");
    }

    #[test]
    fn tink_format_ciphertext_unwraps() {
        // 0x01 ‖ key id ‖ nonce ‖ ciphertext ‖ tag, made by pyca/cryptography's
        // AESGCM with key 20..3f, nonce 00..0b, aad "coffer" — Tink's layout.
        let blob = hex::decode(
            "01ad90f638000102030405060708090a0b283b33cc6a5c8598d98ba6b67834af2438bcb89e3d530aae7158995a",
        )
        .unwrap();
        let key = primary();
        let wrapping = WrappingKey::new(key.id, key.output_prefix, key.material);
        assert_eq!(
            wrapping.unwrap(&blob, b"coffer").unwrap().as_slice(),
            b"tink interop"
        );
        assert_eq!(
            wrapping.unwrap(&blob, b"other"),
            Err(CryptoError::Integrity)
        );
    }
}
