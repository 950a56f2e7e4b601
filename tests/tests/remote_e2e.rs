//! The real binary on the remote backends: DynamoDB with AWS KMS (moto,
//! every request signed and checked) and Vault KV with transit (OpenBao,
//! with a token limited to coffer's paths). Each stores, versions, lists
//! and reads secrets across restarts and key rotations without leaving a
//! plaintext in the backend; a backend that dies mid-load costs clear 503s
//! and no acknowledged write; a wrong credential, key, table or mount stops
//! the start with the section named.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use coffer_e2e::Server;
use coffer_e2e::aws::{Moto, REGION};
use coffer_e2e::openbao::OpenBao;
use coffer_e2e::proxy::Proxy;
use coffer_e2e::server::refused_start;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRETS: &[(&str, &str)] = &[
    ("app/db/password", "correct horse battery staple"),
    ("app/api-key", "sk-live-0123456789abcdef"),
    ("billing/card", "4111 1111 1111 1111"),
];

/// `[storage]` on storage-dynamodb and `[kms]` on kms-aws, both at
/// `origin`, signing with the standard AWS variables.
fn aws_config(origin: &str, table: &str, key: &str) -> String {
    let http = |service: &str| {
        format!(
            "origin = {origin:?}\nauth = \"aws-sigv4\"\nservice = \"{service}\"\nregion = \"{REGION}\"\n"
        )
    };
    format!(
        "[storage]\nplugin = \"storage-dynamodb\"\n[storage.config]\ntable = {table:?}\ncreate_table = true\n\
         [storage.http]\n{}actions = [\"DynamoDB_20120810.GetItem\", \"DynamoDB_20120810.PutItem\", \
         \"DynamoDB_20120810.UpdateItem\", \"DynamoDB_20120810.DeleteItem\", \"DynamoDB_20120810.Query\", \
         \"DynamoDB_20120810.CreateTable\", \"DynamoDB_20120810.DescribeTable\"]\n\
         [kms]\nplugin = \"kms-aws\"\n[kms.config]\nkey_id = {key:?}\n[kms.http]\n{}",
        http("dynamodb"),
        http("kms"),
    )
}

/// `[storage]` on storage-vault (token from a variable) and `[kms]` on
/// kms-vault-transit (token from a file), both at `origin`.
fn vault_config(origin: &str, token_file: &Path, mount: &str) -> String {
    format!(
        "[storage]\nplugin = \"storage-vault\"\n[storage.config]\nmount = {mount:?}\n\
         [storage.http]\norigin = {origin:?}\nauth = \"vault-token\"\ntoken_env = \"COFFER_TEST_VAULT_TOKEN\"\n\
         paths = [\"/v1/{mount}/\"]\n\
         [kms]\nplugin = \"kms-vault-transit\"\n[kms.config]\nkey = \"coffer\"\n\
         [kms.http]\norigin = {origin:?}\nauth = \"vault-token\"\ntoken_file = {:?}\npaths = [\"/v1/transit/\"]\n",
        token_file.display().to_string()
    )
}

