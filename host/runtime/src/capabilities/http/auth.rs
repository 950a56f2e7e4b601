//! The credentials the host adds to a plugin's requests, which never enter
//! the plugin: an AWS SigV4 signature made with the real clock, or a Vault
//! token — given, or obtained by AppRole login — kept alive by renewing it
//! before it expires (and logging in again when it can no longer be
//! renewed). Credentials sit in zeroizing memory and appear in no `Debug`,
//! log or error.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use coffer_crypto::sigv4::{self, Credentials, Scope};
use serde_json::Value;
use zeroize::Zeroizing;

/// How a grant authenticates to its origin.
pub enum HttpAuth {
    /// Nothing added.
    None,
    /// AWS Signature Version 4.
    AwsSigV4 {
        scope: Scope,
        credentials: Credentials,
    },
    /// A Vault/OpenBao token, sent as `X-Vault-Token`.
    VaultToken { token: Zeroizing<String> },
    /// A Vault/OpenBao AppRole: the host logs in for a token.
    VaultAppRole {
        /// Where the AppRole auth method is mounted (`approle`).
        mount: String,
        role_id: Zeroizing<String>,
        secret_id: Zeroizing<String>,
    },
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpAuth::None => f.write_str("None"),
            HttpAuth::AwsSigV4 { scope, credentials } => f
                .debug_struct("AwsSigV4")
                .field("scope", scope)
                .field("credentials", credentials)
                .finish(),
            HttpAuth::VaultToken { .. } => f.write_str("VaultToken(..)"),
            HttpAuth::VaultAppRole { mount, .. } => f
                .debug_struct("VaultAppRole")
                .field("mount", mount)
                .finish_non_exhaustive(),
        }
    }
}

/// A grant's credentials while it is in use.
pub(super) enum Session {
    None,
    Aws {
        scope: Scope,
        credentials: Credentials,
    },
    Vault {
        token: Arc<RwLock<Zeroizing<String>>>,
        /// Renews the token; stopped when the session goes.
        _renewal: Option<AbortOnDrop>,
    },
}

/// Aborts a background task when dropped.
pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Longest lease taken at its word: a longer one (or an absurd one from a
/// hostile origin) is renewed as if it were this long.
const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A lease's time to live from Vault's seconds; None for 0 (no expiry).
fn ttl_of(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds).min(MAX_TTL))
}

/// What a Vault login or lookup says of a token.
struct Lease {
    token: Zeroizing<String>,
    /// None for a token that does not expire.
    ttl: Option<Duration>,
    renewable: bool,
}

/// How to log in again once a token can no longer be renewed.
#[derive(Clone)]
struct Login {
    mount: String,
    role_id: Zeroizing<String>,
    secret_id: Zeroizing<String>,
}

impl Session {
    /// Starts the session of `auth`: looks up a given Vault token, or logs
    /// in with an AppRole, and keeps the token alive.
    pub async fn start(
        auth: HttpAuth,
        client: &reqwest::Client,
        origin: &reqwest::Url,
        timeout: Duration,
    ) -> Result<Session, String> {
        let vault = Vault {
            client: client.clone(),
            origin: origin.clone(),
            timeout,
        };
        let (lease, login) = match auth {
            HttpAuth::None => return Ok(Session::None),
            HttpAuth::AwsSigV4 { scope, credentials } => {
                return Ok(Session::Aws { scope, credentials });
            }
            HttpAuth::VaultToken { token } => (vault.lookup(token).await?, None),
            HttpAuth::VaultAppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let login = Login {
                    mount,
                    role_id,
                    secret_id,
                };
                (vault.login(&login).await?, Some(login))
            }
        };
        let token = Arc::new(RwLock::new(lease.token.clone()));
        let renewal = (lease.renewable || login.is_some())
            .then_some(lease.ttl)
            .flatten()
            .map(|ttl| AbortOnDrop(tokio::spawn(vault.keep_alive(token.clone(), ttl, login))));
        Ok(Session::Vault {
            token,
            _renewal: renewal,
        })
    }

    /// The headers that authenticate a request.
    pub async fn headers(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Vec<(&'static str, Zeroizing<String>)> {
        match self {
            Session::None => Vec::new(),
            Session::Aws { scope, credentials } => {
                let (path, query) = path_and_query
                    .split_once('?')
                    .unwrap_or((path_and_query, ""));
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let request = sigv4::Request {
                    method,
                    path,
                    query,
                    headers,
                    body,
                };
                sigv4::sign(&request, scope, credentials, &sigv4::amz_date(now)).headers
            }
            Session::Vault { token, .. } => {
                let token = token.read().unwrap_or_else(|p| p.into_inner());
                vec![("x-vault-token", token.clone())]
            }
        }
    }
}

