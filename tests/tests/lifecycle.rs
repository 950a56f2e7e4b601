//! A secret's lifecycle end to end: undelete, destroy, metadata and purge
//! over HTTP and the CLI, with the rights each needs and the audit records
//! each leaves.

#![allow(clippy::unwrap_used)]

use coffer_crypto::record::SecretRecord;
use coffer_e2e::{Server, records};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn call(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    server
        .call(method, &format!("/v1/secrets/{path}"), body)
        .await
}

async fn versions_of(server: &Server, path: &str) -> Vec<Value> {
    let (status, body) = call(server, Method::GET, &format!("{path}/metadata"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["versions"].as_array().unwrap().clone()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn versions_are_deleted_undeleted_and_destroyed_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    for value in ["one", "two", "three"] {
        server.put("app/db/password", value).await;
    }
    let (status, _) = call(&server, Method::DELETE, "app/db/password", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let versions = versions_of(&server, "app/db/password").await;
    assert_eq!(versions.len(), 3);
    assert!(versions[2]["deleted_at"].is_string(), "{versions:?}");
    assert_eq!(server.get("app/db/password").await.0, StatusCode::NOT_FOUND);

    let undelete = json!({ "versions": [3, 9] });
    let (status, body) = call(
        &server,
        Method::POST,
        "app/db/password/undelete",
        Some(undelete.clone()),
    )
    .await;
    assert_eq!(
        (status, &body["versions"]),
        (StatusCode::OK, &json!([3])),
        "{body}"
    );
    server.assert_reads("app/db/password", "three").await;
    let (_, body) = call(
        &server,
        Method::POST,
        "app/db/password/undelete",
        Some(undelete),
    )
    .await;
    assert_eq!(
        body["versions"],
        json!([]),
        "undeleting twice changes nothing"
    );

    let (status, body) = call(
        &server,
        Method::POST,
        "app/db/password/destroy",
        Some(json!({ "versions": [2] })),
    )
    .await;
    assert_eq!(
        (status, &body["versions"]),
        (StatusCode::OK, &json!([2])),
        "{body}"
    );
    let (status, body) = server.get("app/db/password?version=2").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::GONE, "key_destroyed"),
        "{body}"
    );
    let (status, _) = call(
        &server,
        Method::POST,
        "app/db/password/undelete",
        Some(json!({ "versions": [2] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.get("app/db/password?version=2").await.0,
        StatusCode::GONE,
        "destroyed stays destroyed"
    );
    server
        .assert_reads("app/db/password?version=1", "one")
        .await;
    let versions = versions_of(&server, "app/db/password").await;
    assert_eq!(
        versions
            .iter()
            .map(|v| v["destroyed"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [false, true, false]
    );

    // The next write still counts on from the highest version.
    let (_, body) = server.put("app/db/password", "four").await;
    assert_eq!(body["version"], 4);

    for (method, path, body, code) in [
        (
            Method::POST,
            "app/db/password/destroy",
            json!({ "versions": [] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "app/db/password/destroy",
            json!({ "version": 1 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "app/nothing/undelete",
            json!({ "versions": [1] }),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "app/db/password/destroy",
            Value::Null,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::PUT,
            "app/db/metadata",
            json!({ "value": "x" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "app/metadata/x",
            json!({ "value": "x" }),
            StatusCode::OK,
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = call(&server, method.clone(), path, body).await;
        assert_eq!(status, code, "{method} {path}: {answer}");
    }
}

#[tokio::test]
async fn destroyed_versions_and_purged_secrets_leave_no_bytes_in_the_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "[janitor]\nenabled = false\n");
    let db = dir.path().join("coffer.db");
    let files = [db.clone(), dir.path().join("coffer.db-wal")];
    let held = |needle: &[u8]| files.iter().any(|file| records::file_holds(file, needle));
    for value in ["one", "two", "three"] {
        server.put("shred/db", value).await;
    }
    server.put("shred/other", "x").await;
    let record = SecretRecord::decode(&records::body(&db, "secrets/shred/db").await).unwrap();
    let second = record.get(2).unwrap().clone();
    assert!(held(&second.ciphertext) && held(&second.wrapped_key));

    call(
        &server,
        Method::POST,
        "shred/db/destroy",
        Some(json!({ "versions": [2] })),
    )
    .await;
    let record = SecretRecord::decode(&records::body(&db, "secrets/shred/db").await).unwrap();
    let destroyed = record.get(2).unwrap();
    assert!(
        destroyed.is_destroyed()
            && destroyed.ciphertext.is_empty()
            && destroyed.wrapped_key.is_empty()
    );
    assert!(
        !held(&second.ciphertext) && !held(&second.wrapped_key),
        "the database files still hold the destroyed version"
    );

    let third = record.get(3).unwrap().clone();
    call(&server, Method::DELETE, "shred/db/metadata", None).await;
    assert!(!held(&third.ciphertext) && !held(&third.wrapped_key));
    server.assert_reads("shred/other", "x").await;
}

#[tokio::test]
async fn metadata_bounds_history_requires_cas_and_carries_labels() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "max_versions = 5\n");
    let change = json!({ "max_versions": 2, "cas_required": true, "custom_metadata": { "owner": "payments" } });
    let (status, body) = call(&server, Method::PUT, "app/api-key/metadata", Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["max_versions"],
            &body["effective_max_versions"],
            &body["current_version"]
        ),
        (&json!(2), &json!(2), &json!(0))
    );
    assert_eq!(
        server.get("app/api-key").await.0,
        StatusCode::NOT_FOUND,
        "metadata alone is no value"
    );

    let (status, body) = server.put("app/api-key", "k1").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("cas"),
        "{body}"
    );
    for (cas, value) in [(0, "k1"), (1, "k2"), (2, "k3")] {
        let (status, body) = call(
            &server,
            Method::PUT,
            "app/api-key",
            Some(json!({ "value": value, "cas": cas })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, body) = call(&server, Method::GET, "app/api-key/metadata", None).await;
    assert_eq!(
        (&body["oldest_version"], &body["current_version"]),
        (&json!(2), &json!(3)),
        "{body}"
    );
    assert_eq!(body["custom_metadata"], json!({ "owner": "payments" }));

    // Fields left out stay; custom metadata given replaces the old.
    let (_, body) = call(
        &server,
        Method::POST,
        "app/api-key/metadata",
        Some(json!({ "custom_metadata": { "team": "core" } })),
    )
    .await;
    assert_eq!(
        (&body["max_versions"], &body["cas_required"]),
        (&json!(2), &json!(true))
    );
    assert_eq!(body["custom_metadata"], json!({ "team": "core" }));

    for bad in [
        json!({ "max_versions": 6 }),
        json!({ "custom_metadata": { "k": "v".repeat(513) } }),
        json!({ "custom_metadata": { "k": 1 } }),
        json!({ "colour": "blue" }),
    ] {
        let (status, body) = call(
            &server,
            Method::PUT,
            "app/api-key/metadata",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, _) = call(&server, Method::GET, "app/missing/metadata", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_purged_secret_is_gone_from_reads_and_listings_and_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    for name in ["a", "b", "c"] {
        server.put(&format!("app/{name}"), "old").await;
        server.put(&format!("app/{name}"), "older").await;
    }
    let (status, _) = call(&server, Method::DELETE, "app/b/metadata", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(server.get("app/b").await.0, StatusCode::NOT_FOUND);
    assert_eq!(server.get("app/b?version=1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&server, Method::GET, "app/b/metadata", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&server, Method::DELETE, "app/b/metadata", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, body) = server.get("app").await;
    assert_eq!(body["names"], json!(["a", "c"]), "{body}");

    let (_, body) = server.put("app/b", "new").await;
    assert_eq!(body["version"], 1, "a purged secret starts again");
    server.assert_reads("app/b", "new").await;

    // The purge survives a restart, and the key usage no longer counts it.
    let mut server = server;
    server.stop();
    let server = Server::start(dir.path(), "");
    server.assert_reads("app/b", "new").await;
    let (_, keys) = server.call(Method::GET, "/v1/keys/app", None).await;
    assert_eq!(
        (&keys["secrets"], &keys["versions"]),
        (&json!(3), &json!(5)),
        "{keys}"
    );
}

#[tokio::test]
async fn each_change_needs_its_right_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    server.put("app/db", "one").await;
    server.put("app/db", "two").await;
    let (_, answer) = server
        .call(
            Method::POST,
            "/v1/auth/tokens",
            Some(json!({"name": "app", "rules": [{"namespaces": "app", "capabilities": ["read", "write", "list", "delete"]}]})),
        )
        .await;
    let token = answer["token"].as_str().unwrap().to_owned();
    let as_app = |method: Method, path: &str, body: Option<Value>| {
        let token = token.clone();
        let server = &server;
        let path = format!("/v1/secrets/{path}");
        async move { server.call_as(&token, method, &path, body).await.0 }
    };
    let versions = || Some(json!({ "versions": [1] }));
    assert_eq!(
        as_app(Method::POST, "app/db/destroy", versions()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        as_app(Method::DELETE, "app/db/metadata", None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        as_app(Method::GET, "app/db/metadata", None).await,
        StatusCode::OK
    );
    assert_eq!(
        as_app(
            Method::PUT,
            "app/db/metadata",
            Some(json!({ "max_versions": 1 }))
        )
        .await,
        StatusCode::FORBIDDEN,
        "shortening history below what is kept takes destroy"
    );
    assert_eq!(
        as_app(Method::DELETE, "app/db", None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        as_app(
            Method::POST,
            "app/db/undelete",
            Some(json!({ "versions": [2] }))
        )
        .await,
        StatusCode::OK
    );
    server.assert_reads("app/db?version=1", "one").await;

    call(&server, Method::POST, "app/db/destroy", versions()).await;
    call(
        &server,
        Method::PUT,
        "app/db/metadata",
        Some(json!({ "max_versions": 3 })),
    )
    .await;
    call(&server, Method::DELETE, "app/db/metadata", None).await;
    let records = server.audit_records();
    let done = |action: &str| {
        records
            .iter()
            .filter(|r| r["action"] == action && r["outcome"] != "requested")
            .map(|r| {
                (
                    r["status"].as_u64().unwrap(),
                    r["detail"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        done("secret.destroy"),
        [
            (403, String::new()),
            (200, "destroyed versions [1]".to_owned())
        ]
    );
    assert_eq!(
        done("secret.undelete"),
        [(200, "undeleted versions [2]".to_owned())]
    );
    assert_eq!(done("secret.metadata.write").len(), 2);
    assert_eq!(done("secret.metadata.read").len(), 1);
    let purges = done("secret.purge");
    assert_eq!(purges[0].0, 403);
    assert!(purges[1].1.contains("1 versions destroyed"), "{purges:?}");
    for action in [
        "secret.destroy",
        "secret.purge",
        "secret.undelete",
        "secret.metadata.write",
    ] {
        assert!(
            records
                .iter()
                .any(|r| r["action"] == action && r["outcome"] == "requested"),
            "{action} is recorded before it runs"
        );
    }
    let audit = std::fs::read_to_string(dir.path().join("audit/audit.log")).unwrap();
    assert!(
        !audit.contains("app/db"),
        "secret names are kept out of the trail"
    );
}

#[tokio::test]
async fn the_cli_undeletes_destroys_and_edits_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    server.put("app/token", "one").await;
    server.put("app/token", "two").await;
    server.cli_streams(&["secret", "delete", "app", "token"]);
    let (out, _) = server.cli_streams(&["secret", "undelete", "app", "token", "--versions", "2"]);
    assert_eq!(out.trim(), "app/token: undeleted versions 2");
    let (out, _) = server.cli_streams(&["secret", "destroy", "app", "token", "--versions", "1,2"]);
    assert_eq!(out.trim(), "app/token: destroyed versions 1, 2");
    let (out, _) = server.cli_streams(&[
        "secret",
        "metadata",
        "app",
        "token",
        "--max-versions",
        "3",
        "--cas-required",
        "true",
        "--custom",
        "owner=ops",
        "--format",
        "json",
    ]);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&shown["max_versions"], &shown["custom_metadata"]),
        (&json!(3), &json!({ "owner": "ops" }))
    );
    let (out, _) = server.cli_streams(&["secret", "metadata", "app", "token", "--format", "json"]);
    let shown: Value = serde_json::from_str(&out).unwrap();
    let (table, _) = server.cli_streams(&["secret", "metadata", "app", "token"]);
    assert!(table.contains("VERSION  CREATED"), "{table}");
    assert_eq!(shown["versions"].as_array().unwrap().len(), 2);
    let output = server.cli(&[
        "secret",
        "metadata",
        "app",
        "token",
        "--custom",
        "no-equals",
    ]);
    assert_eq!(output.status.code(), Some(2));
    server.cli_streams(&["secret", "metadata", "app", "token", "--delete"]);
    let output = server.cli(&["secret", "metadata", "app", "token"]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "a purged secret is not found"
    );
}
