//! Storage is not trusted. Whoever can write the database — a DBA, a
//! restored backup, a hostile storage plugin — can deny service, but a row
//! they plant is not a token, a record they edit, move or roll back is
//! refused, no sequence of API calls can make the server unable to start,
//! and a destroyed key's bytes are gone from the database files.

#![allow(clippy::unwrap_used)]

use coffer_crypto::record::{DataKeySet, DataKeyStatus};
use coffer_crypto::sealed::{RecordKey, seal};
use coffer_crypto::tink::{KeyStatus, TinkKey, TinkKeyset, keyset_to_json};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix};
use coffer_e2e::{Server, records};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn error_code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// A well-formed token nobody minted, and the storage key of its record.
fn made_up_token(seed: u8) -> (String, String) {
    let token = format!(
        "cft_{}",
        String::from_utf8(vec![b'a' + seed % 26; 43]).unwrap()
    );
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    (token, format!("tokens/{hash}"))
}

fn admin_record(key: &str) -> Vec<u8> {
    let hash = key.trim_start_matches("tokens/");
    json!({
        "id": &hash[..16], "hash": hash, "name": "planted",
        "policy": {"rules": [{"namespaces": "*", "capabilities": ["read", "write", "list", "delete", "destroy"]}],
                   "admin": ["keys:read", "keys:manage", "audit:read", "tokens:manage", "sys"]},
        "created_at_ms": 0, "expires_at_ms": null,
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn a_token_row_planted_in_the_database_is_not_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let db = dir.path().join("coffer.db");
    server.put("payments/db", "hunter2").await;

    // A plain JSON row, as older builds stored tokens.
    let (plain, key) = made_up_token(1);
    records::plant(&db, &key, &admin_record(&key)).await;
    // A sealed envelope, under a key that is not the store's.
    let (forged, key) = made_up_token(2);
    let sealed = seal(
        &RecordKey::new(&[7; 32]).unwrap(),
        &key,
        b'T',
        1,
        &admin_record(&key),
    );
    records::plant(&db, &key, &sealed).await;
    // A genuine record (a reader's) filed under another token's hash.
    let (_, created) = server
        .call(
            Method::POST,
            "/v1/auth/tokens",
            Some(json!({"name": "reader", "rules": [{"namespaces": "orders", "capabilities": ["read"]}]})),
        )
        .await;
    let reader_hash = hex::encode(Sha256::digest(
        created["token"].as_str().unwrap().as_bytes(),
    ));
    let (moved, key) = made_up_token(3);
    let genuine = records::read(&db, &format!("tokens/{reader_hash}"))
        .await
        .unwrap();
    records::plant(&db, &key, &genuine).await;

    for token in [&plain, &forged, &moved] {
        let (status, body) = server
            .call_as(token, Method::GET, "/v1/secrets/payments/db", None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let refused: Vec<Value> = server
        .audit_records()
        .into_iter()
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("token record refused"))
        })
        .collect();
    assert_eq!(refused.len(), 3, "each refusal is in the audit trail");
    assert!(server.log().contains("failed its integrity check"));
}

#[tokio::test]
async fn edited_moved_and_rolled_back_secret_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "");
    let db = dir.path().join("coffer.db");

    // A password is rotated; storage puts the old record back.
    server.put("app/db", "old-password").await;
    let old = records::read(&db, "secrets/app/db").await.unwrap();
    server.put("app/db", "new-password").await;
    server.assert_reads("app/db", "new-password").await;
    records::plant(&db, "secrets/app/db", &old).await;
    let (status, body) = server.get("app/db").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("integrity")),
        "{body}"
    );

    // A deleted version undeleted by storage: the record before the delete.
    server.put("app/gone", "v").await;
    let before = records::read(&db, "secrets/app/gone").await.unwrap();
    server
        .call(Method::DELETE, "/v1/secrets/app/gone", None)
        .await;
    records::plant(&db, "secrets/app/gone", &before).await;
    let (status, body) = server.get("app/gone").await;
    assert_eq!(error_code(&body), Some("integrity"), "{status} {body}");

    // A record copied under another name, and a record with one bit flipped.
    server.put("app/a", "value-of-a").await;
    let a = records::read(&db, "secrets/app/a").await.unwrap();
    records::plant(&db, "secrets/app/b", &a).await;
    let (_, body) = server.get("app/b").await;
    assert_eq!(error_code(&body), Some("integrity"), "{body}");
    let mut flipped = a.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    records::plant(&db, "secrets/app/a", &flipped).await;
    let (_, body) = server.get("app/a").await;
    assert_eq!(error_code(&body), Some("integrity"), "{body}");
    for (_, secret) in [("value", "value-of-a"), ("name", "app/a")] {
        assert!(!body.to_string().contains(secret), "{body}");
    }

    // What a node has not seen it cannot tell: a restarted node accepts the
    // authentic older copy it is shown first (the README says so).
    server.stop();
    let server = Server::start(dir.path(), "");
    server.assert_reads("app/db", "old-password").await;
}

