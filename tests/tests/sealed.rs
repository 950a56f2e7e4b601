//! The sealed transport end to end: an independent HPKE implementation
//! (PyPI `pyhpke`) seals writes coffer opens and opens reads coffer
//! sealed; every way a sealed body can be wrong is refused with its own
//! stable code and changes nothing; `require_sealed` refuses plaintext
//! both ways, the Vault-compatible API included; transport keys rotate
//! with a grace and survive a restart; and a proxy between the CLI and the
//! server sees no value.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_crypto::sealing::{
    self, KEY_LEN, RequestBinding, ResponseBinding, SEAL_TO_HEADER, TransportKey,
};
use coffer_e2e::proxy::Proxy;
use coffer_e2e::python::support_tool;
use coffer_e2e::server::coffer_binary;
use coffer_e2e::{Server, records};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The server's current transport key: its id and public key.
async fn transport_key(server: &Server) -> (String, [u8; KEY_LEN]) {
    let (status, key) = server
        .call(Method::GET, "/v1/sys/transport-key", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    (key["kid"].as_str().unwrap().to_owned(), public_key(&key))
}

fn public_key(key: &Value) -> [u8; KEY_LEN] {
    let bytes = STANDARD
        .decode(key["public_key"].as_str().unwrap())
        .unwrap();
    bytes.try_into().unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A write's body sealed as a client seals it.
struct Sealer {
    kid: String,
    public: [u8; KEY_LEN],
}

impl Sealer {
    async fn of(server: &Server) -> Sealer {
        let (kid, public) = transport_key(server).await;
        Sealer { kid, public }
    }

    /// `plain` sealed for `method` on `path` at `timestamp`, naming `kid`.
    fn seal_as(&self, kid: &str, method: &str, path: &str, timestamp: u64, plain: &Value) -> Value {
        let binding = RequestBinding {
            method,
            path,
            timestamp,
            kid,
        };
        let sealed =
            sealing::seal_request(&self.public, &binding, plain.to_string().as_bytes()).unwrap();
        json!({ "sealed": {
            "kid": kid,
            "enc": STANDARD.encode(sealed.enc),
            "ciphertext": STANDARD.encode(&sealed.ciphertext),
            "timestamp": timestamp,
        }})
    }

    fn seal(&self, method: &str, path: &str, plain: &Value) -> Value {
        self.seal_as(&self.kid.clone(), method, path, now(), plain)
    }
}

/// Reads `path` sealed to a one-time key and opens the answer with the
/// server's key `server_key`; the value and the version.
async fn sealed_read(server: &Server, path: &str, server_key: &[u8; KEY_LEN]) -> (String, u64) {
    let mine = TransportKey::generate();
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.addr))
        .bearer_auth(&server.token)
        .header(SEAL_TO_HEADER, STANDARD.encode(mine.public_key()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer.get("value").is_none(),
        "no plaintext beside: {answer}"
    );
    let sealed = &answer["sealed"];
    let version = answer["version"].as_u64().unwrap();
    let binding = ResponseBinding {
        path,
        version: version as u32,
        kid: sealed["kid"].as_str().unwrap(),
    };
    let field = |name: &str| STANDARD.decode(sealed[name].as_str().unwrap()).unwrap();
    let value = sealing::open_response(
        &mine,
        server_key,
        &binding,
        &field("enc"),
        &field("ciphertext"),
    )
    .unwrap();
    (String::from_utf8(value.to_vec()).unwrap(), version)
}

/// Runs `tests/support/sealed_client.py` (pyhpke): `command` against
/// `server`, with `args`.
fn pyhpke_client(server: &Server, command: &str, args: &[&str]) -> String {
    let mut all = vec![command, server.addr.as_str()];
    all.extend_from_slice(args);
    support_tool("sealed_client.py", &[("COFFER_TOKEN", &server.token)], &all)
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn pyhpke_seals_writes_coffer_opens_and_opens_reads_coffer_seals() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), "");

    assert_eq!(
        pyhpke_client(&server, "put", &["interop", "greeting", "hello, hpke"]),
        "1"
    );
    server.assert_reads("interop/greeting", "hello, hpke").await;

    server.put("interop/plain", "written in plaintext").await;
    assert_eq!(
        pyhpke_client(&server, "get", &["interop", "plain"]),
        "written in plaintext"
    );

    // Each record of the sealed requests says so; the plain ones say nothing.
    let records = server.audit_records();
    let sealed = |action: &str, outcome: &str| {
        records
            .iter()
            .filter(|r| r["action"] == action && r["outcome"] == outcome)
            .map(|r| r["sealed"].as_bool() == Some(true))
            .collect::<Vec<bool>>()
    };
    assert_eq!(sealed("secret.write", "requested"), [true, false]);
    assert_eq!(sealed("secret.write", "allowed"), [true, false]);
    assert_eq!(sealed("secret.read", "allowed"), [false, true]);
    let (status, verified) = server.call(Method::GET, "/v1/audit/verify", None).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
}

