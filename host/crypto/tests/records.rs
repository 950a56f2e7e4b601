//! Record format tests: round trips, strict decoding, and property tests that
//! decoding arbitrary bytes never panics.
#![allow(clippy::unwrap_used)]

use coffer_crypto::record::{
    DataKeyEntry, DataKeySet, DataKeyStatus, SecretMeta, SecretRecord, ValueFormat, VersionEntry,
};
use coffer_crypto::{Algorithm, CryptoError};
use proptest::prelude::*;

fn sample_secret() -> SecretRecord {
    SecretRecord {
        versions: vec![
            VersionEntry {
                version: 1,
                created_at_ms: 1_700_000_000_000,
                deleted_at_ms: Some(1_700_000_100_000),
                destroyed_at_ms: None,
                format: ValueFormat::Json,
                data_key_id: 9,
                wrapped_key: vec![1; 65],
                ciphertext: vec![2; 40],
            },
            VersionEntry {
                version: 2,
                created_at_ms: -5,
                deleted_at_ms: None,
                destroyed_at_ms: Some(1_700_000_200_000),
                format: ValueFormat::Text,
                data_key_id: u32::MAX,
                wrapped_key: vec![],
                ciphertext: vec![],
            },
        ],
        meta: SecretMeta {
            max_versions: 3,
            cas_required: true,
            updated_at_ms: 1_700_000_300_000,
            custom: [("owner", "payments"), ("ünï", "")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        },
    }
}

fn sample_keys() -> DataKeySet {
    DataKeySet {
        scope: "prod/ünïcode".into(),
        keys: vec![
            DataKeyEntry {
                id: 1,
                algorithm: Algorithm::Aes256Gcm,
                status: DataKeyStatus::Deprecated,
                created_at_ms: 10,
                updated_at_ms: 20,
                version: 3,
                kek_id: 44,
                wrapped: vec![7; 65],
            },
            DataKeyEntry {
                id: 2,
                algorithm: Algorithm::Aes128Gcm,
                status: DataKeyStatus::Active,
                created_at_ms: 30,
                updated_at_ms: 30,
                version: u64::MAX,
                kek_id: 44,
                wrapped: vec![8; 49],
            },
        ],
    }
}

#[test]
fn secret_record_round_trips_and_helpers_work() {
    let record = sample_secret();
    assert_eq!(SecretRecord::decode(&record.encode()).unwrap(), record);
    assert_eq!(record.latest().unwrap().version, 2);
    assert_eq!(
        record.get(1).unwrap().deleted_at_ms,
        Some(1_700_000_100_000)
    );
    assert!(record.get(3).is_none());
    assert!(SecretRecord::default().latest().is_none());
}

#[test]
fn data_key_set_round_trips_and_helpers_work() {
    let set = sample_keys();
    assert_eq!(DataKeySet::decode(&set.encode()).unwrap(), set);
    assert_eq!(set.active().unwrap().id, 2);
    assert_eq!(set.by_id(1).unwrap().status, DataKeyStatus::Deprecated);
    assert!(set.by_id(3).is_none());
    for status in [
        DataKeyStatus::Active,
        DataKeyStatus::Deprecated,
        DataKeyStatus::Inactive,
        DataKeyStatus::Destroyed,
    ] {
        assert_eq!(status.as_str().parse::<DataKeyStatus>(), Ok(status));
    }
    assert_eq!(DataKeyStatus::Inactive.as_str(), "inactive");
}

#[test]
fn every_truncation_and_any_trailing_byte_is_refused() {
    // A secret record cut exactly where its optional metadata starts is a
    // record without metadata; the sealed envelope around every stored
    // record is what refuses such a cut.
    let versions_only = SecretRecord {
        meta: SecretMeta::default(),
        ..sample_secret()
    }
    .encode()
    .len();
    for encoded in [sample_secret().encode(), sample_keys().encode()] {
        for len in 0..encoded.len() {
            let cut = &encoded[..len];
            match SecretRecord::decode(cut) {
                Ok(record) if len == versions_only => {
                    assert_eq!(record.meta, SecretMeta::default());
                }
                decoded => assert!(decoded.is_err(), "cut at {len}"),
            }
            assert!(DataKeySet::decode(cut).is_err(), "cut at {len}");
        }
    }
    let mut longer = sample_secret().encode();
    longer.push(0);
    assert_eq!(
        SecretRecord::decode(&longer),
        Err(CryptoError::Malformed("trailing bytes after record"))
    );
    let mut longer = sample_keys().encode();
    longer.push(0);
    assert_eq!(
        DataKeySet::decode(&longer),
        Err(CryptoError::Malformed("trailing bytes after record"))
    );
}

#[test]
fn bad_enum_bytes_are_refused() {
    let mut set = sample_keys().encode();
    // Scope (4 + len) + count (4) + id (4) = algorithm byte.
    let algorithm_at = 4 + "prod/ünïcode".len() + 4 + 4;
    set[algorithm_at] = 3;
    assert_eq!(
        DataKeySet::decode(&set),
        Err(CryptoError::Malformed("unknown algorithm code"))
    );
    set[algorithm_at] = 2;
    set[algorithm_at + 1] = 0;
    assert_eq!(
        DataKeySet::decode(&set),
        Err(CryptoError::Malformed("unknown data key status"))
    );

    let mut secret = sample_secret().encode();
    // Count (4) + version (4) + created (8) = deleted flag.
    secret[4 + 4 + 8] = 8;
    assert_eq!(
        SecretRecord::decode(&secret),
        Err(CryptoError::Malformed("bad version state flags"))
    );
}

#[test]
fn non_utf8_scope_is_refused() {
    let bytes = [0, 0, 0, 1, 0xff, 0, 0, 0, 0];
    assert_eq!(
        DataKeySet::decode(&bytes),
        Err(CryptoError::Malformed("scope is not UTF-8"))
    );
}

fn version_entry() -> impl Strategy<Value = VersionEntry> {
    (
        any::<u32>(),
        any::<i64>(),
        (any::<Option<i64>>(), any::<Option<i64>>(), any::<bool>()),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..80),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(
                version,
                created_at_ms,
                (deleted_at_ms, destroyed_at_ms, json),
                data_key_id,
                wrapped_key,
                ciphertext,
            )| {
                VersionEntry {
                    version,
                    created_at_ms,
                    deleted_at_ms,
                    destroyed_at_ms,
                    format: if json {
                        ValueFormat::Json
                    } else {
                        ValueFormat::Text
                    },
                    data_key_id,
                    wrapped_key,
                    ciphertext,
                }
            },
        )
}

