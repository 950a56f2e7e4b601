//! The server's log as JSON lines (`--log-format json`), each line of a
//! request carrying the request's id, the one the audit trail and the
//! `x-request-id` header give.

#![allow(clippy::unwrap_used)]

use coffer_e2e::{Server, records};
use serde_json::Value;

#[tokio::test]
async fn json_log_lines_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(dir.path(), "", &[("COFFER_LOG_FORMAT", "json")]);
    server.put("app/ok", "v").await;
    records::plant(
        &dir.path().join("coffer.db"),
        "secrets/app/broken",
        b"damaged",
    )
    .await;
    let response = reqwest::Client::new()
        .get(format!("{}/v1/secrets/app/broken", server.addr))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let lines: Vec<Value> = server
        .log()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let refused = lines
        .iter()
        .find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed its integrity check"))
        })
        .unwrap_or_else(|| panic!("no integrity line in {lines:?}"));
    assert_eq!(refused["span"]["id"], id.as_str(), "{refused}");
    assert_eq!(refused["level"], "ERROR");
}
