//! kms-vault-transit (on OpenBao) and kms-aws (on moto, every request
//! signed and checked) wrap and unwrap data keys bound to the host's AAD,
//! report key versions that rotation moves forward, and refuse a blob
//! that was altered or is presented under another AAD.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use coffer_e2e::aws::Moto;
use coffer_e2e::openbao::OpenBao;
use coffer_e2e::plugins;
use coffer_runtime::conformance::{self, KmsChecks};
use coffer_runtime::{GuestError, Kms, KmsPlugin};

/// The contract every KMS plugin keeps, on a key at version 1, rotated
/// once.
async fn wraps_unwraps_and_rotates(kms: KmsPlugin) {
    let kms = Arc::new(kms);
    assert_eq!(kms.describe().await.unwrap().version, 1);
    let report = conformance::kms(kms.clone(), KmsChecks { rotate: true }).await;
    assert!(report.passed(), "{report}");
    assert_eq!(kms.describe().await.unwrap().version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_vault_transit_keeps_the_kms_contract() {
    let bao = OpenBao::start();
    let token = bao.prepare(true, "1h").await;
    let grant = plugins::vault_grant(&bao, &token).await;
    let kms = plugins::kms(plugins::spec(
        "kms-vault-transit",
        &[("key", "coffer")],
        grant,
    ))
    .await;
    wraps_unwraps_and_rotates(kms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_vault_transit_never_creates_a_key_unless_told() {
    let bao = OpenBao::start();
    bao.prepare(false, "1h").await;
    let grant = plugins::vault_grant(&bao, &format!("root-{}", std::process::id())).await;
    let kms = plugins::kms(plugins::spec(
        "kms-vault-transit",
        &[("key", "missing")],
        grant.clone(),
    ))
    .await;
    let error = kms.describe().await.unwrap_err();
    assert_eq!(error.guest(), Some(&GuestError::NotFound), "{error}");
    let config = [("key", "made"), ("create_key", "true")];
    let kms = plugins::kms(plugins::spec("kms-vault-transit", &config, grant)).await;
    assert_eq!(kms.describe().await.unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_aws_keeps_the_kms_contract() {
    let moto = Moto::start();
    moto.kms_key();
    let grant = plugins::aws_grant(&moto, "kms").await;
    let kms = plugins::kms(plugins::spec(
        "kms-aws",
        &[("key_id", "alias/coffer-test")],
        grant,
    ))
    .await;
    wraps_unwraps_and_rotates(kms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_aws_names_a_missing_key_and_a_refused_signature() {
    let moto = Moto::start();
    let grant = plugins::aws_grant(&moto, "kms").await;
    let kms = plugins::kms(plugins::spec("kms-aws", &[("key_id", "alias/none")], grant)).await;
    let error = kms.describe().await.unwrap_err();
    assert_eq!(error.guest(), Some(&GuestError::NotFound), "{error}");

    let mut forged = coffer_crypto::sigv4::Credentials {
        access_key_id: moto.access_key_id.clone(),
        secret_access_key: zeroize::Zeroizing::new("not the secret".to_owned()),
        session_token: None,
    };
    let scope = coffer_crypto::sigv4::Scope {
        region: coffer_e2e::aws::REGION.to_owned(),
        service: "kms".to_owned(),
    };
    let auth = coffer_runtime::HttpAuth::AwsSigV4 {
        scope: scope.clone(),
        credentials: forged.clone(),
    };
    let grant = plugins::grant(&moto.endpoint, auth).await;
    let kms = plugins::kms(plugins::spec("kms-aws", &[("key_id", "alias/none")], grant)).await;
    let error = kms.describe().await.unwrap_err();
    assert!(
        matches!(error.guest(), Some(GuestError::Denied(_))),
        "{error}"
    );
    forged.access_key_id = "AKIAUNKNOWN".to_owned();
    let auth = coffer_runtime::HttpAuth::AwsSigV4 {
        scope,
        credentials: forged,
    };
    let grant = plugins::grant(&moto.endpoint, auth).await;
    let kms = plugins::kms(plugins::spec("kms-aws", &[("key_id", "alias/none")], grant)).await;
    let error = kms.describe().await.unwrap_err();
    assert!(
        matches!(error.guest(), Some(GuestError::Denied(_))),
        "{error}"
    );
}