fn secret_meta() -> impl Strategy<Value = SecretMeta> {
    (
        any::<u32>(),
        any::<bool>(),
        any::<i64>(),
        proptest::collection::btree_map(".{0,12}", ".{0,24}", 0..4),
    )
        .prop_map(
            |(max_versions, cas_required, updated_at_ms, custom)| SecretMeta {
                max_versions,
                cas_required,
                updated_at_ms,
                custom,
            },
        )
}

fn secret_record() -> impl Strategy<Value = SecretRecord> {
    (
        proptest::collection::vec(version_entry(), 0..8),
        secret_meta(),
    )
        .prop_map(|(mut versions, meta)| {
            versions.sort_by_key(|v| v.version);
            SecretRecord { versions, meta }
        })
}

fn data_key_entry() -> impl Strategy<Value = DataKeyEntry> {
    (
        any::<u32>(),
        prop_oneof![Just(Algorithm::Aes128Gcm), Just(Algorithm::Aes256Gcm)],
        prop_oneof![
            Just(DataKeyStatus::Active),
            Just(DataKeyStatus::Deprecated),
            Just(DataKeyStatus::Inactive),
            Just(DataKeyStatus::Destroyed),
        ],
        (any::<i64>(), any::<i64>(), any::<u64>(), any::<u32>()),
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(
            |(id, algorithm, status, (created_at_ms, updated_at_ms, version, kek_id), wrapped)| {
                DataKeyEntry {
                    id,
                    algorithm,
                    status,
                    created_at_ms,
                    updated_at_ms,
                    version,
                    kek_id,
                    wrapped,
                }
            },
        )
}

fn data_key_set() -> impl Strategy<Value = DataKeySet> {
    (".{0,24}", proptest::collection::vec(data_key_entry(), 0..6))
        .prop_map(|(scope, keys)| DataKeySet { scope, keys })
}

/// Arbitrary bytes, often behind a plausible start so decoding gets past it.
fn record_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(vec![]),
            Just(vec![0, 0, 0, 1]),
            Just(vec![0, 0, 0, 2, 0, 0, 0, 1]),
            Just(vec![1, b'S', 0, 0, 0, 1]),
        ],
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(header, body)| [header, body].concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in record_like_bytes()) {
        let _ = SecretRecord::decode(&bytes);
        let _ = DataKeySet::decode(&bytes);
        let _ = SecretRecord::decode_legacy(&bytes);
        let _ = DataKeySet::decode_legacy(&bytes);
        let _ = coffer_crypto::SystemKeyRecord::decode(&bytes);
        let _ = coffer_crypto::sealed::danger_parse_unverified(&bytes);
    }

    #[test]
    fn secret_record_encode_then_decode_is_identity(record in secret_record()) {
        prop_assert_eq!(SecretRecord::decode(&record.encode()).unwrap(), record);
    }

    #[test]
    fn data_key_set_encode_then_decode_is_identity(set in data_key_set()) {
        prop_assert_eq!(DataKeySet::decode(&set.encode()).unwrap(), set);
    }

    #[test]
    fn mutated_records_decode_or_fail_cleanly(record in secret_record(), index in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = record.encode();
        let at = index % bytes.len();
        bytes[at] = byte;
        // Whatever happens, no panic; and a successful decode re-encodes to the same bytes.
        if let Ok(decoded) = SecretRecord::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }
}
