//! The cost of calls through the sandbox, each next to a baseline measured
//! in the same run:
//!
//! - one storage call on a warm instance of a guest that only echoes its
//!   key (the runtime's overhead: pool, CPU budget, deadline, lifting and
//!   lowering), next to the same async call shape without a plugin;
//! - one request through the `http` capability (the guest sends it, the
//!   host checks, sends and hands the response back), next to the same
//!   request made directly with a client like the host's, both to a
//!   local server that answers at once.
//!
//! Build the components first: `cargo xtask components`, then
//! `cargo bench -p coffer-runtime --bench plugin_call`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use coffer_runtime::{
    Grants, HttpAuth, HttpClient, HttpGrant, Limits, PluginSpec, Runtime, RuntimeOptions, SqlPool,
    Storage, StoragePlugin,
};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn plugin_dir() -> PathBuf {
    std::env::var_os("COFFER_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/plugins"))
        })
}

/// An HTTP/1.1 server on 127.0.0.1 answering every request with `ok`,
/// keeping connections alive. Returns its origin.
async fn answering_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 << 10];
                let mut filled = 0;
                loop {
                    let Ok(read) = stream.read(&mut buffer[filled..]).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    filled += read;
                    // Requests carry no body: each ends at a blank line.
                    while let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n")
                    {
                        buffer.copy_within(end + 4..filled, 0);
                        filled -= end + 4;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    origin
}

fn plugin_calls(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let origin = tokio.block_on(answering_server());
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let database = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", database.path().join("bench.db").display());
    let pool = tokio
        .block_on(SqlPool::connect(&url, 2, Limits::default().call_timeout))
        .unwrap();
    let http = tokio
        .block_on(HttpClient::connect(HttpGrant {
            origin: origin.clone(),
            ca_file: None,
            timeout: Duration::from_secs(5),
            max_response_bytes: 1 << 20,
            actions: None,
            paths: None,
            auth: HttpAuth::None,
        }))
        .unwrap();
    let spec = PluginSpec {
        name: "hostile-guest".into(),
        wasm_path: plugin_dir().join("hostile-guest.wasm"),
        sha256: None,
        config: BTreeMap::new(),
        limits: Limits::default(),
        grants: Grants {
            sql: Some(Arc::new(pool)),
            http: Some(http),
            ..Grants::default()
        },
    };
    let plugin = tokio.block_on(StoragePlugin::load(&runtime, spec)).unwrap();

    c.bench_function("storage get, 32-byte key, warm instance", |b| {
        b.iter(|| {
            tokio
                .block_on(plugin.get("0123456789abcdef0123456789abcdef"))
                .unwrap()
        })
    });
    c.bench_function(
        "baseline: the same async call shape without a plugin",
        |b| {
            b.iter(|| {
                tokio.block_on(async {
                    std::hint::black_box(b"0123456789abcdef0123456789abcdef".to_vec())
                })
            })
        },
    );

    c.bench_function("http GET through the capability, from a plugin", |b| {
        b.iter(|| {
            let entry = tokio
                .block_on(plugin.get("http:GET /bench"))
                .unwrap()
                .unwrap();
            assert_eq!(entry.value, b"200\nok");
        })
    });
    let direct = reqwest::Client::builder()
        .use_rustls_tls()
        .no_proxy()
        .build()
        .unwrap();
    let target = format!("{origin}/bench");
    c.bench_function("baseline: the same GET made directly by the host", |b| {
        b.iter(|| {
            tokio.block_on(async {
                let response = direct.get(&target).send().await.unwrap();
                assert_eq!(response.bytes().await.unwrap().as_ref(), b"ok");
            })
        })
    });
}

criterion_group!(benches, plugin_calls);
criterion_main!(benches);