#[tokio::test]
async fn a_wrong_sealed_write_is_refused_with_its_own_code_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        "[transport]\nrequire_sealed = [\"locked*\"]\n",
    );
    let sealer = Sealer::of(&server).await;
    let path = "/v1/secrets/locked/db";
    let first = sealer.seal("PUT", path, &json!({ "value": "first" }));
    let (status, body) = server.call(Method::PUT, path, Some(first.clone())).await;
    assert_eq!(
        (status, body["version"].as_u64()),
        (StatusCode::OK, Some(1))
    );

    let refused = |body: Value, method: Method, to: &'static str| {
        let server = &server;
        async move {
            let (status, answer) = server.call(method, to, Some(body)).await;
            (status, error_code(&answer).to_owned())
        }
    };
    let code = |status: StatusCode, code: &str| (status, code.to_owned());
    let plain = json!({ "value": "second" });

    // The same body twice: a replay.
    assert_eq!(
        refused(first, Method::PUT, path).await,
        code(StatusCode::CONFLICT, "seal_replayed")
    );
    // Sealed for one name (or method), sent to another.
    let other = sealer.seal("PUT", path, &plain);
    assert_eq!(
        refused(other, Method::PUT, "/v1/secrets/locked/other").await,
        code(StatusCode::BAD_REQUEST, "seal_invalid")
    );
    let as_post = sealer.seal("PUT", path, &plain);
    assert_eq!(
        refused(as_post, Method::POST, path).await,
        code(StatusCode::BAD_REQUEST, "seal_invalid")
    );
    // Sealed an hour ago, or an hour ahead.
    for timestamp in [now() - 3600, now() + 3600] {
        let stale = sealer.seal_as(&sealer.kid, "PUT", path, timestamp, &plain);
        assert_eq!(
            refused(stale, Method::PUT, path).await,
            code(StatusCode::BAD_REQUEST, "seal_stale")
        );
    }
    // Naming a key the server does not have.
    let unknown = sealer.seal_as("999", "PUT", path, now(), &plain);
    assert_eq!(
        refused(unknown, Method::PUT, path).await,
        code(StatusCode::BAD_REQUEST, "seal_unknown_key")
    );
    // An envelope with something beside the seal.
    let mut extra = sealer.seal("PUT", path, &plain);
    extra["value"] = json!("smuggled");
    assert_eq!(
        refused(extra, Method::PUT, path).await,
        code(StatusCode::BAD_REQUEST, "seal_invalid")
    );
    // A seal that opens to something other than a write: what is wrong
    // with it is said without quoting it.
    let not_a_write = sealer.seal("PUT", path, &json!({ "value": 4921 }));
    let (status, answer) = server.call(Method::PUT, path, Some(not_a_write)).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "seal_invalid")
    );
    assert!(!answer.to_string().contains("4921"), "{answer}");

    // Every bit of enc and of the ciphertext, flipped one at a time.
    let fresh = sealer.seal("PUT", path, &plain);
    for field in ["enc", "ciphertext"] {
        let bytes = STANDARD
            .decode(fresh["sealed"][field].as_str().unwrap())
            .unwrap();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let mut tampered = fresh.clone();
            tampered["sealed"][field] = json!(STANDARD.encode(&flipped));
            assert_eq!(
                refused(tampered, Method::PUT, path).await,
                code(StatusCode::BAD_REQUEST, "seal_invalid"),
                "{field} bit {bit}"
            );
        }
    }

    // Plaintext is refused both ways here, through either API.
    let (status, body) = server.put("locked/db", "plain").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "sealed_required")
    );
    let (status, body) = server.get("locked/db").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "sealed_required")
    );
    // Vault's clients get Vault's error envelope, saying why.
    let vault_write = json!({ "data": { "password": "plain" } });
    for (method, body) in [(Method::GET, None), (Method::PUT, Some(vault_write))] {
        let (status, answer) = server.call(method, "/v1/locked/data/db", body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert!(
            answer["errors"][1]
                .as_str()
                .unwrap()
                .contains("carries values in plaintext"),
            "{answer}"
        );
    }

    // None of it changed anything; the untouched body still goes through.
    assert_eq!(
        sealed_read(&server, path, &sealer.public).await,
        ("first".to_owned(), 1)
    );
    let (status, _) = server.call(Method::PUT, path, Some(fresh)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sealed_read(&server, path, &sealer.public).await,
        ("second".to_owned(), 2)
    );
    let (status, body) = server
        .call(Method::GET, "/v1/secrets/locked/other/metadata", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = server
        .call(Method::GET, "/v1/secrets/locked/db/metadata", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["versions"].as_array().unwrap().len(), 2, "{body}");
}

#[tokio::test]
async fn a_token_bound_to_sealing_refuses_plaintext_and_passes_the_binding_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), "");
    let (status, created) = server
        .call(
            Method::POST,
            "/v1/auth/tokens",
            Some(json!({
                "name": "sealed-app",
                "rules": [{ "namespaces": "app", "capabilities": ["read", "write"] }],
                "admin": ["tokens:manage"],
                "require_sealed": true,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["token"].as_str().unwrap();

    let plain = json!({ "value": "plain" });
    let (status, body) = server
        .call_as(token, Method::PUT, "/v1/secrets/app/db", Some(plain))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "sealed_required")
    );
    let sealer = Sealer::of(&server).await;
    let sealed = sealer.seal("PUT", "/v1/secrets/app/db", &json!({ "value": "sealed" }));
    let (status, body) = server
        .call_as(token, Method::PUT, "/v1/secrets/app/db", Some(sealed))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A token it makes is bound too, asked or not.
    let (status, child) = server
        .call_as(
            token,
            Method::POST,
            "/v1/auth/tokens",
            Some(json!({
                "name": "child",
                "rules": [{ "namespaces": "app", "capabilities": ["read"] }],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{child}");
    assert_eq!(child["policy"]["require_sealed"], true, "{child}");
    let (status, body) = server
        .call_as(
            child["token"].as_str().unwrap(),
            Method::GET,
            "/v1/secrets/app/db",
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "sealed_required")
    );
}

#[tokio::test]
async fn transport_keys_rotate_with_a_grace_and_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = "[transport]\ngrace_ms = 3000\n";
    let mut server = Server::start(&data, config);
    let first = Sealer::of(&server).await;
    assert_eq!(first.kid, "1");

    let (status, rotated) = server
        .call(Method::POST, "/v1/sys/transport-key/rotate", None)
        .await;
    assert_eq!(
        (status, rotated["kid"].as_str()),
        (StatusCode::OK, Some("2"))
    );
    assert_eq!(rotated["previous"][0]["kid"], "1");
    assert!(rotated["previous"][0]["accepted_until"].is_string());
    // Sealed to the replaced key within its grace: accepted.
    let body = first.seal("PUT", "/v1/secrets/app/a", &json!({ "value": "a" }));
    let (status, answer) = server
        .call(Method::PUT, "/v1/secrets/app/a", Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // The KEK's rotation rotates the transport key along.
    let (status, report) = server.call(Method::POST, "/v1/sys/kek/rotate", None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["transport_key_id"], "3");
    let (_, third) = transport_key(&server).await;

    // The ring and its keys come back from storage.
    server.stop();
    let server = Server::start(&data, config);
    let (kid, public) = transport_key(&server).await;
    assert_eq!((kid.as_str(), public), ("3", third));
    let after_restart = Sealer { kid, public };
    let body = after_restart.seal("PUT", "/v1/secrets/app/b", &json!({ "value": "b" }));
    let (status, _) = server
        .call(Method::PUT, "/v1/secrets/app/b", Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sealed_read(&server, "/v1/secrets/app/a", &public).await.0,
        "a"
    );

    // Past its grace, the first key opens nothing.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let late = first.seal("PUT", "/v1/secrets/app/a", &json!({ "value": "late" }));
    let (status, answer) = server
        .call(Method::PUT, "/v1/secrets/app/a", Some(late))
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "seal_unknown_key")
    );
    server.assert_reads("app/a", "a").await;
}

#[tokio::test]
async fn a_proxy_between_the_cli_and_the_server_sees_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), "");
    let port = server.addr.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = Proxy::start(port);
    let through_proxy = |args: &[&str], pin: Option<String>| {
        Command::new(coffer_binary())
            .args(args)
            .env("COFFER_ADDR", format!("http://127.0.0.1:{}", proxy.port))
            .env("COFFER_TOKEN", &server.token)
            .envs(pin.map(|pin| ("COFFER_TRANSPORT_PIN", pin)))
            .output()
            .unwrap()
    };
    let cli = |args: &[&str]| {
        let output = through_proxy(args, None);
        assert!(
            output.status.success(),
            "coffer {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let carried = |text: &str| {
        proxy
            .seen()
            .windows(text.len())
            .any(|w| w == text.as_bytes())
    };
    let value = "correct-horse-battery-staple";
    cli(&["secret", "put", "captured", "db", value]);
    assert_eq!(cli(&["secret", "get", "captured", "db"]).trim(), value);
    assert!(cli(&["secret", "get", "captured", "db", "--format", "json"]).contains(value));
    assert!(proxy.seen().len() > 1000, "the proxy carried the traffic");
    assert!(!carried(value), "the value crossed the proxy in plaintext");

    // Pinned to a key the server does not hold, the CLI seals nothing.
    let stranger = STANDARD.encode(TransportKey::generate().public_key());
    let output = through_proxy(
        &["secret", "put", "captured", "db", "never-sent"],
        Some(stranger),
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("COFFER_TRANSPORT_PIN"),
        "{output:?}"
    );
    assert!(!carried("never-sent"));

    // The capture would have shown it: plaintext on request does cross.
    cli(&[
        "secret",
        "put",
        "captured",
        "db",
        "plain-on-purpose",
        "--no-seal",
    ]);
    assert!(carried("plain-on-purpose"));
}

