//! Shared helpers of the runtime's tests: where built components are, and
//! a runtime with the shared compile cache.

#![allow(dead_code, clippy::unwrap_used)]

pub mod conformance;

use std::collections::BTreeMap;
use std::path::PathBuf;

use coffer_runtime::{Limits, PluginSpec, Runtime, RuntimeOptions};

/// The directory `cargo xtask build|test` installs components into.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("COFFER_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/plugins"))
        })
}

/// The path of component `name`, failing clearly when it was not built.
pub fn component(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask test` (it builds the components first)",
        path.display()
    );
    path
}

pub fn runtime() -> Runtime {
    let cache_dir = std::env::var_os("COFFER_TEST_CACHE_DIR").map(PathBuf::from);
    Runtime::new(RuntimeOptions { cache_dir }).unwrap()
}

pub fn spec(name: &str, config: &[(&str, &str)], limits: Limits) -> PluginSpec {
    PluginSpec {
        name: name.to_owned(),
        wasm_path: component(name),
        sha256: None,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        limits,
        files: Vec::new(),
        clock: false,
        env: Vec::new(),
    }
}
