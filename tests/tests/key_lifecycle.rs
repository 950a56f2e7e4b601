//! The key lifecycle end to end: KEK rotation and re-wrap (by coffer, and by
//! real Google Tink outside it), data-key rotation, the janitor, retiring
//! and destroying keys, re-encryption, and moving a key between instances.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use coffer_e2e::key_usage as usage;
use coffer_e2e::python::tink_tool;
use coffer_e2e::server::coffer_binary;
use coffer_e2e::{Server, records};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Key changes take effect at once (no grace), and the janitor runs only
/// when a test asks, so every step is deterministic.
const KEYS: &str = "[keys]\ncache_ttl_ms = 200\ngrace_ms = 0\n[janitor]\nenabled = false\n";

async fn post(server: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    server.call(Method::POST, path, Some(body)).await
}

async fn show(server: &Server, namespace: &str) -> Value {
    let (status, body) = server
        .call(Method::GET, &format!("/v1/keys/{namespace}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn key<'a>(shown: &'a Value, status: &str) -> &'a Value {
    shown["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["status"] == status)
        .unwrap_or_else(|| panic!("no {status} key in {shown}"))
}

async fn assert_readable(server: &Server, secrets: &[(String, String)]) {
    for (path, value) in secrets {
        let (status, body) = server.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["value"].as_str(), Some(value.as_str()), "{path}");
    }
}

async fn write_many(
    server: &Server,
    namespaces: &[&str],
    per_namespace: usize,
) -> Vec<(String, String)> {
    let mut written = Vec::new();
    for ns in namespaces {
        for i in 0..per_namespace {
            let path = format!("{ns}/secret-{i}");
            let value = format!("value {i} of {ns}");
            let (status, body) = server.put(&path, &value).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            written.push((path, value));
        }
    }
    written
}

fn cli(server: &Server, args: &[&str]) -> Output {
    server.cli(args)
}

fn cli_streams(server: &Server, args: &[&str]) -> (String, String) {
    server.cli_streams(args)
}

fn cli_ok(server: &Server, args: &[&str]) -> String {
    server.cli_streams(args).0
}

fn keyring_at(file: &Path) -> String {
    coffer_e2e::keyring_file(file, true, false)
}

#[tokio::test]
async fn kek_rotation_rewraps_every_data_key_and_keeps_every_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), KEYS);
    let secrets = write_many(&server, &["alpha", "beta", "gamma"], 4).await;
    let (_, before) = server.call(Method::GET, "/v1/sys/kek", None).await;
    let old = before["primary_key_id"].clone();
    assert_eq!(before["keys"][0]["data_keys"], 3, "{before}");

    let (status, report) = post(&server, "/v1/sys/kek/rotate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["namespaces"], 3);
    assert_eq!(report["data_keys_rewrapped"], 3);
    assert_eq!(
        report["system_keys_rewrapped"], 2,
        "the record key and the audit key move too"
    );
    let new = report["primary_key_id"].clone();
    assert_ne!(new, old);

    let status_text = cli_ok(&server, &["kek", "status"]);
    assert!(
        status_text.contains(&format!("primary {new}")),
        "{status_text}"
    );
    let (_, after) = server.call(Method::GET, "/v1/sys/kek", None).await;
    assert_eq!(after["pending_rewrap"], 0, "{after}");
    for key in after["keys"].as_array().unwrap() {
        let expected = if key["id"] == new { 3 } else { 0 };
        assert_eq!(key["data_keys"], expected, "{after}");
    }
    assert_readable(&server, &secrets).await;
    server.put("delta/new", "after rotation").await;
    assert_eq!(key(&show(&server, "delta").await, "active")["kek_id"], new);

    // The keyset on disk holds both keys; after a restart all still reads.
    server.stop();
    let server = Server::start(dir.path(), KEYS);
    assert_readable(&server, &secrets).await;
}