#[tokio::test]
async fn storage_cannot_bring_back_a_retired_transport_key_or_plant_a_ring() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("coffer.db");
    let server = Server::start(&data, "[transport]\ngrace_ms = 1\n");
    let first = Sealer::of(&server).await;
    let old_ring = records::read(&db, "sys/transport/keys").await.unwrap();
    let old_key = records::read(&db, "sys/keys/transport-1").await.unwrap();

    // Two rotations past a grace of 1 ms: key 1 leaves the ring, and its
    // private half leaves storage.
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let (status, _) = server
            .call(Method::POST, "/v1/sys/transport-key/rotate", None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(records::read(&db, "sys/keys/transport-1").await, None);

    // Storage puts both back, as a restored backup would.
    records::plant(&db, "sys/transport/keys", &old_ring).await;
    records::plant(&db, "sys/keys/transport-1", &old_key).await;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let body = first.seal(
        "PUT",
        "/v1/secrets/app/db",
        &json!({ "value": "replayed key" }),
    );
    let (status, answer) = server
        .call(Method::PUT, "/v1/secrets/app/db", Some(body))
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::INTERNAL_SERVER_ERROR, "integrity"),
        "{answer}"
    );

    // A ring row storage made up is no ring either; plaintext still serves.
    records::plant(&db, "sys/transport/keys", b"{\"keys\":[]}").await;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let body = first.seal("PUT", "/v1/secrets/app/db", &json!({ "value": "planted" }));
    let (status, answer) = server
        .call(Method::PUT, "/v1/secrets/app/db", Some(body))
        .await;
    assert_eq!(error_code(&answer), "integrity", "{status} {answer}");
    let (status, _) = server.put("app/db", "plain").await;
    assert_eq!(status, StatusCode::OK);
    server.assert_reads("app/db", "plain").await;
}
