//! Loading a plugin straight through the runtime, with the grants a test
//! gives it: to check a backend against the storage contract, or a KMS
//! plugin's answers, without a server in between.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coffer_crypto::sigv4::{Credentials, Scope};
use coffer_runtime::{
    Grants, HttpAuth, HttpClient, HttpGrant, KmsPlugin, Limits, PluginSpec, Runtime,
    RuntimeOptions, StoragePlugin,
};
use zeroize::Zeroizing;

use crate::aws::{Moto, REGION};
use crate::openbao::OpenBao;
use crate::server::plugin_dir;

pub fn runtime() -> Runtime {
    let cache_dir = std::env::var_os("COFFER_TEST_CACHE_DIR").map(std::path::PathBuf::from);
    Runtime::new(RuntimeOptions { cache_dir }).unwrap()
}

/// The spec of plugin `name` with `config`, granted `http`.
pub fn spec(name: &str, config: &[(&str, &str)], http: Arc<HttpClient>) -> PluginSpec {
    PluginSpec {
        name: name.to_owned(),
        wasm_path: plugin_dir().join(format!("{name}.wasm")),
        sha256: None,
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        limits: Limits {
            call_timeout: Duration::from_secs(20),
            ..Limits::default()
        },
        grants: Grants {
            http: Some(http),
            ..Grants::default()
        },
    }
}

/// A grant of `origin` with `auth`.
pub async fn grant(origin: &str, auth: HttpAuth) -> Arc<HttpClient> {
    HttpClient::connect(HttpGrant {
        origin: origin.to_owned(),
        ca_file: None,
        timeout: Duration::from_secs(10),
        max_response_bytes: 8 << 20,
        actions: None,
        paths: None,
        auth,
    })
    .await
    .unwrap()
}

/// A grant of moto for `service`, signing with its IAM user's key.
pub async fn aws_grant(moto: &Moto, service: &str) -> Arc<HttpClient> {
    let auth = HttpAuth::AwsSigV4 {
        scope: Scope {
            region: REGION.to_owned(),
            service: service.to_owned(),
        },
        credentials: Credentials {
            access_key_id: moto.access_key_id.clone(),
            secret_access_key: Zeroizing::new(moto.secret_access_key.clone()),
            session_token: None,
        },
    };
    grant(&moto.endpoint, auth).await
}

/// A grant of OpenBao with `token`.
pub async fn vault_grant(bao: &OpenBao, token: &str) -> Arc<HttpClient> {
    let auth = HttpAuth::VaultToken {
        token: Zeroizing::new(token.to_owned()),
    };
    grant(&bao.addr, auth).await
}

pub async fn storage(spec: PluginSpec) -> StoragePlugin {
    StoragePlugin::load(&runtime(), spec).await.unwrap()
}

pub async fn kms(spec: PluginSpec) -> KmsPlugin {
    KmsPlugin::load(&runtime(), spec).await.unwrap()
}
