//! `coffer keyset …` edits Tink JSON keysets the way tinkey does, checked
//! with real Google Tink; and a keyset rotated that way keeps every secret
//! readable, while a server whose keyset lost a KEK refuses to start.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use coffer_e2e::Server;
use coffer_e2e::python::tink_tool;
use coffer_e2e::server::coffer_binary;
use reqwest::StatusCode;

fn keyset(args: &[&str]) -> Output {
    Command::new(coffer_binary())
        .arg("keyset")
        .args(args)
        .output()
        .unwrap()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn key_ids(listing: &str) -> Vec<u32> {
    listing
        .lines()
        .filter_map(|l| l.strip_prefix("key "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn keysets_edited_by_coffer_are_read_by_tink_like_tinkey_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyset.json");
    let path = file.to_str().unwrap();
    ok(keyset(&[
        "create",
        "--out",
        path,
        "--key-template",
        "AES128_GCM",
    ]));
    let first: u32 = tink_tool(&["primary-id", path]).parse().unwrap();
    assert_eq!(key_ids(&ok(keyset(&["list", "--in", path]))), [first]);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let old_ciphertext = tink_tool(&["encrypt", path, "6f6c64", "00"]);

    ok(keyset(&["add-key", "--in", path]));
    let ids = key_ids(&ok(keyset(&["list", "--in", path])));
    let second = *ids.iter().find(|id| **id != first).unwrap();
    assert_eq!(
        tink_tool(&["primary-id", path]),
        first.to_string(),
        "adding does not promote"
    );
    ok(keyset(&[
        "promote",
        "--in",
        path,
        "--key-id",
        &second.to_string(),
    ]));
    assert_eq!(tink_tool(&["primary-id", path]), second.to_string());
    let new_ciphertext = tink_tool(&["encrypt", path, "6e6577", "00"]);
    assert_eq!(
        &new_ciphertext[2..10],
        format!("{second:08x}"),
        "Tink now encrypts with the promoted key"
    );
    assert_eq!(
        tink_tool(&["decrypt", path, &old_ciphertext, "00"]),
        "6f6c64",
        "old ciphertexts still decrypt"
    );

    for action in ["disable", "delete"] {
        let refused = keyset(&[action, "--in", path, "--key-id", &second.to_string()]);
        assert_eq!(refused.status.code(), Some(2), "{action} of the primary");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("primary"));
    }
    ok(keyset(&[
        "disable",
        "--in",
        path,
        "--key-id",
        &first.to_string(),
    ]));
    assert!(ok(keyset(&["list", "--in", path])).contains("Disabled"));
    ok(keyset(&[
        "delete",
        "--in",
        path,
        "--key-id",
        &first.to_string(),
    ]));
    assert_eq!(key_ids(&ok(keyset(&["list", "--in", path]))), [second]);
    assert_eq!(
        tink_tool(&["decrypt", path, &new_ciphertext, "00"]),
        "6e6577"
    );

    let again = keyset(&["create", "--out", path]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "create never overwrites a keyset"
    );
}

/// Adds a key to the keyset at `path` and promotes it, as an operator
/// rotating with tinkey would; returns the (old, new) primary ids.
fn rotate(path: &str) -> (u32, u32) {
    let first: u32 = tink_tool(&["primary-id", path]).parse().unwrap();
    ok(keyset(&["add-key", "--in", path]));
    let second = *key_ids(&ok(keyset(&["list", "--in", path])))
        .iter()
        .find(|id| **id != first)
        .unwrap();
    ok(keyset(&[
        "promote",
        "--in",
        path,
        "--key-id",
        &second.to_string(),
    ]));
    (first, second)
}

fn keyring_config(keyset: &Path) -> String {
    coffer_e2e::keyring_file(keyset, false, false)
}

#[tokio::test]
async fn a_keyset_rotated_with_the_keyset_tool_keeps_secrets_readable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys").join("keyset.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let path = file.to_str().unwrap();
    tink_tool(&["create-keyset", "AES256_GCM", path]);
    let data = dir.path().join("data");

    let mut server = Server::start(&data, &keyring_config(&file));
    server
        .put("app/before", "written under the first key")
        .await;
    server.stop();

    rotate(path);

    let server = Server::start(&data, &keyring_config(&file));
    let (status, body) = server.get("app/before").await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some("written under the first key"))
    );
    server.put("fresh/after", "new namespace").await;
    let (_, body) = server.get("fresh/after").await;
    assert_eq!(body["value"], "new namespace");
}

#[test]
fn a_server_whose_keyset_lost_a_kek_refuses_to_start_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys").join("keyset.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let path = file.to_str().unwrap();
    tink_tool(&["create-keyset", "AES256_GCM", path]);
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut server = Server::start(&data, &keyring_config(&file));
    runtime.block_on(server.put("app/secret", "v"));
    server.stop();

    // Rotate and drop the old key without re-wrapping: the data keys are orphaned.
    let (first, _) = rotate(path);
    ok(keyset(&[
        "delete",
        "--in",
        path,
        "--key-id",
        &first.to_string(),
    ]));

    let output = Command::new(coffer_binary())
        .args(["server", "--config"])
        .arg(data.join("coffer.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to serve") && stderr.contains(&format!("KEK {first}")),
        "{stderr}"
    );
}
