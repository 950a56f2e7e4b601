//! The cost of one storage call through the sandbox: a warm instance, a
//! guest that only echoes its key, so the time measured is the runtime's
//! overhead (pool, CPU budget, deadline, lifting and lowering).
//!
//! Build the components first: `cargo xtask build`, then
//! `cargo bench -p coffer-runtime --bench plugin_call`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use coffer_runtime::{Limits, PluginSpec, Runtime, RuntimeOptions, Storage, StoragePlugin};
use criterion::{Criterion, criterion_group, criterion_main};

fn plugin_dir() -> PathBuf {
    std::env::var_os("COFFER_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/plugins"))
        })
}

fn storage_call(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let spec = PluginSpec {
        name: "hostile-guest".into(),
        wasm_path: plugin_dir().join("hostile-guest.wasm"),
        sha256: None,
        config: BTreeMap::new(),
        limits: Limits::default(),
        files: Vec::new(),
        clock: false,
        env: Vec::new(),
    };
    let plugin = tokio
        .block_on(StoragePlugin::load(&runtime, spec, None))
        .unwrap();

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
}

criterion_group!(benches, storage_call);
criterion_main!(benches);