#[tokio::test]
async fn data_key_rotation_then_janitor_empties_the_old_key_so_it_can_retire() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), KEYS);
    let mut secrets = write_many(&server, &["payments"], 12).await;
    // Two versions of one secret under the first key.
    server.put("payments/secret-0", "second version").await;
    secrets[0].1 = "second version".to_owned();
    let first = show(&server, "payments").await;
    let old = key(&first, "active")["id"].clone();
    assert_eq!(usage(&first, &old), 13);
    assert_eq!(first["secrets"], 12);

    let (status, rotated) = post(
        &server,
        "/v1/keys/payments/rotate",
        json!({"algorithm": "AES128_GCM"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["status"], "active");
    assert_eq!(rotated["algorithm"], "AES128_GCM");
    let shown = show(&server, "payments").await;
    assert_eq!(key(&shown, "deprecated")["id"], old);
    assert_eq!(
        key(&shown, "deprecated")["version"],
        2,
        "the change bumped its version"
    );

    // A write moves that secret's older versions along with it.
    server.put("payments/secret-1", "rewritten").await;
    secrets[1].1 = "rewritten".to_owned();
    let shown = show(&server, "payments").await;
    assert_eq!(usage(&shown, &old), 12);
    assert_eq!(usage(&shown, &rotated["id"]), 2);

    // In use: neither inactivate nor destroy.
    let inactivate = format!("/v1/keys/payments/{old}/inactivate");
    let destroy = format!("/v1/keys/payments/{old}/destroy");
    let (status, refused) = post(&server, &inactivate, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("12 secret version")
    );
    let (status, _) = post(&server, &destroy, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let active = &rotated["id"];
    let (status, refused) = post(
        &server,
        &format!("/v1/keys/payments/{active}/destroy"),
        json!({"force": true}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the active key is never destroyed: {refused}"
    );

    let (status, cycle) = post(&server, "/v1/sys/janitor/run", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cycle}");
    assert_eq!(cycle["moved"]["versions"], 12, "{cycle}");
    let shown = show(&server, "payments").await;
    assert_eq!(usage(&shown, &old), 0);
    assert_eq!(usage(&shown, active), 14);
    assert_readable(&server, &secrets).await;

    let (status, body) = post(&server, &inactivate, json!({})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("inactive")),
        "{body}"
    );
    let (status, body) = post(
        &server,
        &format!("/v1/keys/payments/{old}/deprecate"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("deprecated"))
    );
    post(&server, &inactivate, json!({})).await;
    let (status, body) = post(&server, &destroy, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key"]["status"], "destroyed");
    assert_eq!(body["unreadable"]["versions"], 0);
    assert_readable(&server, &secrets).await;
    let (status, _) = post(
        &server,
        &format!("/v1/keys/payments/{old}/deprecate"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "destroyed is final");

    let listing = cli_ok(&server, &["keys", "show", "payments"]);
    assert!(
        listing.contains("destroyed") && listing.contains("active"),
        "{listing}"
    );
}

#[tokio::test]
async fn forced_destroy_says_what_became_unreadable_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), KEYS);
    write_many(&server, &["doomed"], 3).await;
    let old = key(&show(&server, "doomed").await, "active")["id"].clone();
    post(&server, "/v1/keys/doomed/rotate", json!({})).await;
    server.put("doomed/after", "kept").await;

    let output = cli(&server, &["keys", "destroy", "doomed", &old.to_string()]);
    assert_eq!(output.status.code(), Some(4), "refused without --force");
    let output = cli(
        &server,
        &["keys", "destroy", "doomed", &old.to_string(), "--force"],
    );
    assert!(output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("3 secret version(s) are now unreadable"),
        "{said}"
    );
    assert!(said.contains("doomed/secret-2@1"), "{said}");

    let (status, body) = server.get("doomed/secret-0").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["code"], "key_destroyed");
    assert_readable(&server, &[("doomed/after".to_owned(), "kept".to_owned())]).await;
    // The janitor leaves the shredded versions as they are.
    let (_, cycle) = post(&server, "/v1/sys/janitor/run", json!({})).await;
    assert_eq!(cycle["moved"]["versions"], 0, "{cycle}");
}

#[tokio::test]
async fn concurrent_rotations_never_leave_two_active_keys() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), KEYS);
    server.put("busy/one", "1").await;
    let mut rotations = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let url = format!("{}/v1/keys/busy/rotate", server.addr);
        let token = server.token.clone();
        rotations.spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            response.status()
        });
    }
    let results = rotations.join_all().await;
    let succeeded = results.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(succeeded >= 1);
    assert!(
        results
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{results:?}"
    );
    let shown = show(&server, "busy").await;
    let statuses: Vec<&str> = shown["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "active").count(),
        1,
        "{shown}"
    );
    assert_eq!(statuses.len(), 1 + succeeded);
    assert_readable(&server, &[("busy/one".to_owned(), "1".to_owned())]).await;
}

#[tokio::test]
async fn reencrypt_continues_an_interrupted_pass_and_full_mode_reseals_values() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), KEYS);
    let secrets = write_many(&server, &["bulk"], 25).await;
    let old = key(&show(&server, "bulk").await, "active")["id"].clone();
    post(&server, "/v1/keys/bulk/rotate", json!({})).await;

    // One batch, then the client goes away.
    let (status, first) = post(&server, "/v1/keys/bulk/reencrypt", json!({"limit": 10})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["done"].as_bool(), first["batch"]["versions"].as_u64()),
        (Some(false), Some(10))
    );

    let (said, progress) = cli_streams(
        &server,
        &["reencrypt", "--namespace", "bulk", "--batch", "4"],
    );
    assert!(
        said.contains("namespace bulk: 25 secret(s), 25 version(s) moved"),
        "{said}"
    );
    assert!(
        progress.contains("[##############################] 25/25"),
        "{progress}"
    );
    assert_eq!(usage(&show(&server, "bulk").await, &old), 0);
    assert_readable(&server, &secrets).await;

    let said = cli_ok(&server, &["reencrypt", "--full"]);
    assert!(
        said.contains("namespace bulk: 25 secret(s), 25 version(s)"),
        "{said}"
    );
    assert_readable(&server, &secrets).await;
}

