//! storage-dynamodb (on moto, every request signed and checked) and
//! storage-vault (on OpenBao, with a token limited to its path) pass the
//! same storage contract as storage-sql, and hold their own limits.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use coffer_e2e::aws::Moto;
use coffer_e2e::openbao::OpenBao;
use coffer_e2e::plugins;
use coffer_runtime::conformance::{self, Scope};
use coffer_runtime::{Expected, GuestError, Storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_dynamodb_passes_the_contract() {
    let moto = Moto::start();
    let grant = plugins::aws_grant(&moto, "dynamodb").await;
    let config = [("table", "coffer"), ("create_table", "true")];
    let storage = plugins::storage(plugins::spec("storage-dynamodb", &config, grant)).await;
    let report = conformance::storage(Arc::new(storage), Scope::scratch()).await;
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_vault_passes_the_contract() {
    let bao = OpenBao::start();
    let token = bao.prepare(false, "1h").await;
    let grant = plugins::vault_grant(&bao, &token).await;
    let storage = plugins::storage(plugins::spec("storage-vault", &[], grant)).await;
    let report = conformance::storage(Arc::new(storage), Scope::scratch()).await;
    assert!(report.passed(), "{report}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_vault_token_is_renewed_and_an_approle_logs_in_again() {
    let bao = OpenBao::start();
    let token = bao.prepare(false, "3s").await;
    let renewed = plugins::storage(plugins::spec(
        "storage-vault",
        &[],
        plugins::vault_grant(&bao, &token).await,
    ))
    .await;

    use reqwest::Method;
    use serde_json::json;
    bao.root(
        Method::POST,
        "/v1/sys/auth/approle",
        Some(json!({ "type": "approle" })),
    )
    .await;
    let role = json!({ "token_policies": ["coffer"], "token_ttl": "2s", "token_max_ttl": "4s" });
    bao.root(Method::POST, "/v1/auth/approle/role/coffer", Some(role))
        .await;
    let role_id = bao
        .root(Method::GET, "/v1/auth/approle/role/coffer/role-id", None)
        .await;
    let secret_id = bao
        .root(
            Method::POST,
            "/v1/auth/approle/role/coffer/secret-id",
            Some(json!({})),
        )
        .await;
    let auth = coffer_runtime::HttpAuth::VaultAppRole {
        mount: "approle".to_owned(),
        role_id: zeroize::Zeroizing::new(role_id["data"]["role_id"].as_str().unwrap().to_owned()),
        secret_id: zeroize::Zeroizing::new(
            secret_id["data"]["secret_id"].as_str().unwrap().to_owned(),
        ),
    };
    let logged_in = plugins::storage(plugins::spec(
        "storage-vault",
        &[],
        plugins::grant(&bao.addr, auth).await,
    ))
    .await;

    // Past both the token's lifetime and the AppRole tokens' maximum.
    for round in 0..4 {
        for (which, storage) in [&renewed, &logged_in].into_iter().enumerate() {
            let key = format!("renewal/{which}/{round}");
            storage.put(&key, b"v", Expected::Any).await.unwrap();
            assert_eq!(storage.get(&key).await.unwrap().unwrap().value, b"v");
        }
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_plugin_cannot_reach_the_tokens_endpoints_or_forge_a_token() {
    let bao = OpenBao::start();
    let token = bao.prepare(false, "1h").await;
    let root = format!("root-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hostile.db").display());
    let pool = coffer_runtime::SqlPool::connect(&url, 1, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let mut spec = plugins::spec(
        "hostile-guest",
        &[],
        plugins::vault_grant(&bao, &token).await,
    );
    spec.grants.sql = Some(Arc::new(pool));
    let hostile = plugins::storage(spec).await;
    let send = |request: String| {
        let hostile = &hostile;
        async move { hostile.get(&format!("http:{request}")).await }
    };
    for request in [
        "GET /v1/auth/token/lookup-self".to_owned(),
        "POST /v1/auth/token/create".to_owned(),
        format!("GET /v1/sys/mounts\nX-Vault-Token: {root}"),
    ] {
        let error = send(request.clone()).await.unwrap_err();
        assert!(
            matches!(error.guest(), Some(GuestError::Denied(_))),
            "{request}: {error}"
        );
    }
    // A token the plugin puts in a header is dropped: the host's own,
    // limited token is sent, and Vault refuses what only root may read.
    let answer = send(format!("GET /v1/secret/data/other\nX-Vault-Token: {root}"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8(answer.value)
            .unwrap()
            .starts_with("403\n")
    );
}
