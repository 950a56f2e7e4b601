//! Keyset compatibility with real Google Tink (PyPI `tink`): coffer runs on
//! a keyset Tink created, Tink decrypts the data keys coffer wrapped with
//! it, and coffer unwraps what Tink encrypted.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use coffer_crypto::aad::data_key_aad;
use coffer_crypto::envelope::{SealedValue, open_value};
use coffer_crypto::record::{DataKeySet, SecretRecord};
use coffer_crypto::tink::parse_keyset_json;
use coffer_crypto::{KeyMaterial, OutputPrefix, WrappingKey};
use coffer_e2e::python::tink_tool;
use coffer_e2e::{Server, records};
use reqwest::StatusCode;

fn keyring_config(keyset: &Path) -> String {
    coffer_e2e::keyring_file(keyset, false, false)
}

async fn coffer_and_tink_agree_on(template: &str) {
    let dir = tempfile::tempdir().unwrap();
    let keyset = dir.path().join("keys").join("tink-keyset.json");
    std::fs::create_dir_all(keyset.parent().unwrap()).unwrap();
    tink_tool(&["create-keyset", template, keyset.to_str().unwrap()]);
    let tink_primary: u32 = tink_tool(&["primary-id", keyset.to_str().unwrap()])
        .parse()
        .unwrap();
    let before = std::fs::read(&keyset).unwrap();

    let mut server = Server::start(&dir.path().join("data"), &keyring_config(&keyset));
    let (status, _) = server.put("interop/greeting", "hello tink").await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = server.get("interop/greeting").await;
    assert_eq!(body["value"], "hello tink");
    let (status, body) = server
        .call(reqwest::Method::POST, "/v1/sys/kek/rotate", None)
        .await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        message.contains("writable = true") && message.contains("coffer kek reload"),
        "a read-only keyset says what to do: {message}"
    );
    server.stop();
    assert_eq!(
        std::fs::read(&keyset).unwrap(),
        before,
        "a read-only keyring never rewrites the keyset"
    );

    // The namespace's data key is wrapped by Tink's primary key...
    let db = dir.path().join("data").join("coffer.db");
    let set = DataKeySet::decode(&records::body(&db, "datakeys/interop").await).unwrap();
    let data_key = &set.keys[0];
    assert_eq!(data_key.kek_id, tink_primary);

    // ...so Tink itself unwraps it, given coffer's associated data.
    let aad = data_key_aad("interop", data_key.id, data_key.algorithm);
    let plain = tink_tool(&[
        "decrypt",
        keyset.to_str().unwrap(),
        &hex::encode(&data_key.wrapped),
        &hex::encode(&aad),
    ]);
    let material = KeyMaterial::new(data_key.algorithm, hex::decode(plain).unwrap()).unwrap();

    // And the key Tink recovered opens the stored secret.
    let record =
        SecretRecord::decode(&records::body(&db, "secrets/interop/greeting").await).unwrap();
    let version = record.latest().unwrap();
    let sealed = SealedValue {
        wrapped_key: version.wrapped_key.clone(),
        ciphertext: version.ciphertext.clone(),
    };
    let wrapping = WrappingKey::new(data_key.id, OutputPrefix::Tink, material);
    let value = open_value(&wrapping, "interop", "greeting", version.version, &sealed).unwrap();
    assert_eq!(value.as_slice(), b"hello tink");
}

#[tokio::test]
async fn coffer_runs_on_an_aes128_keyset_tink_created_and_tink_unwraps_its_data_keys() {
    coffer_and_tink_agree_on("AES128_GCM").await;
}

#[tokio::test]
async fn coffer_runs_on_an_aes256_keyset_tink_created_and_tink_unwraps_its_data_keys() {
    coffer_and_tink_agree_on("AES256_GCM").await;
}

#[test]
fn coffer_unwraps_what_tink_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let keyset_path = dir.path().join("keyset.json");
    tink_tool(&["create-keyset", "AES256_GCM", keyset_path.to_str().unwrap()]);
    let keyset = parse_keyset_json(&std::fs::read_to_string(&keyset_path).unwrap()).unwrap();
    let key = keyset
        .keys
        .iter()
        .find(|k| k.id == keyset.primary_key_id)
        .unwrap();
    let wrapping = WrappingKey::new(key.id, key.output_prefix, key.material.clone());

    let aad = b"coffer interop";
    let ciphertext = tink_tool(&[
        "encrypt",
        keyset_path.to_str().unwrap(),
        &hex::encode(b"tink wrote this"),
        &hex::encode(aad),
    ]);
    let plain = wrapping
        .unwrap(&hex::decode(ciphertext).unwrap(), aad)
        .unwrap();
    assert_eq!(plain.as_slice(), b"tink wrote this");
    assert!(
        wrapping
            .unwrap(
                &hex::decode(tink_tool(&[
                    "encrypt",
                    keyset_path.to_str().unwrap(),
                    "00",
                    ""
                ]))
                .unwrap(),
                aad
            )
            .is_err()
    );
}

#[tokio::test]
async fn a_created_keyset_is_one_tink_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let keyset = dir.path().join("keyring").join("keyset.json");
    let primary: u32 = tink_tool(&["primary-id", keyset.to_str().unwrap()])
        .parse()
        .unwrap();
    let parsed = parse_keyset_json(&std::fs::read_to_string(&keyset).unwrap()).unwrap();
    assert_eq!(parsed.primary_key_id, primary);
    drop(server);
}