/// A node writes a secret it wrote last from the copy it kept, without
/// reading it. A rollback storage made since must neither be taken as the
/// record nor cost a version: the write is refused when the revision
/// moved, and when storage forged the revision too, the write lands on
/// the node's copy, with every version.
#[tokio::test]
async fn a_write_from_a_kept_copy_neither_takes_a_rollback_nor_loses_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let db = dir.path().join("coffer.db");
    let mut old = Vec::new();
    for name in ["app/moved", "app/forged"] {
        server.put(name, "one").await;
        old.push(
            records::read(&db, &format!("secrets/{name}"))
                .await
                .unwrap(),
        );
        server.put(name, "two").await;
    }

    records::plant(&db, "secrets/app/moved", &old[0]).await;
    let (status, body) = server.put("app/moved", "three").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("integrity")),
        "{body}"
    );

    records::plant_keeping_revision(&db, "secrets/app/forged", &old[1]).await;
    let (status, body) = server.put("app/forged", "three").await;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::OK, &json!(3)),
        "{body}"
    );
    for (version, value) in [(1, "one"), (2, "two"), (3, "three")] {
        let (status, read) = server.get(&format!("app/forged?version={version}")).await;
        assert_eq!(
            (status, read["value"].as_str()),
            (StatusCode::OK, Some(value))
        );
    }
}

#[tokio::test]
async fn a_data_key_set_copied_to_another_namespace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let db = dir.path().join("coffer.db");
    server.put("alpha/x", "a").await;
    server.put("beta/y", "b").await;
    let alpha = records::read(&db, "datakeys/alpha").await.unwrap();
    records::plant(&db, "datakeys/beta", &alpha).await;
    // Whatever this node cached, it reads the set again on a key miss.
    let (status, body) = server.call(Method::GET, "/v1/keys/beta", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("integrity")),
        "{body}"
    );
}

#[tokio::test]
async fn no_number_of_rotations_can_keep_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "[janitor]\nenabled = false\n");
    server.put("spin/x", "v").await;
    let mut refused = None;
    for i in 0..1_100 {
        let (status, body) = server
            .call(Method::POST, "/v1/keys/spin/rotate", Some(json!({})))
            .await;
        if status != StatusCode::OK {
            refused = Some((i, status, body));
            break;
        }
    }
    let (rotations, status, body) = refused.expect("rotation is refused at some point");
    assert_eq!(
        rotations, 999,
        "the first key plus 999 rotations fill the set"
    );
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("destroy retired keys"),
        "{body}"
    );
    server.stop();
    let server = Server::start(dir.path(), "");
    server.assert_reads("spin/x", "v").await;
}

#[tokio::test]
async fn a_kek_of_every_output_prefix_type_serves_across_a_restart() {
    for prefix in [
        OutputPrefix::Tink,
        OutputPrefix::Legacy,
        OutputPrefix::Crunchy,
        OutputPrefix::Raw,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let keyset = dir.path().join("kek").join("keyset.json");
        std::fs::create_dir_all(keyset.parent().unwrap()).unwrap();
        let tink = TinkKeyset {
            primary_key_id: 0x1234_5678,
            keys: vec![TinkKey {
                id: 0x1234_5678,
                algorithm: Algorithm::Aes256Gcm,
                status: KeyStatus::Enabled,
                output_prefix: prefix,
                material: KeyMaterial::generate(Algorithm::Aes256Gcm),
            }],
        };
        std::fs::write(&keyset, keyset_to_json(&tink)).unwrap();
        let config = coffer_e2e::keyring_file(&keyset, false, false);
        let data = dir.path().join("data");
        let mut server = Server::start(&data, &config);
        server.put("app/x", "across restarts").await;
        server.stop();
        let server = Server::start(&data, &config);
        server.assert_reads("app/x", "across restarts").await;
        println!("{prefix}: ok");
    }
}

