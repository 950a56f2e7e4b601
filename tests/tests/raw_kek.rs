//! The keyring-file plugin's raw-key source: a base64 256-bit KEK from the
//! configuration or from an environment variable granted to the plugin,
//! rotated with a second, unwrap-only key, and refused clearly (without
//! echoing the key) when misconfigured.

#![allow(clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coffer_e2e::Server;
use coffer_e2e::server::refused_start;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

const VAR: &str = "E2E_ROOT_KEY";

/// A 256-bit test key derived from `label`.
fn key(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

/// The id coffer gives a raw key: SHA-256("coffer.raw-kek.v1" ‖ key), first 4 bytes.
fn key_id(key: &[u8; 32]) -> u32 {
    let digest = Sha256::new()
        .chain_update(b"coffer.raw-kek.v1")
        .chain_update(key)
        .finalize();
    u32::from_be_bytes(digest[..4].try_into().unwrap())
}

/// A `[keyring]` section on keyring-file with `config` lines, granting `env`.
fn keyring(config: &str, env: &[&str]) -> String {
    format!("[keyring]\nplugin = \"keyring-file\"\nenv = {env:?}\n[keyring.config]\n{config}\n")
}

async fn assert_reads(server: &Server, path: &str, value: &str) {
    let (status, body) = server.get(path).await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some(value)),
        "{body}"
    );
}

async fn assert_writes(server: &Server, path: &str, value: &str) {
    let (status, body) = server.put(path, value).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn assert_hidden(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "a key leaked into:\n{text}");
    }
}

#[tokio::test]
async fn a_key_from_a_granted_variable_serves_secrets_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let root = STANDARD.encode(key("granted"));
    let config = keyring(&format!("key_env = {VAR:?}"), &[VAR]);
    let env = [(VAR, root.as_str())];

    let mut server = Server::start_with_env(&data, &config, &env);
    assert_writes(&server, "app/db/password", "hunter2").await;
    server.stop();

    let server = Server::start_with_env(&data, &config, &env);
    assert_reads(&server, "app/db/password", "hunter2").await;
    assert_writes(&server, "other/token", "t0k3n").await;
    assert_reads(&server, "other/token", "t0k3n").await;

    assert!(!data.join("keyring").exists(), "no keyset file was created");
    let log = server.log();
    assert_hidden(&log, &[&root]);
    assert!(!log.contains("next to the data it protects"), "{log}");
    assert!(!log.contains("root key sits in the configuration"), "{log}");
}

/// The operator's rotation: the new key in `key`, the old one in
/// `rotation_key`, restart, re-wrap, then drop `rotation_key`.
#[tokio::test]
async fn a_new_key_with_the_old_one_as_rotation_key_keeps_old_secrets_readable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Either base64 alphabet, padded or not.
    let old = URL_SAFE_NO_PAD.encode(key("old"));
    let new = STANDARD.encode(key("new"));

    let mut server = Server::start(&data, &keyring(&format!("key = {old:?}"), &[]));
    assert_writes(&server, "app/before", "under the old key").await;
    server.stop();

    let rotating = keyring(&format!("key = {new:?}\nrotation_key = {old:?}"), &[]);
    let mut server = Server::start(&data, &rotating);
    assert_reads(&server, "app/before", "under the old key").await;
    assert_writes(&server, "app/after", "same namespace").await;
    assert_writes(&server, "fresh/after", "new namespace").await;
    assert_reads(&server, "app/after", "same namespace").await;
    assert_reads(&server, "fresh/after", "new namespace").await;

    // coffer cannot rotate a key it does not own, but it re-wraps onto the new one.
    let (status, body) = server
        .call(Method::POST, "/v1/sys/kek/rotate", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot be rewritten by coffer") && message.contains("rotation_key"),
        "{message}"
    );
    let (status, report) = server
        .call(Method::POST, "/v1/sys/kek/rewrap", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["primary_key_id"], key_id(&key("new")));
    server.stop();

    let server = Server::start(&data, &keyring(&format!("key = {new:?}"), &[]));
    assert_reads(&server, "app/before", "under the old key").await;
    assert_reads(&server, "fresh/after", "new namespace").await;

    let log = server.log();
    assert_hidden(&log, &[&old, &new]);
    // The keyring says so when it opens (once per instance it starts).
    assert!(
        log.matches("root key sits in the configuration").count() >= 3,
        "a warning at every start:\n{log}"
    );
}

