//! The HTTP API end to end, against the real binary on the embedded
//! default storage (SQLite) and keyring (a Tink keyset it creates).

#![allow(clippy::unwrap_used)]

use coffer_e2e::Server;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error: {body}"))
}

#[tokio::test]
async fn secrets_are_written_read_versioned_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");

    let (status, body) = server.put("payments/db/password", "hunter2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1);
    let (_, body) = server.put("payments/db/password", "hunter3").await;
    assert_eq!(body["version"], 2);

    let (status, body) = server.get("payments/db/password").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["value"].as_str(), body["version"].as_u64()),
        (Some("hunter3"), Some(2))
    );
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    for token in [server.token.as_str(), "cft_not-a-real-token"] {
        let response = reqwest::Client::new()
            .get(format!("{}/v1/secrets/payments/db/password", server.addr))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(response.headers()["cache-control"], "no-store", "{status}");
        assert!(response.headers().contains_key("x-request-id"), "{status}");
    }
    let (_, body) = server.get("payments/db/password?version=1").await;
    assert_eq!(body["value"], "hunter2");

    for name in ["api/key", "api/other", "zeta"] {
        server.put(&format!("payments/{name}"), "v").await;
    }
    let (_, body) = server.get("payments?limit=2").await;
    assert_eq!(body["names"], json!(["api/key", "api/other"]));
    let next = body["next"].as_str().unwrap().to_owned();
    let (_, body) = server.get(&format!("payments?limit=2&after={next}")).await;
    assert_eq!(body["names"], json!(["db/password", "zeta"]));
    assert_eq!(body["next"], Value::Null);
    let (_, body) = server.get("payments?prefix=api/").await;
    assert_eq!(body["names"], json!(["api/key", "api/other"]));
    let (_, body) = server.get("other-namespace").await;
    assert_eq!(body["names"], json!([]));

    let (status, _) = server
        .call(Method::DELETE, "/v1/secrets/payments/db/password", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("payments/db/password").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (_, body) = server.get("payments/db/password?version=1").await;
    assert_eq!(
        body["value"], "hunter2",
        "older versions survive a delete of the latest"
    );
    let (_, body) = server.put("payments/db/password", "again").await;
    assert_eq!(body["version"], 3);
}

#[tokio::test]
async fn check_and_set_refuses_stale_writers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let path = "/v1/secrets/app/counter";
    let (status, _) = server
        .call(Method::PUT, path, Some(json!({"value": "a", "cas": 0})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .call(Method::PUT, path, Some(json!({"value": "b", "cas": 0})))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "conflict")
    );
    let (status, body) = server
        .call(Method::PUT, path, Some(json!({"value": "b", "cas": 1})))
        .await;
    assert_eq!(
        (status, body["version"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    let (status, _) = server
        .call(Method::PUT, path, Some(json!({"value": "c", "cas": 1})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn concurrent_writers_each_get_their_own_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(Server::start(dir.path(), ""));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let (status, body) = server.put("race/one", &format!("v{i}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["version"].as_u64().unwrap()
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=16).collect::<Vec<u64>>());
}

/// Writes of one name that arrive together are written in one batch, yet
/// each keeps its own check-and-set verdict: of many writers expecting the
/// name not to exist, exactly one wins, and the value read is its value.
#[tokio::test]
async fn concurrent_check_and_set_writes_of_one_name_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(Server::start(dir.path(), ""));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({ "value": format!("v{i}"), "cas": 0 });
            let (status, _) = server
                .call(Method::PUT, "/v1/secrets/race/first", Some(body))
                .await;
            (i, status)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, status) = task.await.unwrap();
        match status {
            StatusCode::OK => winners.push(i),
            other => assert_eq!(other, StatusCode::CONFLICT),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (_, body) = server.get("race/first").await;
    assert_eq!(body["value"], format!("v{}", winners[0]));
    assert_eq!(body["version"], 1);
}

#[tokio::test]
async fn old_versions_beyond_the_retention_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "max_versions = 3");
    for i in 1..=5 {
        server.put("app/rotating", &format!("v{i}")).await;
    }
    let (status, _) = server.get("app/rotating?version=2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = server.get("app/rotating?version=3").await;
    assert_eq!(body["value"], "v3");
}

#[tokio::test]
async fn a_write_that_prunes_history_says_so_and_the_audit_trail_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "max_versions = 2");
    let (_, created) = server
        .call(
            Method::POST,
            "/v1/auth/tokens",
            Some(serde_json::json!({"name": "writer", "rules": [{"namespaces": "app", "capabilities": ["write"]}]})),
        )
        .await;
    let writer = created["token"].as_str().unwrap().to_owned();
    let mut answers = Vec::new();
    for i in 1..=3 {
        let (status, body) = server
            .call_as(
                &writer,
                Method::PUT,
                "/v1/secrets/app/history",
                Some(serde_json::json!({"value": format!("v{i}")})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        answers.push(body);
    }
    assert!(answers[1].get("pruned").is_none(), "{}", answers[1]);
    assert_eq!(
        answers[2]["pruned"],
        serde_json::json!([1]),
        "{}",
        answers[2]
    );
    let noted: Vec<Value> = server
        .audit_records()
        .into_iter()
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("pruned versions 1"))
        })
        .collect();
    assert_eq!(noted.len(), 1, "the pruning write is marked in the trail");
    assert_eq!(noted[0]["actor_name"], "writer");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    for token in ["", "cft_not-a-real-token", "Bearer", "something-else"] {
        let (status, body) = server
            .call_as(token, Method::GET, "/v1/secrets/app/x", None)
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{token}"
        );
    }
    let (status, body) = server
        .call_as("", Method::GET, "/v1/sys/health", None)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
}