#[tokio::test]
async fn a_broken_record_is_skipped_and_reported_and_a_rotation_restarts_the_pass() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), KEYS);
    let secrets = write_many(&server, &["mixed"], 6).await;
    let first = key(&show(&server, "mixed").await, "active")["id"].clone();
    // A record no coffer wrote, as a damaged database might hold.
    let database = dir.path().join("coffer.db");
    records::plant(&database, "secrets/mixed/secret-3-broken", b"not a record").await;
    let (_, second) = post(&server, "/v1/keys/mixed/rotate", json!({})).await;

    let (_, batch) = post(&server, "/v1/keys/mixed/reencrypt", json!({"limit": 3})).await;
    assert_eq!(
        (batch["done"].as_bool(), batch["total"]["records"].as_u64()),
        (Some(false), Some(3)),
        "{batch}"
    );
    // Rotating again puts the secrets already moved under a retired key:
    // the saved pass starts over rather than finishing half done.
    let (_, third) = post(&server, "/v1/keys/mixed/rotate", json!({})).await;
    let (_, batch) = post(&server, "/v1/keys/mixed/reencrypt", json!({"limit": 3})).await;
    assert_eq!(batch["total"]["records"].as_u64(), Some(3), "{batch}");

    let shown = show(&server, "mixed").await;
    assert_eq!(shown["unreadable_records"], 1, "{shown}");
    let (status, refused) = post(
        &server,
        &format!("/v1/keys/mixed/{first}/inactivate"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 secret record(s) of namespace mixed could not be decoded"),
        "usage is unsure while a record is unreadable: {refused}"
    );
    let output = cli(&server, &["reencrypt", "--namespace", "mixed"]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("1 secret(s) could not be moved"), "{said}");
    assert_readable(&server, &secrets).await;
    let (_, cycle) = post(&server, "/v1/sys/janitor/run", json!({})).await;
    assert_eq!(
        (cycle["ran"].as_bool(), cycle["moved"]["failed"].as_u64()),
        (Some(true), Some(1)),
        "the janitor skips the broken record too: {cycle}"
    );

    records::remove(&database, "secrets/mixed/secret-3-broken").await;
    let shown = show(&server, "mixed").await;
    assert_eq!(usage(&shown, &first), 0, "{shown}");
    assert_eq!(usage(&shown, &second["id"]), 0, "{shown}");
    assert_eq!(usage(&shown, &third["id"]), 6, "{shown}");
}

#[tokio::test]
async fn a_data_key_exported_under_a_transport_keyset_opens_copied_secrets_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let transport = create_keyset(&dir.path().join("transport.json"));
    let a = Server::start(&dir.path().join("a"), KEYS);
    let b = Server::start(&dir.path().join("b"), KEYS);
    a.put("shared/db-password", "hunter2").await;
    let id = key(&show(&a, "shared").await, "active")["id"].to_string();

    let exported = cli_ok(
        &a,
        &[
            "keys",
            "export",
            "shared",
            &id,
            "--transport",
            transport.to_str().unwrap(),
        ],
    );
    assert!(!exported.contains("hunter2"));
    let exported_value: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(exported_value["format"], "coffer-data-key/v1");
    let file = dir.path().join("key.json");
    std::fs::write(&file, &exported).unwrap();

    // A wrong transport keyset is refused.
    let import = |transport: &Path| {
        cli(
            &b,
            &[
                "keys",
                "import",
                "shared",
                file.to_str().unwrap(),
                "--transport",
                transport.to_str().unwrap(),
            ],
        )
    };
    let wrong = create_keyset(&dir.path().join("wrong.json"));
    let output = import(&wrong);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = import(&transport);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("as deprecated"), "{said}");
    let shown = show(&b, "shared").await;
    assert_eq!(
        key(&shown, "deprecated")["id"].to_string(),
        id,
        "never silently active"
    );
    // Importing it again changes nothing.
    assert!(import(&transport).status.success());

    // A row copied across behind the engines' backs is sealed under A's
    // record key: B cannot tell it from a planted one, and refuses it.
    records::copy(
        &a.data_dir.join("coffer.db"),
        &b.data_dir.join("coffer.db"),
        "secrets/shared/db-password",
    )
    .await;
    let (status, body) = b.get("shared/db-password").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("integrity")),
        "{body}"
    );
}