/// Largest answer read from a token or login endpoint.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Talks to Vault's token and AppRole endpoints for a session.
struct Vault {
    client: reqwest::Client,
    origin: reqwest::Url,
    timeout: Duration,
}

impl Vault {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = self.origin.join(path).map_err(|e| e.to_string())?;
        let mut request = self.client.request(method, url).timeout(self.timeout);
        if let Some(token) = token {
            request = request.header("x-vault-token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach {}{}", self.origin, super::causes(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "{} refused {path} (HTTP {})",
                self.origin,
                status.as_u16()
            ));
        }
        let body = super::read_capped(&mut response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| format!("{path}: {e}"))?
            .ok_or_else(|| format!("{path}: the answer is larger than {MAX_ANSWER_BYTES} bytes"))?;
        serde_json::from_slice(&body)
            .map_err(|e| format!("{path} answered with something else than JSON: {e}"))
    }

    /// What Vault says of `token`.
    async fn lookup(&self, token: Zeroizing<String>) -> Result<Lease, String> {
        let answer = self
            .call(
                reqwest::Method::GET,
                "/v1/auth/token/lookup-self",
                Some(&token),
                None,
            )
            .await
            .map_err(|e| format!("the Vault token: {e}"))?;
        Ok(Lease {
            token,
            ttl: ttl_of(answer["data"]["ttl"].as_u64().unwrap_or(0)),
            renewable: answer["data"]["renewable"].as_bool().unwrap_or(false),
        })
    }

    async fn login(&self, login: &Login) -> Result<Lease, String> {
        let body = serde_json::json!({
            "role_id": login.role_id.as_str(),
            "secret_id": login.secret_id.as_str(),
        });
        let answer = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/auth/{}/login", login.mount),
                None,
                Some(body),
            )
            .await
            .map_err(|e| format!("the AppRole login: {e}"))?;
        lease_of(&answer).ok_or_else(|| "the AppRole login returned no token".to_owned())
    }

    /// Renews the token before it expires, for as long as the session
    /// lives; logs in again when renewal fails and a login is known.
    async fn keep_alive(
        self,
        token: Arc<RwLock<Zeroizing<String>>>,
        mut ttl: Duration,
        login: Option<Login>,
    ) {
        loop {
            tokio::time::sleep((ttl * 2 / 3).max(Duration::from_secs(1))).await;
            let current = token.read().unwrap_or_else(|p| p.into_inner()).clone();
            let renewed = self
                .call(
                    reqwest::Method::POST,
                    "/v1/auth/token/renew-self",
                    Some(&current),
                    Some(serde_json::json!({})),
                )
                .await
                .and_then(|answer| {
                    lease_of(&answer).ok_or_else(|| "renew-self returned no token".to_owned())
                });
            // A renewal that gives back much less time has met the token's
            // maximum lifetime: log in again while there is still time.
            let lease = match (renewed, &login) {
                (Ok(lease), None) => Ok(lease),
                (Ok(lease), Some(_)) if lease.ttl.is_some_and(|t| t * 2 >= ttl) => Ok(lease),
                (_, Some(login)) => self.login(login).await,
                (Err(error), None) => Err(error),
            };
            match lease {
                Ok(lease) => {
                    ttl = lease.ttl.unwrap_or(ttl);
                    *token.write().unwrap_or_else(|p| p.into_inner()) = lease.token;
                }
                Err(error) => {
                    // The messages name paths and statuses, never a token.
                    tracing::warn!(%error, "could not renew the Vault token; trying again shortly");
                    ttl = Duration::from_secs(6);
                }
            }
        }
    }
}

/// The token and lease of a login or renewal answer (`auth`).
fn lease_of(answer: &Value) -> Option<Lease> {
    let auth = &answer["auth"];
    let token = auth["client_token"].as_str()?;
    Some(Lease {
        token: Zeroizing::new(token.to_owned()),
        ttl: ttl_of(auth["lease_duration"].as_u64().unwrap_or(0)),
        renewable: auth["renewable"].as_bool().unwrap_or(false),
    })
}