#[tokio::test]
async fn malformed_requests_get_stable_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "max_value_bytes = 1024");
    let put = |path: &str, body: &[u8]| (Method::PUT, path.to_owned(), body.to_vec());
    let get = |path: &str| (Method::GET, path.to_owned(), Vec::new());
    let json_value = br#"{"value":"v"}"#;
    let long_value = format!(r#"{{"value":"{}"}}"#, "x".repeat(2000));
    let long_name = format!("/v1/secrets/app/{}", "n".repeat(600));
    let bad = (StatusCode::BAD_REQUEST, "bad_request");
    let cases = [
        (put("/v1/secrets/bad%20ns/x", json_value), bad),
        (put("/v1/secrets/app/a//b", json_value), bad),
        (put("/v1/secrets/app/x", b"not json"), bad),
        (put("/v1/secrets/app/x", br#"{"value":"v","extra":1}"#), bad),
        (put("/v1/secrets/app/x", br#"{"value":5}"#), bad),
        (put("/v1/secrets/app/x", long_value.as_bytes()), bad),
        (
            put("/v1/secrets/app/x", &[b' '; 1 << 20]),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ),
        (put(&long_name, json_value), bad),
        (put("/v1/secrets/app/pass%E2%80%8Bword", json_value), bad),
        (
            put("/v1/secrets/app/report%E2%80%AEfdp.exe", json_value),
            bad,
        ),
        (get("/v1/secrets/app/x?version=abc"), bad),
        (
            get("/v1/secrets/app/never-written"),
            (StatusCode::NOT_FOUND, "not_found"),
        ),
        (get("/v1/secrets/app?limit=0"), bad),
        (
            get("/v1/nothing-here"),
            (StatusCode::NOT_FOUND, "not_found"),
        ),
        (
            (Method::PATCH, "/v1/secrets/app/x".to_owned(), Vec::new()),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ),
    ];
    for ((method, path, body), (status, code)) in cases {
        let (got, answer) = server.call_raw(method.clone(), &path, body).await;
        let shown = &path[..path.len().min(80)];
        assert_eq!(
            (got, error_code(&answer)),
            (status, code),
            "{method} {shown}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // The server is still fine afterwards.
    let (status, _) = server.put("app/x", "ok").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_data_directory_holds_no_plaintext_and_secrets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Start from a directory others could enter, as an operator might.
    let open = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(dir.path(), open).unwrap();
    let mut server = Server::start(dir.path(), "");
    let value = "plaintext-canary-7f3a9c";
    let (status, _) = server.put("app/canary", value).await;
    assert_eq!(status, StatusCode::OK);
    let token = server.token.clone();
    assert!(!token.is_empty());
    server.stop();
    let server_log = server.log();

    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{} contains the plaintext",
                path.display()
            );
        }
    }
    let mode = |path: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&dir.path().join("root-token")), 0o600);
    assert_eq!(
        mode(dir.path()),
        0o755,
        "an existing directory keeps its permissions"
    );
    assert!(server_log.contains("chmod 700"), "but the operator is told");
    assert_eq!(
        mode(&dir.path().join("keyring")),
        0o700,
        "the keyset directory is private"
    );

    let server = Server::start(dir.path(), "");
    assert_eq!(server.token, token, "the root token is created once");
    let (status, body) = server.get("app/canary").await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some(value))
    );
    assert!(
        !server.log().contains(value),
        "the log must not contain secret values"
    );
}

/// The OpenAPI document and the router describe one API: every documented
/// operation reaches a handler, and a body over the limit is refused as
/// `payload_too_large` by every operation that takes one.
#[tokio::test]
async fn the_openapi_document_and_the_router_agree() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "max_value_bytes = 1024");
    let (status, document) = server
        .call_as("", Method::GET, "/v1/sys/openapi.json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 30, "{}", paths.len());
    let oversized = json!({ "value": "x".repeat(1024 * 6 + 17 * 1024) });
    let mut operations = 0;
    for (template, item) in paths {
        let path = template
            .replace("{namespace}", "docs")
            .replace("{name}", "app/config")
            .replace("{id}", "1");
        for (method, operation) in item.as_object().unwrap() {
            // Revoking is answered too, but must not revoke the token the
            // test runs with; a made-up id is a 404 from the handler.
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let takes_body = operation.get("requestBody").is_some();
            let body = takes_body.then(|| json!({}));
            let (status, answer) = server.call(method.clone(), &path, body).await;
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || answer["error"]["message"] == "no such endpoint";
            assert!(!unrouted, "{method} {template}: {status} {answer}");
            if takes_body {
                let (status, answer) = server
                    .call(method.clone(), &path, Some(oversized.clone()))
                    .await;
                assert_eq!(
                    (status, error_code(&answer)),
                    (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
                    "{method} {template}"
                );
            }
        }
    }
    assert!(operations >= 35, "{operations}");
}