/// Writes a fresh Tink keyset to `path` with `coffer keyset create`.
fn create_keyset(path: &Path) -> PathBuf {
    let output = Command::new(coffer_binary())
        .args(["keyset", "create", "--out"])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    path.to_owned()
}

#[tokio::test]
async fn a_keyset_rotated_by_tink_reloads_rewraps_and_then_drops_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let keyset = dir.path().join("kek").join("keyset.json");
    std::fs::create_dir_all(keyset.parent().unwrap()).unwrap();
    let path = keyset.to_str().unwrap();
    tink_tool(&["create-keyset", "AES256_GCM", path]);
    let old: u64 = tink_tool(&["primary-id", path]).parse().unwrap();
    let extra = format!("{}{KEYS}", keyring_at(&keyset));
    let mut server = Server::start(&dir.path().join("data"), &extra);
    let secrets = write_many(&server, &["one", "two"], 3).await;

    // tinkey add-key + promote-key, done by real Tink.
    let new: u64 = tink_tool(&["rotate", path]).parse().unwrap();
    let said = cli_ok(&server, &["kek", "reload"]);
    assert!(said.contains(&format!("primary {new}")), "{said}");
    let (_, status) = server.call(Method::GET, "/v1/sys/kek", None).await;
    assert_eq!(
        status["pending_rewrap"], 4,
        "two data keys, the record key and the audit key: {status}"
    );
    server
        .put("three/fresh", "new wraps use the new primary")
        .await;
    assert_eq!(key(&show(&server, "three").await, "active")["kek_id"], new);
    assert_readable(&server, &secrets).await;

    let said = cli_ok(&server, &["kek", "rewrap"]);
    assert!(said.contains("re-wrapped 2 data key(s)"), "{said}");
    let (_, status) = server.call(Method::GET, "/v1/sys/kek", None).await;
    assert_eq!(status["pending_rewrap"], 0, "{status}");

    // The old key can now go; everything still reads after a restart.
    tink_tool(&["delete-key", path, &old.to_string()]);
    server.stop();
    let mut server = Server::start(&dir.path().join("data"), &extra);
    assert_readable(&server, &secrets).await;

    // Restoring an older keyset backup that lacks a KEK still in use is
    // refused by reload, naming the missing key.
    let backup = dir.path().join("backup.json");
    std::fs::copy(&keyset, &backup).unwrap();
    let newest: u64 = tink_tool(&["rotate", path]).parse().unwrap();
    cli_ok(&server, &["kek", "reload"]);
    server.put("four/x", "under the newest").await;
    std::fs::copy(&backup, &keyset).unwrap();
    let output = cli(&server, &["kek", "reload"]);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&format!("KEK {newest}")), "{said}");
    assert_readable(&server, &secrets).await;
    server.stop();
}

#[tokio::test]
async fn key_endpoints_need_key_capabilities() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), KEYS);
    server.put("ns/a", "1").await;
    let (_, reader) = post(
        &server,
        "/v1/auth/tokens",
        json!({"name": "reader", "admin": ["keys:read"]}),
    )
    .await;
    let reader = reader["token"].as_str().unwrap().to_owned();
    let (status, shown) = server
        .call_as(&reader, Method::GET, "/v1/keys/ns", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let usage = &key(&shown, "active")["usage"];
    assert_eq!(
        (
            usage["versions"].as_u64(),
            usage["secrets"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0)),
        "without list on the namespace, counts but no names: {shown}"
    );
    assert_eq!(
        key(&show(&server, "ns").await, "active")["usage"]["secrets"],
        json!(["a@1"])
    );
    let (status, _) = server
        .call_as(&reader, Method::POST, "/v1/keys/ns/rotate", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call_as(&reader, Method::POST, "/v1/sys/kek/rotate", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, operator) = post(
        &server,
        "/v1/auth/tokens",
        json!({"name": "op", "role": "operator"}),
    )
    .await;
    let operator = operator["token"].as_str().unwrap().to_owned();
    let id = key(&show(&server, "ns").await, "active")["id"].clone();
    let (status, _) = server
        .call_as(
            &operator,
            Method::POST,
            &format!("/v1/keys/ns/{id}/export"),
            Some(json!({"transport": "{}"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "exporting a key needs read on its namespace"
    );
    let (status, _) = server
        .call_as(
            &operator,
            Method::POST,
            &format!("/v1/keys/ns/{id}/destroy"),
            Some(json!({"force": true})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "force-destroying a key needs destroy on its namespace"
    );
    let records = server.audit_records();
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "keys.rotate" && r["outcome"] == "denied")
    );
}
