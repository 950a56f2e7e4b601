//! A misbehaving storage plugin behind the HTTP API: each bad call gets a
//! JSON error naming the plugin, and the server keeps answering.

#![allow(clippy::unwrap_used)]

use coffer_e2e::Server;
use coffer_e2e::server::plugin_dir;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The hostile plugin cannot store tokens, so the test plants one through
/// its `fixture:` config.
fn hostile_config(token: &str) -> String {
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let record = json!({
        "id": &hash[..16], "hash": hash, "name": "test", "policy": {"rules": [{"namespaces": "*", "capabilities": ["read"]}]},
        "created_at_ms": 0, "expires_at_ms": null,
    });
    format!(
        "[audit]\nenabled = false\n[storage]\nplugin = {:?}\n[storage.limits]\ncpu_ms = 200\ntimeout_ms = 1500\n[storage.config]\n\"fixture:tokens/{hash}\" = {:?}\n",
        plugin_dir()
            .join("hostile-guest.wasm")
            .display()
            .to_string(),
        record.to_string(),
    )
}

#[tokio::test]
async fn plugin_failures_become_json_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let token = "cft_hostile-test-token";
    let mut server = Server::start(dir.path(), &hostile_config(token));
    server.token = token.to_owned();

    for (name, status, code) in [
        ("loop", StatusCode::BAD_GATEWAY, "plugin_failed"),
        ("oom", StatusCode::BAD_GATEWAY, "plugin_failed"),
        ("panic", StatusCode::BAD_GATEWAY, "plugin_failed"),
        (
            "sleep",
            StatusCode::SERVICE_UNAVAILABLE,
            "plugin_unavailable",
        ),
        ("read-file", StatusCode::BAD_GATEWAY, "backend_error"),
    ] {
        let (got, body) = server.get(&format!("app/{name}")).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{name}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("hostile-guest"),
            "{body}"
        );
        let (health, _) = server.call(Method::GET, "/v1/sys/health", None).await;
        assert_eq!(health, StatusCode::OK, "after {name}");
        let (missing, _) = server.get("app/ordinary").await;
        assert_eq!(missing, StatusCode::NOT_FOUND, "after {name}");
    }
    assert!(server.log().contains("hostile-guest"));
}
