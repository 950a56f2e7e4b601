//! The `http` capability: requests a plugin makes to the one origin its
//! section grants, sent by the host.
//!
//! The plugin gives a method, a path, headers and a body. The host checks
//! them ([`request`]), adds the origin, the credentials ([`auth`]) and
//! sends them on one pooled client per grant (rustls, with an optional
//! private CA, no redirects, no proxy), within the grant's timeout and
//! never beyond the plugin call's deadline, and hands back at most
//! `max_response_bytes` of response. Storage and KMS plugins may import
//! it, and only with a grant.

mod auth;
mod request;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::HasSelf;

pub use auth::HttpAuth;

use super::{Capability, Grant};
use crate::bindings;
use crate::bindings::http::{Host, Method, Request, Response};
use crate::bindings::types::Error as WitError;
use crate::plugin::PluginKind;
use crate::state::PluginState;

/// Storage and KMS plugins may talk to the origin their section grants; one
/// that imports `http` without a grant is refused when it loads.
pub(crate) const CAPABILITY: Capability = Capability {
    interface: "coffer:plugin/http",
    kinds: &[PluginKind::Storage, PluginKind::Kms],
    grant: Some(Grant {
        table: "http",
        given: |grants| grants.http.is_some(),
    }),
    link: |linker| bindings::http::add_to_linker::<_, HasSelf<_>>(linker, |s| s),
};

/// Largest request body the host sends for a plugin.
pub const MAX_REQUEST_BYTES: usize = 8 << 20;

/// What an `[<section>.http]` table grants.
#[derive(Debug)]
pub struct HttpGrant {
    /// `scheme://host[:port]`: the only place the plugin's requests go.
    pub origin: String,
    /// PEM certificates to trust besides the public roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Longest a request may take (the plugin call's deadline may cut it
    /// shorter).
    pub timeout: Duration,
    /// Largest response body handed to the plugin.
    pub max_response_bytes: usize,
    /// When set, a request is sent only if its `X-Amz-Target` names one of
    /// these operations.
    pub actions: Option<Vec<String>>,
    /// When set, a request is sent only if its path starts with one of
    /// these prefixes.
    pub paths: Option<Vec<String>>,
    pub auth: HttpAuth,
}

/// A granted origin, ready to send requests to.
pub struct HttpClient {
    origin: reqwest::Url,
    /// What the `host` header (and a signature) says: host and, when not
    /// the scheme's default, port.
    authority: String,
    client: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
    rules: request::Rules,
    auth: auth::Session,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("origin", &self.authority)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the client of `grant` and signs it in (a Vault token is
    /// looked up, an AppRole logged in, and renewal started).
    pub async fn connect(grant: HttpGrant) -> Result<Arc<HttpClient>, String> {
        // Errors do not repeat the origin: it might carry a password.
        let origin = reqwest::Url::parse(&grant.origin).map_err(|e| format!("origin: {e}"))?;
        let origin_only = matches!(origin.scheme(), "http" | "https")
            && origin.host_str().is_some()
            && origin.path() == "/"
            && origin.query().is_none()
            && origin.fragment().is_none()
            && origin.username().is_empty()
            && origin.password().is_none();
        if !origin_only {
            return Err(
                "origin: must be http(s)://host[:port], with no path, query or credentials"
                    .to_owned(),
            );
        }
        let host = origin.host_str().unwrap_or_default().to_owned();
        let authority = match origin.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(grant.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(ca_file) = &grant.ca_file {
            let pem = std::fs::read(ca_file)
                .map_err(|e| format!("ca_file {}: {e}", ca_file.display()))?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("ca_file {}: {e}", ca_file.display()))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(|e| format!("http client: {e}"))?;
        let reserved = match grant.auth {
            HttpAuth::VaultToken { .. } | HttpAuth::VaultAppRole { .. } => request::VAULT_RESERVED,
            HttpAuth::None | HttpAuth::AwsSigV4 { .. } => &[],
        };
        let rules = request::Rules {
            actions: grant.actions,
            paths: grant.paths,
            reserved,
        };
        let auth = auth::Session::start(grant.auth, &client, &origin, grant.timeout).await?;
        Ok(Arc::new(HttpClient {
            origin,
            authority,
            client,
            timeout: grant.timeout,
            max_response_bytes: grant.max_response_bytes,
            rules,
            auth,
        }))
    }

    /// Sends a plugin's request, within `deadline`.
    async fn send(
        &self,
        request: Request,
        deadline: tokio::time::Instant,
    ) -> Result<Response, WitError> {
        let checked = request::check(&request, &self.rules)?;
        if request.body.len() > MAX_REQUEST_BYTES {
            return Err(WitError::Invalid(format!(
                "request bodies are at most {MAX_REQUEST_BYTES} bytes"
            )));
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let timeout = self.timeout.min(left);
        if timeout.is_zero() {
            return Err(WitError::Unavailable(
                "the plugin call has no time left".to_owned(),
            ));
        }
        let url = self
            .origin
            .join(&request.path)
            .map_err(|_| WitError::Denied("the path is not a path".to_owned()))?;
        let mut headers = checked.headers;
        headers.push(("host".to_owned(), self.authority.clone()));
        let added = self
            .auth
            .headers(
                method_name(request.method),
                &request.path,
                &headers,
                &request.body,
            )
            .await;
        let mut builder = self
            .client
            .request(reqwest_method(request.method), url)
            .timeout(timeout);
        for (name, value) in headers.iter().filter(|(name, _)| name != "host") {
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (name, value) in added {
            let mut value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| WitError::Internal("a credential is not a header value".to_owned()))?;
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        let mut response = builder
            .body(request.body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| !request::HOP_BY_HOP.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let body = read_capped(&mut response, self.max_response_bytes)
            .await?
            .ok_or_else(|| {
                WitError::Invalid(format!(
                    "the response is larger than the {} bytes this grant carries",
                    self.max_response_bytes
                ))
            })?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The body of `response`, or none when it is longer than `max` bytes
/// (read no further than that).
pub(super) async fn read_capped(
    response: &mut reqwest::Response,
    max: usize,
) -> Result<Option<Vec<u8>>, WitError> {
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// What the plugin is told when the origin cannot be reached: what went
/// wrong and why, without the URL or any header.
fn unreachable(error: reqwest::Error) -> WitError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    WitError::Unavailable(format!("the request {what}{}", causes(&error)))
}

/// `: cause: cause…` of an error's sources (such as "connection refused").
pub(super) fn causes(error: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

fn reqwest_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

impl Host for PluginState {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, WitError>> {
        let Some(client) = self.grants.http.clone() else {
            return Ok(Err(WitError::Denied(
                "no http origin is granted to this plugin".to_owned(),
            )));
        };
        Ok(client.send(request, self.deadline).await)
    }
}
