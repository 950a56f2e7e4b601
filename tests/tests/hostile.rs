//! A misbehaving storage plugin behind the HTTP API: each bad call gets a
//! JSON error naming the plugin, and the server keeps answering.

#![allow(clippy::unwrap_used)]

use coffer_e2e::Server;
use coffer_e2e::server::plugin_dir;
use reqwest::{Method, StatusCode};

/// The hostile plugin as the server's storage, honest on its own SQLite
/// database but for the keys that ask it to misbehave (its origin is one
/// nothing listens on).
fn hostile_config(dir: &std::path::Path, extra: &str) -> String {
    format!(
        "[audit]\nenabled = false\n[storage]\nplugin = {:?}\n[storage.sql]\nurl = {:?}\n\
         [storage.http]\norigin = \"http://127.0.0.1:9\"\n\
         [storage.limits]\ncpu_ms = 200\ntimeout_ms = 1500\n{extra}",
        plugin_dir()
            .join("hostile-guest.wasm")
            .display()
            .to_string(),
        format!("sqlite://{}", dir.join("hostile.db").display()),
    )
}

#[tokio::test]
async fn plugin_failures_become_json_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &hostile_config(dir.path(), ""));

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
        ("forge-log", StatusCode::BAD_GATEWAY, "backend_error"),
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
    let log = server.log();
    assert!(log.contains("hostile-guest"));
    // What the plugin said reached the log escaped, on the line it belongs to.
    assert!(log.contains("plugin failed\\n2026"), "{log}");
    assert!(
        !log.lines()
            .any(|line| line.contains("FORGED") && !line.contains("plugin failed")),
        "a plugin forged a log line:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "a terminal escape reached the log");
}

#[tokio::test]
async fn a_listing_that_never_moves_forward_stops_start_up_instead_of_hanging_it() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let stderr = coffer_e2e::server::refused_start(
        dir.path(),
        &hostile_config(dir.path(), "[storage.config]\nlist = \"stuck\"\n"),
        &[],
    );
    assert!(stderr.contains("does not move forward"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// A plugin whose batch answers do not match what was asked (one too few,
/// or each read answered with another key's record) moves no secret onto
/// a wrong record: the janitor reports the trouble, every secret still
/// reads back as written, and the server keeps serving.
#[tokio::test]
async fn batches_answered_short_or_out_of_order_lose_nothing() {
    for batch in ["short", "swap"] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(
            dir.path(),
            &hostile_config(
                dir.path(),
                &format!("[keys]\ngrace_ms = 0\n[storage.config]\nbatch = {batch:?}\n"),
            ),
        );
        let names: Vec<String> = (0..5).map(|i| format!("app/batch-{i}")).collect();
        for name in &names {
            let (status, body) = server.put(name, &format!("value of {name}")).await;
            assert_eq!(status, StatusCode::OK, "{batch}: {body}");
        }
        let (status, body) = server.call(Method::POST, "/v1/keys/app/rotate", None).await;
        assert_eq!(status, StatusCode::OK, "{batch}: {body}");

        let (status, cycle) = server.call(Method::POST, "/v1/sys/janitor/run", None).await;
        match batch {
            // No answer can be matched to its key: the batch fails whole.
            "short" => assert!(
                status != StatusCode::OK || cycle["moved"]["versions"] == 0,
                "{batch}: {status} {cycle}"
            ),
            // Each record opens only under its own key: the others are
            // refused and counted, never written back under another name.
            _ => {
                assert_eq!(status, StatusCode::OK, "{batch}: {cycle}");
                assert!(cycle["moved"]["failed"].as_u64() >= Some(4), "{cycle}");
            }
        }
        for name in &names {
            server.assert_reads(name, &format!("value of {name}")).await;
        }
        let (health, _) = server.call(Method::GET, "/v1/sys/health", None).await;
        assert_eq!(health, StatusCode::OK, "{batch}");
    }
}