async fn write_all(server: &Server) {
    for (path, value) in SECRETS {
        let (status, body) = server.put(path, &format!("old {value}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = server.put(path, value).await;
        assert_eq!(
            (status, body["version"].as_u64()),
            (StatusCode::OK, Some(2)),
            "{body}"
        );
    }
}

async fn assert_all(server: &Server) {
    for (path, value) in SECRETS {
        server.assert_reads(path, value).await;
        let (_, old) = server.get(&format!("{path}?version=1")).await;
        assert_eq!(
            old["value"].as_str(),
            Some(format!("old {value}").as_str()),
            "{path}"
        );
    }
    let (_, listed) = server.get("app?prefix=").await;
    assert_eq!(
        listed["names"],
        json!(["api-key", "db/password"]),
        "{listed}"
    );
}

/// Stores, reads across a restart, rotates the KEK (the KMS key) and a
/// data key, re-encrypts, and reads again across another restart.
async fn keeps_secrets(start: impl Fn() -> Server) {
    let mut server = start();
    let (_, plugins) = server.call(Method::GET, "/v1/sys/plugins", None).await;
    let kinds: Vec<&str> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["storage", "kms"], "{plugins}");
    write_all(&server).await;
    server.stop();

    let mut server = start();
    assert_all(&server).await;
    let (status, before) = server.call(Method::GET, "/v1/sys/kek", None).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(
        (before["root"].as_str(), before["primary_key_id"].as_u64()),
        (Some("kms"), Some(1))
    );
    let (status, report) = server.call(Method::POST, "/v1/sys/kek/rotate", None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["primary_key_id"], 2, "{report}");
    assert_eq!(report["data_keys_rewrapped"], 2, "{report}");
    let (_, after) = server.call(Method::GET, "/v1/sys/kek", None).await;
    assert_eq!(after["pending_rewrap"], 0, "{after}");

    let (status, rotated) = server.call(Method::POST, "/v1/keys/app/rotate", None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let said = server.cli_streams(&["reencrypt", "--namespace", "app"]).0;
    assert!(said.contains("namespace app"), "{said}");
    assert_all(&server).await;
    server.stop();

    let server = start();
    assert_all(&server).await;
    let log = server.log();
    for (_, value) in SECRETS {
        assert!(!log.contains(value), "the log holds a secret");
    }
}

/// Whether any of the secrets' values shows in `stored`.
fn holds_plaintext(stored: &str) -> Option<&'static str> {
    SECRETS
        .iter()
        .map(|(_, value)| *value)
        .find(|value| stored.contains(value) || stored.contains(&b64(value)))
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_and_aws_kms_keep_secrets_through_restarts_and_rotations() {
    let moto = Moto::start();
    moto.kms_key();
    let dir = tempfile::tempdir().unwrap();
    let config = aws_config(&moto.endpoint, "coffer", "alias/coffer-test");
    keeps_secrets(|| Server::start_with_env(dir.path(), &config, &moto.env())).await;

    let items = moto.scan("coffer");
    assert!(items.len() > SECRETS.len(), "{} items", items.len());
    let stored = serde_json::to_string(&items).unwrap();
    assert_eq!(holds_plaintext(&stored), None, "DynamoDB holds a plaintext");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_kv_and_transit_keep_secrets_through_restarts_and_rotations() {
    let bao = OpenBao::start();
    let token = bao.prepare(true, "1h").await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("vault-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let config = vault_config(&bao.addr, &token_file, "secret");
    let env = [("COFFER_TEST_VAULT_TOKEN", token.as_str())];
    keeps_secrets(|| Server::start_with_env(&dir.path().join("data"), &config, &env)).await;

    let stored = dump_kv(&bao, "/v1/secret/metadata/coffer/", "").await;
    assert!(stored.len() > SECRETS.len(), "{} entries", stored.len());
    assert_eq!(
        holds_plaintext(&serde_json::to_string(&stored).unwrap()),
        None,
        "Vault holds a plaintext"
    );
}

/// Every value stored under a KV v2 folder (as root), depth first.
async fn dump_kv(bao: &OpenBao, metadata: &str, folder: &str) -> Vec<Value> {
    let (_, listed) = bao
        .call(
            &root_token(),
            Method::GET,
            &format!("{metadata}{folder}?list=true"),
            None,
        )
        .await;
    let mut out = Vec::new();
    for name in listed["data"]["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = name.as_str().unwrap();
        let path = format!("{folder}{name}");
        if name.ends_with('/') {
            out.extend(Box::pin(dump_kv(bao, metadata, &path)).await);
        } else {
            let data = metadata.replace("/metadata/", "/data/");
            let (_, read) = bao
                .call(&root_token(), Method::GET, &format!("{data}{path}"), None)
                .await;
            out.push(read["data"]["data"].clone());
        }
    }
    out
}

fn root_token() -> String {
    format!("root-{}", std::process::id())
}

/// Writes from two clients while the backend behind `proxy` dies and comes
/// back: failed writes get a JSON 503 naming `plugin`, health names the
/// backend that is down, and every acknowledged write reads back.
async fn survives_a_dead_backend(server: &Server, proxy: &Proxy, plugin: &str, down: &str) {
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let (addr, token, acknowledged) = (
                server.addr.clone(),
                server.token.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut refusals = Vec::new();
                for i in 0..60 {
                    let path = format!("{addr}/v1/secrets/load/w{writer}-{i}");
                    let response = client
                        .put(&path)
                        .bearer_auth(&token)
                        .json(&json!({ "value": format!("value {writer} {i}") }))
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                        .unwrap();
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    if status == StatusCode::OK {
                        acknowledged.lock().unwrap().push((writer, i));
                    } else {
                        refusals.push((status, body));
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                refusals
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    let (status, health) = server.call(Method::GET, "/v1/sys/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health[down], "unavailable", "{health}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    proxy.restore();

    let mut refused = 0;
    for writer in writers {
        for (status, body) in writer.await.unwrap() {
            refused += 1;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(plugin), "{body}");
        }
    }
    assert!(refused > 0, "the backend was never missed");
    // Back by itself: health recovers, and everything acknowledged is there.
    let mut healthy = false;
    for _ in 0..50 {
        let (status, _) = server.call(Method::GET, "/v1/sys/health", None).await;
        if status == StatusCode::OK {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healthy, "health did not recover");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty());
    for (writer, i) in acknowledged {
        server
            .assert_reads(
                &format!("load/w{writer}-{i}"),
                &format!("value {writer} {i}"),
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_vault_costs_503s_and_no_acknowledged_write() {
    let bao = OpenBao::start();
    let token = bao.prepare(true, "1h").await;
    let proxy = Proxy::start(bao.port);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("vault-token");
    std::fs::write(&token_file, &token).unwrap();
    let origin = format!("http://127.0.0.1:{}", proxy.port);
    let config = format!(
        "{}[storage.limits]\ntimeout_ms = 2000\n",
        vault_config(&origin, &token_file, "secret")
    );
    let env = [("COFFER_TEST_VAULT_TOKEN", token.as_str())];
    let server = Server::start_with_env(&dir.path().join("data"), &config, &env);
    survives_a_dead_backend(&server, &proxy, "storage-vault", "storage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_dynamodb_costs_503s_and_no_acknowledged_write() {
    let moto = Moto::start();
    moto.kms_key();
    let proxy = Proxy::start(moto.port);
    let dir = tempfile::tempdir().unwrap();
    let origin = format!("http://127.0.0.1:{}", proxy.port);
    let config = format!(
        "{}[storage.limits]\ntimeout_ms = 2000\n",
        aws_config(&origin, "coffer", "alias/coffer-test")
    );
    let server = Server::start_with_env(dir.path(), &config, &moto.env());
    survives_a_dead_backend(&server, &proxy, "storage-dynamodb", "storage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_credential_key_table_or_mount_stops_the_start_naming_the_section() {
    let moto = Moto::start();
    moto.kms_key();
    let dir = tempfile::tempdir().unwrap();
    let refused = |name: &str, config: &str, env: &[(&str, &str)]| {
        refused_start(&dir.path().join(name), config, env)
    };

    let wrong_secret = [
        ("AWS_ACCESS_KEY_ID", moto.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
    ];
    let said = refused(
        "aws-secret",
        &aws_config(&moto.endpoint, "coffer", "alias/coffer-test"),
        &wrong_secret,
    );
    assert!(
        said.contains("storage:") && said.contains("denied"),
        "{said}"
    );

    let said = refused(
        "aws-key",
        &aws_config(&moto.endpoint, "coffer", "alias/missing"),
        &moto.env(),
    );
    assert!(
        said.contains("kms:") && said.contains("not found"),
        "{said}"
    );

    let no_table = aws_config(&moto.endpoint, "absent", "alias/coffer-test")
        .replace("create_table = true", "create_table = false");
    let said = refused("aws-table", &no_table, &moto.env());
    assert!(
        said.contains("storage:") && said.contains("absent"),
        "{said}"
    );

    let said = refused(
        "aws-no-env",
        &aws_config(&moto.endpoint, "coffer", "alias/coffer-test"),
        &[],
    );
    assert!(said.contains("storage.http.access_key_env"), "{said}");

    let bao = OpenBao::start();
    let token = bao.prepare(false, "1h").await;
    let token_file = dir.path().join("vault-token");
    std::fs::write(&token_file, &token).unwrap();
    let env = [("COFFER_TEST_VAULT_TOKEN", "not-a-token")];
    let said = refused(
        "vault-wrong-token",
        &vault_config(&bao.addr, &token_file, "secret"),
        &env,
    );
    assert!(
        said.contains("storage.http") && said.contains("403"),
        "{said}"
    );

    let env = [("COFFER_TEST_VAULT_TOKEN", token.as_str())];
    let said = refused(
        "vault-key",
        &vault_config(&bao.addr, &token_file, "secret"),
        &env,
    );
    assert!(
        said.contains("kms:") && said.contains("not found"),
        "{said}"
    );

    let root = [("COFFER_TEST_VAULT_TOKEN", root_token())];
    let root: Vec<(&str, &str)> = root.iter().map(|(k, v)| (*k, v.as_str())).collect();
    std::fs::write(&token_file, root_token()).unwrap();
    bao.root(
        Method::POST,
        "/v1/transit/keys/coffer",
        Some(json!({ "type": "aes256-gcm96" })),
    )
    .await;
    let said = refused(
        "vault-mount",
        &vault_config(&bao.addr, &token_file, "nothing-here"),
        &root,
    );
    assert!(
        said.contains("storage:") && said.contains("nothing is mounted at nothing-here"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_reads_cost_no_kms_call() {
    let moto = Moto::start();
    moto.kms_key();
    // moto closes every connection after one request: connections to the
    // KMS's proxy count KMS calls.
    let kms = Proxy::start(moto.port);
    let dir = tempfile::tempdir().unwrap();
    let config = aws_config(&moto.endpoint, "coffer", "alias/coffer-test").replace(
        &format!(
            "origin = {:?}\nauth = \"aws-sigv4\"\nservice = \"kms\"",
            moto.endpoint
        ),
        &format!(
            "origin = \"http://127.0.0.1:{}\"\nauth = \"aws-sigv4\"\nservice = \"kms\"",
            kms.port
        ),
    );
    let mut server = Server::start_with_env(dir.path(), &config, &moto.env());
    write_all(&server).await;
    server.stop();

    let started = kms.connections();
    let server = Server::start_with_env(dir.path(), &config, &moto.env());
    let at_start = kms.connections() - started;
    server.assert_reads(SECRETS[0].0, SECRETS[0].1).await;
    let first_read = kms.connections() - started - at_start;
    let before = kms.connections();
    for _ in 0..1_000 {
        server.assert_reads(SECRETS[0].0, SECRETS[0].1).await;
    }
    let per_thousand = kms.connections() - before;
    eprintln!(
        "KMS calls: {at_start} at start, {first_read} for the first read of a namespace, \
         {per_thousand} for the next 1,000 reads"
    );
    assert_eq!(per_thousand, 0, "reads are served from cached data keys");
}