/// Whether `needle` appears anywhere in `file`.
#[tokio::test]
async fn a_destroyed_data_key_leaves_no_bytes_in_the_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        "[keys]\ncache_ttl_ms = 100\ngrace_ms = 0\n[janitor]\nenabled = false\n",
    );
    let db = dir.path().join("coffer.db");
    for i in 0..5 {
        server.put(&format!("shred/s{i}"), "v").await;
    }
    let set = DataKeySet::decode(&records::body(&db, "datakeys/shred").await).unwrap();
    let old = set.keys[0].clone();
    assert!(
        records::file_holds(&db, &old.wrapped)
            || records::file_holds(&dir.path().join("coffer.db-wal"), &old.wrapped)
    );

    let (status, _) = server
        .call(Method::POST, "/v1/keys/shred/rotate", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, pass) = server
        .call(Method::POST, "/v1/keys/shred/reencrypt", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{pass}");
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/v1/keys/shred/{}/destroy", old.id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let set = DataKeySet::decode(&records::body(&db, "datakeys/shred").await).unwrap();
    assert_eq!(set.by_id(old.id).unwrap().status, DataKeyStatus::Destroyed);
    for file in ["coffer.db", "coffer.db-wal"] {
        assert!(
            !records::file_holds(&dir.path().join(file), &old.wrapped),
            "{file} still holds the destroyed key's wrapped bytes"
        );
    }
    server.assert_reads("shred/s0", "v").await;
}

#[tokio::test]
async fn secret_names_reach_the_server_log_only_as_pseudonyms() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let db = dir.path().join("coffer.db");
    server.put("app/quarterly-merger-codename", "v").await;
    records::plant(&db, "secrets/app/quarterly-merger-broken", b"damaged").await;
    server.call(Method::GET, "/v1/keys/app", None).await;
    server
        .call(Method::POST, "/v1/keys/app/rotate", Some(json!({})))
        .await;
    server
        .call(Method::POST, "/v1/keys/app/reencrypt", Some(json!({})))
        .await;
    server.get("app/quarterly-merger-broken").await;
    let log = server.log();
    assert!(log.contains("hmac-sha256:"), "{log}");
    assert!(!log.contains("quarterly-merger"), "{log}");
}

#[tokio::test]
async fn a_store_an_older_build_wrote_is_refused_until_upgraded_and_then_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "");
    server.put("app/db", "kept across the upgrade").await;
    server.put("app/db", "the latest").await;
    let token = server.token.clone();
    server.stop();

    // Turn the store back into what older builds wrote: the same bodies,
    // unsealed (`0x01 ‖ kind ‖ body`, tokens as plain JSON), and no marker.
    let db = dir.path().join("coffer.db");
    for key in records::keys(&db).await {
        let kind = if key.starts_with("secrets/") {
            Some(b'S')
        } else if key.starts_with("datakeys/") {
            Some(b'D')
        } else if key.starts_with("tokens/") {
            None
        } else {
            if key == "sys/format" {
                records::remove(&db, &key).await;
            }
            continue;
        };
        let body = records::body(&db, &key).await;
        let legacy = match kind {
            Some(kind) => [&[1, kind][..], &body].concat(),
            None => body,
        };
        records::plant(&db, &key, &legacy).await;
    }

    let stderr = coffer_e2e::server::refused_start(dir.path(), "", &[]);
    assert!(stderr.contains("coffer upgrade"), "{stderr}");
    let output = std::process::Command::new(coffer_e2e::server::coffer_binary())
        .args(["upgrade", "--config"])
        .arg(dir.path().join("coffer.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("sealed 1 secret record(s), 1 data key set(s) and 1 token record(s)"),
        "{said}"
    );

    let mut server = Server::start(dir.path(), "");
    server.token = token;
    server.assert_reads("app/db", "the latest").await;
    server
        .assert_reads("app/db?version=1", "kept across the upgrade")
        .await;
}
