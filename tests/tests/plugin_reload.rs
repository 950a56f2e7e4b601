//! Live plugin swap: `POST /v1/sys/plugins/reload`, `coffer plugin reload`
//! and SIGHUP load the plugin sections again and swap them in while
//! clients read and write, losing nothing; a section that fails a check is
//! refused, saying why, and the running plugins keep serving.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use coffer_e2e::server::{Server, plugin_dir};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The storage section on a component at `wasm` and the keyring section,
/// with `create` as keyring-file's `create_if_missing`.
fn sections(dir: &Path, wasm: &Path, create: bool) -> String {
    format!(
        "[storage]\nplugin = {:?}\n[storage.sql]\nurl = \"sqlite://{}\"\n\
         [keyring]\nplugin = \"keyring-file\"\n[keyring.config]\ncreate_if_missing = {create}\n\
         [keyring.files]\nkeyset = {{ path = {:?}, writable = true }}\n",
        wasm.display().to_string(),
        dir.join("coffer.db").display(),
        dir.join("keyset.json").display().to_string(),
    )
}

/// A newer build of `component`: the same code with a custom section
/// appended (a different SHA-256).
fn rebuilt(component: &[u8], build: u8) -> Vec<u8> {
    let name = b"coffer-test-build";
    let payload_len = 1 + name.len() + 1;
    let mut out = component.to_vec();
    out.push(0); // custom section
    out.push(payload_len as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.push(build);
    out
}

/// Clients writing and reading their own secrets until `stop`; counts
/// failures and remembers what each acknowledged.
async fn clients(
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
) -> Vec<(String, String)> {
    let mut tasks = Vec::new();
    for client in 0..16 {
        let (server, stop, failures, requests) = (
            server.clone(),
            stop.clone(),
            failures.clone(),
            requests.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut round = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("swap/c{client}-{}", round % 20);
                let value = format!("v{client}-{round}");
                let (status, _) = server.put(&path, &value).await;
                if status == StatusCode::OK {
                    acknowledged.retain(|(p, _): &(String, String)| *p != path);
                    acknowledged.push((path.clone(), value.clone()));
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                let (status, body) = server.get(&path).await;
                if status != StatusCode::OK || body["value"] != json!(value) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                requests.fetch_add(2, Ordering::Relaxed);
                round += 1;
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plugins_swap_under_load_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let component = std::fs::read(plugin_dir().join("storage-sql.wasm")).unwrap();
    let wasm = dir.path().join("my-storage.wasm");
    std::fs::write(&wasm, &component).unwrap();
    let server = Arc::new(Server::start(
        dir.path(),
        &sections(dir.path(), &wasm, true),
    ));
    let (_, before) = server.call(Method::GET, "/v1/sys/plugins", None).await;

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let load = tokio::spawn(clients(
        server.clone(),
        stop.clone(),
        failures.clone(),
        requests.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 1. Through the API: a newer storage build, a changed keyring config.
    std::fs::write(&wasm, rebuilt(&component, 1)).unwrap();
    let config = std::fs::read_to_string(&server.config_file).unwrap();
    std::fs::write(
        &server.config_file,
        config.replace("create_if_missing = true", "create_if_missing = false"),
    )
    .unwrap();
    let (status, body) = server
        .call(Method::POST, "/v1/sys/plugins/reload", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let storage = &body["reloaded"][0];
    assert_eq!(storage["kind"], "storage");
    assert_ne!(storage["sha256"], storage["sha256_before"], "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 2. Through the CLI.
    std::fs::write(&wasm, rebuilt(&component, 2)).unwrap();
    let (said, _) = server.cli_streams(&["plugin", "reload"]);
    assert!(said.contains("storage") && said.contains("->"), "{said}");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 3. By SIGHUP.
    std::fs::write(&wasm, rebuilt(&component, 3)).unwrap();
    server.signal("HUP");
    let mut swapped = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if server.log().contains("SIGHUP: plugin reloaded") {
            swapped = true;
            break;
        }
    }
    assert!(swapped, "{}", server.log());

    // 4. A broken build is refused, naming the section; nothing changes.
    let (_, serving) = server.call(Method::GET, "/v1/sys/plugins", None).await;
    std::fs::write(&wasm, b"not a component").unwrap();
    let (status, body) = server
        .call(Method::POST, "/v1/sys/plugins/reload", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "reload_refused");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("storage") && message.contains("keep serving"),
        "{message}"
    );
    let (_, still) = server.call(Method::GET, "/v1/sys/plugins", None).await;
    assert_eq!(still, serving);
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop.store(true, Ordering::Relaxed);
    let acknowledged = load.await.unwrap();
    let failed = failures.load(Ordering::Relaxed);
    eprintln!(
        "{failed} of {} requests failed across three swaps and a refused one",
        requests.load(Ordering::Relaxed)
    );
    assert_eq!(failed, 0, "requests failed during the swaps");
    assert!(acknowledged.len() >= 16);
    for (path, value) in &acknowledged {
        server.assert_reads(path, value).await;
    }
    assert_ne!(before, still);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_store_or_another_keyset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = plugin_dir().join("storage-sql.wasm");
    let server = Server::start(dir.path(), &sections(dir.path(), &wasm, true));
    server.put("app/db", "hunter2").await;
    let config = std::fs::read_to_string(&server.config_file).unwrap();

    // A copy of this server's database: the same records, another store.
    let other = dir.path().join("other.db");
    for suffix in ["", "-wal"] {
        let from = dir.path().join(format!("coffer.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, dir.path().join(format!("other.db{suffix}"))).unwrap();
        }
    }
    std::fs::write(
        &server.config_file,
        config.replace(
            &dir.path().join("coffer.db").display().to_string(),
            &other.display().to_string(),
        ),
    )
    .unwrap();
    let (status, body) = server
        .call(Method::POST, "/v1/sys/plugins/reload", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("coffer migrate"),
        "{body}"
    );

    // A keyset without the key in use.
    let fresh = dir.path().join("fresh-keyset.json");
    let keyset = std::process::Command::new(coffer_e2e::server::coffer_binary())
        .args(["keyset", "create", "--out"])
        .arg(&fresh)
        .status()
        .unwrap();
    assert!(keyset.success());
    std::fs::write(
        &server.config_file,
        config.replace(
            &dir.path().join("keyset.json").display().to_string(),
            &fresh.display().to_string(),
        ),
    )
    .unwrap();
    let (status, body) = server
        .call(Method::POST, "/v1/sys/plugins/reload", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("keyring:"),
        "{body}"
    );
    server.assert_reads("app/db", "hunter2").await;
}
