//! storage-dynamodb (on moto, every request signed and checked) and
//! storage-vault (on OpenBao, with a token limited to its path) pass the
//! same storage contract as storage-sql, and hold their own limits.

#![allow(clippy::unwrap_used)]

#[path = "../../host/runtime/tests/common/conformance.rs"]
mod conformance;

use std::sync::Arc;

use coffer_e2e::aws::Moto;
use coffer_e2e::openbao::OpenBao;
use coffer_e2e::plugins;
use coffer_runtime::{Expected, GuestError, Storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_dynamodb_passes_the_contract() {
    let moto = Moto::start();
    let grant = plugins::aws_grant(&moto, "dynamodb").await;
    let config = [("table", "coffer"), ("create_table", "true")];
    let storage = plugins::storage(plugins::spec("storage-dynamodb", &config, grant)).await;
    conformance::run_all(Arc::new(storage)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_vault_passes_the_contract() {
    let bao = OpenBao::start();
    let token = bao.prepare(false, "1h").await;
    let grant = plugins::vault_grant(&bao, &token).await;
    let storage = plugins::storage(plugins::spec("storage-vault", &[], grant)).await;
    conformance::run_all(Arc::new(storage)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_vault_lists_keys_of_any_length_in_order() {
    let bao = OpenBao::start();
    let token = bao.prepare(false, "1h").await;
    let grant = plugins::vault_grant(&bao, &token).await;
    let storage = plugins::storage(plugins::spec("storage-vault", &[], grant)).await;
    // Names long enough to span several path segments, and ones that are
    // prefixes of each other, with bytes Vault paths cannot carry.
    let mut keys: Vec<String> = vec![
        "long/a".to_owned(),
        format!("long/{}", "a".repeat(400)),
        format!("long/{}b", "a".repeat(400)),
        format!("long/{}", "é/ ?#%".repeat(150)),
        "long/b".to_owned(),
    ];
    for key in &keys {
        storage
            .put(key, key.as_bytes(), Expected::Any)
            .await
            .unwrap();
    }
    keys.sort();
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = storage.list("long/", after.as_deref(), 2).await.unwrap();
        listed.extend(page.keys);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, keys);
    for key in &keys {
        let entry = storage.get(key).await.unwrap().unwrap();
        assert_eq!(entry.value, key.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_dynamodb_refuses_what_dynamodb_cannot_hold_and_names_a_missing_table() {
    let moto = Moto::start();
    let grant = plugins::aws_grant(&moto, "dynamodb").await;
    let missing = plugins::storage(plugins::spec(
        "storage-dynamodb",
        &[("table", "absent")],
        grant.clone(),
    ))
    .await;
    let error = missing.get("k").await.unwrap_err().to_string();
    assert!(
        error.contains("absent") && error.contains("create_table"),
        "{error}"
    );

    let storage = plugins::storage(plugins::spec(
        "storage-dynamodb",
        &[("table", "coffer"), ("create_table", "true")],
        grant,
    ))
    .await;
    let error = storage
        .put("big", &vec![0; 500 << 10], Expected::Any)
        .await
        .unwrap_err();
    assert!(
        matches!(error.guest(), Some(GuestError::Invalid(_))),
        "{error}"
    );
}
