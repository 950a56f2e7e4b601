//! The `http` capability holds against a hostile plugin: requests reach
//! only the granted origin, carry the host's credentials and none the
//! plugin forged, never reach the token's own endpoints, and a response
//! too large, an origin that hangs or one that is down fails only the
//! call.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use coffer_runtime::{GuestError, HttpAuth, Limits, PluginError, Storage, StoragePlugin};
use common::origin::Origin;
use zeroize::Zeroizing;

const TOKEN: &str = "s.host-held-token";

fn limits() -> Limits {
    Limits {
        call_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// The hostile guest granted `origin`, authenticating with a Vault token.
async fn guest_on(origin: &Origin) -> (tempfile::TempDir, StoragePlugin) {
    let auth = HttpAuth::VaultToken {
        token: Zeroizing::new(TOKEN.to_owned()),
    };
    let (dir, spec) = common::hostile_spec_on(&origin.url, auth, limits()).await;
    let plugin = StoragePlugin::load(&common::runtime(), spec).await.unwrap();
    (dir, plugin)
}

/// What the guest got back for `request`.
async fn send(plugin: &StoragePlugin, request: &str) -> Result<String, PluginError> {
    let entry = plugin.get(&format!("http:{request}")).await?.unwrap();
    Ok(String::from_utf8(entry.value).unwrap())
}

fn assert_denied(outcome: Result<String, PluginError>, what: &str) {
    let error = outcome.unwrap_err();
    assert!(
        matches!(error.guest(), Some(GuestError::Denied(_))),
        "{what}: expected a refusal, got {error:?}"
    );
}

#[tokio::test]
async fn requests_stay_on_the_granted_origin() {
    let origin = Origin::start().await;
    let (_db, plugin) = guest_on(&origin).await;
    let before = origin.seen().len();
    for path in [
        "http://127.0.0.1:1/steal",
        "//evil.example/steal",
        "/v1/../../steal",
        "/v1/%2e%2e/steal",
        "@evil.example/steal",
        "steal",
    ] {
        assert_denied(send(&plugin, &format!("GET {path}")).await, path);
    }
    assert_eq!(origin.seen().len(), before, "nothing was sent");
    assert!(
        send(&plugin, "GET /v1/kv/data/a")
            .await
            .unwrap()
            .starts_with("200\n")
    );
    assert_eq!(
        origin.seen().last().unwrap().line,
        "GET /v1/kv/data/a HTTP/1.1"
    );
}

#[tokio::test]
async fn forged_credentials_are_dropped_and_the_hosts_sent() {
    let origin = Origin::start().await;
    let (_db, plugin) = guest_on(&origin).await;
    assert_denied(
        send(&plugin, "GET /v1/kv/data/a\nHost: evil.example").await,
        "a Host header",
    );
    assert_denied(
        send(&plugin, "GET /v1/kv/data/a\nX-Forwarded: a\r\nHost: evil").await,
        "a header with a line break",
    );
    send(
        &plugin,
        "GET /v1/kv/data/a\nX-Vault-Token: forged\nAuthorization: Bearer forged\nX-Amz-Security-Token: forged\nX-Plugin: kept",
    )
    .await
    .unwrap();
    let seen = origin.seen().pop().unwrap();
    assert_eq!(seen.header("x-vault-token"), Some(TOKEN), "{seen:?}");
    assert_eq!(seen.header("authorization"), None, "{seen:?}");
    assert_eq!(seen.header("x-amz-security-token"), None, "{seen:?}");
    assert_eq!(seen.header("x-plugin"), Some("kept"), "{seen:?}");
}

#[tokio::test]
async fn the_tokens_own_endpoints_are_out_of_reach() {
    let origin = Origin::start().await;
    let (_db, plugin) = guest_on(&origin).await;
    let before = origin.seen().len();
    for path in [
        "/v1/auth/token/lookup-self",
        "/v1/%61uth/token/lookup-self",
        "/v1/auth/token/create",
        "/v1/sys/wrapping/unwrap",
    ] {
        assert_denied(send(&plugin, &format!("POST {path}")).await, path);
    }
    assert_eq!(origin.seen().len(), before, "nothing was sent");
    assert_denied(
        plugin.get("env:VAULT_TOKEN").await.map(|_| String::new()),
        "the env",
    );
}

#[tokio::test]
async fn a_response_too_large_or_too_slow_fails_only_its_call() {
    let origin = Origin::start().await;
    let (_db, plugin) = guest_on(&origin).await;
    let error = send(&plugin, "GET /big").await.unwrap_err();
    assert!(
        matches!(error.guest(), Some(GuestError::Invalid(_))),
        "{error:?}"
    );
    let started = std::time::Instant::now();
    let error = send(&plugin, "GET /slow").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{error:?}");
    assert!(
        send(&plugin, "GET /v1/ok")
            .await
            .unwrap()
            .starts_with("200\n")
    );
    assert_eq!(plugin.get("hello").await.unwrap().unwrap().value, b"hello");
}

#[tokio::test]
async fn an_origin_that_is_down_is_unavailable_and_the_plugin_keeps_serving() {
    let (_db, spec) = common::hostile_spec(limits()).await;
    let plugin = StoragePlugin::load(&common::runtime(), spec).await.unwrap();
    let error = send(&plugin, "GET /v1/kv/data/a").await.unwrap_err();
    assert!(
        matches!(error.guest(), Some(GuestError::Unavailable(_))),
        "{error:?}"
    );
    assert_eq!(plugin.get("hello").await.unwrap().unwrap().value, b"hello");
}
