//! storage-sql passes the storage contract on SQLite and on a real
//! PostgreSQL server.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use coffer_runtime::{GuestError, Limits, SqlPool, Storage, StoragePlugin};

async fn sql_storage(url: &str, table: &str) -> Arc<dyn Storage> {
    let runtime = Box::leak(Box::new(common::runtime()));
    let pool = Arc::new(
        SqlPool::connect(url, 8, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let spec = common::spec("storage-sql", &[("table", table)], Limits::default());
    Arc::new(
        StoragePlugin::load(runtime, spec, Some(pool))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_sql_on_sqlite_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    common::conformance::run_all(sql_storage(&url, "coffer_kv").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_sql_on_postgres_passes_the_contract() {
    let url = std::env::var("COFFER_TEST_DATABASE_URL").expect(
        "COFFER_TEST_DATABASE_URL is not set: run `cargo xtask test`, which starts PostgreSQL",
    );
    let table = format!("kv_{}_{}", std::process::id(), rand_suffix());
    common::conformance::run_all(sql_storage(&url, &table).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_name_that_is_not_an_identifier_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let storage = sql_storage(&url, "kv; DROP TABLE x").await;
    let error = storage.get("k").await.unwrap_err().to_string();
    assert!(error.contains("not a plain SQL identifier"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_sqlite_database_cannot_reach_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let runtime = common::runtime();
    let pool = Arc::new(
        SqlPool::connect(&url, 2, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let spec = common::spec("hostile-guest", &[], Limits::default());
    let plugin = StoragePlugin::load(&runtime, spec, Some(pool))
        .await
        .unwrap();

    let evil = dir.path().join("evil.db");
    let copy = dir.path().join("copy.db");
    for statement in [
        format!("ATTACH DATABASE '{}' AS evil", evil.display()),
        format!("VACUUM INTO '{}'", copy.display()),
    ] {
        let error = plugin.get(&format!("sql:{statement}")).await.unwrap_err();
        assert!(
            matches!(error.guest(), Some(GuestError::Invalid(_))),
            "{statement}: {error:?}"
        );
    }
    assert!(!evil.exists() && !copy.exists(), "no file was created");
    let ordinary = plugin
        .get("sql:CREATE TABLE fine (a INTEGER)")
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8(ordinary.value)
            .unwrap()
            .contains("CREATE TABLE")
    );
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into()
}