#[tokio::test]
async fn a_server_whose_old_key_is_gone_refuses_to_start_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let old_key = key("old");
    let old = STANDARD.encode(old_key);
    let new = STANDARD.encode(key("new"));

    let mut server = Server::start(&data, &keyring(&format!("key = {old:?}"), &[]));
    assert_writes(&server, "app/secret", "v").await;
    server.stop();

    let stderr = refused_start(&data, &keyring(&format!("key = {new:?}"), &[]), &[]);
    assert!(
        stderr.contains("refusing to serve")
            && stderr.contains(&format!("KEK {}", key_id(&old_key))),
        "{stderr}"
    );
    assert_hidden(&stderr, &[&old, &new]);
}

#[test]
fn a_key_variable_must_be_granted_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let root = STANDARD.encode(key("ungranted"));
    let by_variable = format!("key_env = {VAR:?}");

    let stderr = refused_start(dir.path(), &keyring(&by_variable, &[]), &[(VAR, &root)]);
    assert!(
        stderr.contains(&format!("environment variable {VAR}"))
            && stderr.contains(&format!("env = [\"{VAR}\"]")),
        "{stderr}"
    );
    assert_hidden(&stderr, &[&root]);

    let stderr = refused_start(dir.path(), &keyring(&by_variable, &[VAR]), &[]);
    assert!(
        stderr.contains(&format!("keyring.env: {VAR} is not set")),
        "{stderr}"
    );
}

#[test]
fn a_malformed_key_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let short = STANDARD.encode([7u8; 16]);
    for (bad, expected) in [
        ("not*base64!", "is not valid base64"),
        (short.as_str(), "decodes to 16 bytes"),
    ] {
        let inline = keyring(&format!("key = {bad:?}"), &[]);
        let stderr = refused_start(dir.path(), &inline, &[]);
        assert!(
            stderr.contains("config key `key`") && stderr.contains(expected),
            "{stderr}"
        );
        assert_hidden(&stderr, &[bad]);

        let by_variable = keyring(&format!("key_env = {VAR:?}"), &[VAR]);
        let stderr = refused_start(dir.path(), &by_variable, &[(VAR, bad)]);
        assert!(
            stderr.contains(&format!("environment variable {VAR}")) && stderr.contains(expected),
            "{stderr}"
        );
        assert_hidden(&stderr, &[bad]);
    }
}

#[test]
fn a_key_cannot_be_combined_with_a_keyset_file_or_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = STANDARD.encode(key("combined"));
    let keyset_dir = dir.path().join("keys");
    let with_file = format!(
        "key = {root:?}\ncreate_if_missing = true\n[keyring.files]\nkeyset = {{ path = {:?} }}",
        keyset_dir.join("keyset.json").display().to_string()
    );
    let stderr = refused_start(&dir.path().join("data"), &keyring(&with_file, &[]), &[]);
    assert!(
        stderr.contains("`key` and `create_if_missing` are mutually exclusive"),
        "{stderr}"
    );
    assert!(!keyset_dir.exists(), "no key file directory was prepared");
    assert_hidden(&stderr, &[&root]);

    let both = format!("key = {root:?}\nkey_env = {VAR:?}");
    let stderr = refused_start(
        &dir.path().join("data"),
        &keyring(&both, &[VAR]),
        &[(VAR, &root)],
    );
    assert!(stderr.contains("either `key` or `key_env`"), "{stderr}");
    assert_hidden(&stderr, &[&root]);
}
