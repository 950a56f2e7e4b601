//! Shared helpers of the runtime's tests: where built components are, and
//! a runtime with the shared compile cache.

#![allow(dead_code, clippy::unwrap_used)]

pub mod origin;

use std::collections::BTreeMap;
use std::path::PathBuf;

use std::sync::Arc;

use coffer_runtime::{
    Grants, HttpAuth, HttpClient, HttpGrant, Limits, PluginSpec, Runtime, RuntimeOptions, SqlPool,
};

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
        grants: Grants::default(),
    }
}

/// The hostile guest's spec, lent a fresh SQLite database in the returned
/// directory and an origin nothing listens on (it imports `sql` and
/// `http`, which each need a grant).
pub async fn hostile_spec(limits: Limits) -> (tempfile::TempDir, PluginSpec) {
    hostile_spec_on("http://127.0.0.1:9", HttpAuth::None, limits).await
}

/// The hostile guest's spec with an origin of the test's choosing.
pub async fn hostile_spec_on(
    origin: &str,
    auth: HttpAuth,
    limits: Limits,
) -> (tempfile::TempDir, PluginSpec) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hostile.db").display());
    let pool = SqlPool::connect(&url, 2, limits.call_timeout)
        .await
        .unwrap();
    let mut spec = storage_spec("hostile-guest", &[], limits, Arc::new(pool));
    spec.grants.http = Some(origin_grant(origin, auth).await);
    (dir, spec)
}

/// The hostile guest's spec on a database of the test's choosing.
pub async fn hostile_spec_with(pool: Arc<SqlPool>, limits: Limits) -> PluginSpec {
    let mut spec = storage_spec("hostile-guest", &[], limits, pool);
    spec.grants.http = Some(origin_grant("http://127.0.0.1:9", HttpAuth::None).await);
    spec
}

/// A grant of `origin`.
pub async fn origin_grant(origin: &str, auth: HttpAuth) -> Arc<HttpClient> {
    HttpClient::connect(HttpGrant {
        origin: origin.to_owned(),
        ca_file: None,
        timeout: std::time::Duration::from_secs(5),
        max_response_bytes: 1 << 20,
        actions: None,
        paths: None,
        auth,
    })
    .await
    .unwrap()
}

/// A spec of a storage plugin lent `pool`.
pub fn storage_spec(
    name: &str,
    config: &[(&str, &str)],
    limits: Limits,
    pool: Arc<SqlPool>,
) -> PluginSpec {
    let mut spec = spec(name, config, limits);
    spec.grants.sql = Some(pool);
    spec
}
