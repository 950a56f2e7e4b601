//! The audit layer around every request, and `/v1/audit` (`audit:read`).
//!
//! Whatever a request brings is bounded before it is recorded: secret names
//! and anything that is not a valid namespace or id appear as pseudonyms,
//! so an unauthenticated request with a 60 KB path costs a record of a few
//! hundred bytes. Addresses that keep failing authentication are dropped
//! before they cost anything ([`crate::auth::Throttle`]).

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use super::{ApiError, AppState, bearer};
use crate::audit::record::{Entry, Record};
use crate::auth::{Actor, Admin};
use crate::clock::{now_ms, rfc3339};
use crate::secrets::{SecretOperation, check_namespace, split_operation};

/// What a handler adds to its request's audit record (the versions a write
/// pruned, a record refused as tampered): a response extension.
#[derive(Clone, Debug)]
pub struct AuditNote(pub String);

/// The id the audit trail gives a request, for answers that carry it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Longest public path part (a token id) recorded as it is.
const MAX_PUBLIC_LEN: usize = 64;

/// What a request is, as the audit trail names it.
struct Action {
    name: &'static str,
    namespace: Option<String>,
    /// A sensitive part of the path (a secret name), recorded as an HMAC.
    secret: Option<String>,
    /// A public part of the path (a token id), recorded as is.
    public: Option<String>,
}

impl Action {
    /// Whether the request may change stored state: such requests get a
    /// record before they run as well as after.
    fn changes_state(&self) -> bool {
        matches!(
            self.name,
            "secret.write"
                | "secret.delete"
                | "secret.metadata.write"
                | "secret.purge"
                | "secret.undelete"
                | "secret.destroy"
                | "token.create"
                | "token.revoke"
        ) || self.name.starts_with("keys.") && self.name != "keys.list" && self.name != "keys.show"
            || self.name.starts_with("kek.") && self.name != "kek.status"
            || self.name == "janitor.run"
    }
}

/// What the request for `target` (a path, maybe with its query) is.
fn classify(method: &Method, target: &str) -> Action {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(4, '/').collect();
    let action =
        |name, namespace: Option<&str>, secret: Option<&str>, public: Option<&str>| Action {
            name,
            namespace: namespace.map(percent_decode),
            secret: secret.map(percent_decode),
            public: public.map(percent_decode),
        };
    match (method, segments.as_slice()) {
        (&Method::GET, ["v1", "secrets", ns]) => action("secret.list", Some(ns), None, None),
        (method, ["v1", "secrets", ns, path]) => {
            let path = percent_decode(path);
            let (name, operation) = split_operation(&path);
            Action {
                name: secret_action(method, operation),
                namespace: Some(percent_decode(ns)),
                secret: Some(name.to_owned()),
                public: None,
            }
        }
        (&Method::GET, ["v1", "auth", "tokens"]) => action("token.list", None, None, None),
        (&Method::POST, ["v1", "auth", "tokens"]) => action("token.create", None, None, None),
        (&Method::DELETE, ["v1", "auth", "tokens", id]) => {
            action("token.revoke", None, None, Some(id))
        }
        (&Method::GET, ["v1", "keys"]) => action("keys.list", None, None, None),
        (&Method::GET, ["v1", "keys", ns]) => action("keys.show", Some(ns), None, None),
        (&Method::POST, ["v1", "keys", ns, rest]) => match rest.split_once('/') {
            None => action(keys_operation(rest), Some(ns), None, None),
            Some((id, key_action)) => action(keys_key_action(key_action), Some(ns), None, Some(id)),
        },
        (&Method::GET, ["v1", "sys", "kek"]) => action("kek.status", None, None, None),
        (&Method::POST, ["v1", "sys", "kek", operation]) => {
            action(kek_operation(operation), None, None, None)
        }
        (&Method::POST, ["v1", "sys", "janitor", "run"]) => action("janitor.run", None, None, None),
        (&Method::GET, ["v1", "sys", "health" | "live" | "ready"]) => {
            action("sys.health", None, None, None)
        }
        (&Method::GET, ["v1", "sys", "plugins"]) => action("sys.plugins", None, None, None),
        (&Method::GET, ["v1", "sys", "metrics"]) => action("sys.metrics", None, None, None),
        (&Method::POST, ["v1", "sys", "plugins", "reload"]) => {
            action("sys.plugins.reload", None, None, None)
        }
        (&Method::POST, ["v1", "sys", "migrate"]) => action("sys.migrate", None, None, None),
        (&Method::GET, ["v1", "sys", "migrate"]) => action("sys.migrate.status", None, None, None),
        (&Method::GET, ["v1", "audit"]) => action("audit.read", None, None, None),
        (&Method::GET, ["v1", "audit", "verify"]) => action("audit.verify", None, None, None),
        (&Method::POST, ["v1", "audit", "hash"]) => action("audit.hash", None, None, None),
        (&Method::GET, ["v1", "sys", "internal", _]) => {
            action("sys.mounts.lookup", None, None, None)
        }
        (&Method::GET, ["v1", "sys", "mounts"]) => action("sys.mounts", None, None, None),
        (&Method::GET, ["v1", "auth", "token", "lookup-self"]) => {
            action("token.lookup_self", None, None, None)
        }
        (_, ["v1", ns, "config"]) => action("kv.config", Some(ns), None, None),
        (_, ["v1", ns, "metadata"]) => action("secret.list", Some(ns), None, None),
        (method, ["v1", ns, operation, path]) => {
            let listing = query.split('&').any(|pair| pair == "list=true");
            match kv_action(method, operation, path, listing) {
                Some(name) => action(name, Some(ns), Some(path), None),
                None => action("unknown", None, Some(path), None),
            }
        }
        _ => action("unknown", None, Some(path), None),
    }
}

fn secret_action(method: &Method, operation: SecretOperation) -> &'static str {
    match (method, operation) {
        (&Method::GET, SecretOperation::Value) => "secret.read",
        (&Method::PUT | &Method::POST, SecretOperation::Value) => "secret.write",
        (&Method::DELETE, SecretOperation::Value) => "secret.delete",
        (&Method::GET, SecretOperation::Metadata) => "secret.metadata.read",
        (&Method::PUT | &Method::POST, SecretOperation::Metadata) => "secret.metadata.write",
        (&Method::DELETE, SecretOperation::Metadata) => "secret.purge",
        (&Method::POST, SecretOperation::Undelete) => "secret.undelete",
        (&Method::POST, SecretOperation::Destroy) => "secret.destroy",
        _ => "secret.unknown",
    }
}

/// A request on a KV v2 mount, named as the native operation it is.
fn kv_action(method: &Method, operation: &str, path: &str, listing: bool) -> Option<&'static str> {
    Some(match (operation, method.as_str()) {
        ("data", "GET") => "secret.read",
        ("data", "PUT" | "POST" | "PATCH") => "secret.write",
        ("data", "DELETE") => "secret.delete",
        ("metadata", "LIST") => "secret.list",
        ("metadata", "GET") if listing || path.is_empty() => "secret.list",
        ("metadata", "GET") => "secret.metadata.read",
        ("metadata", "PUT" | "POST") => "secret.metadata.write",
        ("metadata", "DELETE") => "secret.purge",
        ("delete", "PUT" | "POST") => "secret.delete",
        ("undelete", "PUT" | "POST") => "secret.undelete",
        ("destroy", "PUT" | "POST") => "secret.destroy",
        ("subkeys", "GET") => "secret.subkeys",
        _ => return None,
    })
}

fn keys_operation(operation: &str) -> &'static str {
    match operation {
        "rotate" => "keys.rotate",
        "reencrypt" => "keys.reencrypt",
        "import" => "keys.import",
        _ => "keys.unknown",
    }
}

fn keys_key_action(key_action: &str) -> &'static str {
    match key_action {
        "deprecate" => "keys.deprecate",
        "inactivate" => "keys.inactivate",
        "destroy" => "keys.destroy",
        "export" => "keys.export",
        _ => "keys.unknown",
    }
}

fn kek_operation(operation: &str) -> &'static str {
    match operation {
        "rotate" => "kek.rotate",
        "rewrap" => "kek.rewrap",
        "reload" => "kek.reload",
        _ => "kek.unknown",
    }
}

/// Decodes `%XX` escapes (as the router does before handlers see a path).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn request_id() -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => "denied",
        500.. => "error",
        _ => "allowed",
    }
}

fn throttled() -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "too many failed authentications from this address: wait, then use a valid token",
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static("10"),
    );
    response
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "audit_unavailable",
        "the audit trail cannot be written, so no request is served",
    )
}

/// Writes one record per request before its answer leaves (and, for
/// requests that change state, one more before they run); refuses to
/// answer (503) when no audit sink can take a record.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = request_id();
    request.extensions_mut().insert(RequestId(id.clone()));
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |target| target.as_str());
    let action = classify(request.method(), target);
    let address: Option<IpAddr> = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let remote = address.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let audited = state.audit.records(action.name);
    // Bounded forms of what the request names.
    let namespace = action.namespace.as_deref().map(|ns| {
        if check_namespace(ns).is_ok() {
            ns.to_owned()
        } else {
            state.audit.hash(ns)
        }
    });
    let path = action
        .secret
        .as_deref()
        .map(|s| state.audit.hash(s))
        .or_else(|| {
            action.public.as_deref().map(|p| {
                if p.len() <= MAX_PUBLIC_LEN && p.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    p.to_owned()
                } else {
                    state.audit.hash(p)
                }
            })
        });
    let entry =
        |status: StatusCode, actor: Option<&Actor>, outcome: &str, detail: Option<String>| Entry {
            time: rfc3339(now_ms()),
            request_id: id.clone(),
            actor_id: actor.map(|a| a.token_id.clone()),
            actor_name: actor.map(|a| a.name.clone()),
            action: action.name.to_owned(),
            namespace: namespace.clone(),
            path: path.clone(),
            outcome: outcome.to_owned(),
            status: status.as_u16(),
            remote: remote.clone(),
            detail,
        };

    // An address that keeps failing authentication costs nothing more:
    // dropped before any lookup, summarised in the trail once a minute.
    if let Some(ip) = address
        && state.auth.throttle.limited(ip)
        && !state
            .auth
            .known_good(bearer(request.headers()).unwrap_or(""))
            .await
    {
        if let Some(dropped) = state.auth.throttle.dropped(ip)
            && state.audit.records("auth.throttled")
        {
            let mut summary = entry(StatusCode::TOO_MANY_REQUESTS, None, "denied", None);
            summary.action = "auth.throttled".to_owned();
            summary.detail = Some(format!(
                "{dropped} request(s) from this address dropped after repeated failed authentication"
            ));
            let _ = state.audit.write(summary);
        }
        return throttled();
    }

    let mut response = if audited && !state.audit.healthy() {
        // The record of this refusal doubles as a probe: once a sink takes
        // it, the next request is served again.
        let _ = state
            .audit
            .write(entry(StatusCode::SERVICE_UNAVAILABLE, None, "error", None));
        unavailable().into_response()
    } else if audited
        && action.changes_state()
        && state
            .audit
            .write(entry(StatusCode::ACCEPTED, None, "requested", None))
            .is_err()
    {
        // A change is recorded before it is made: if that record cannot be
        // written, nothing changes.
        unavailable().into_response()
    } else {
        // Every line logged while the request runs carries its id.
        let span = tracing::info_span!("request", id = %id);
        let response = next.run(request).instrument(span).await;
        let status = response.status();
        let answered = entry(
            status,
            response.extensions().get::<Actor>(),
            outcome(status),
            response
                .extensions()
                .get::<AuditNote>()
                .map(|note| note.0.clone()),
        );
        if audited && state.audit.write(answered).is_err() {
            unavailable().into_response()
        } else {
            response
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    state
        .metrics
        .observe_request(action.name, response.status().as_u16(), started.elapsed());
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// A sequence number, or a time (`2026-11-23T10:00:00Z`): records from then on.
    since: Option<String>,
    /// A token id or name.
    actor: Option<String>,
    namespace: Option<String>,
    action: Option<String>,
    limit: Option<usize>,
}

/// Records of this node's audit log that match the filters, oldest first.
pub async fn read(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    actor.require_admin(Admin::AuditRead)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let since_seq = query.since.as_deref().and_then(|s| s.parse::<u64>().ok());
    let matches = |record: &Record| {
        let e = &record.entry;
        let since = match (&query.since, since_seq) {
            (_, Some(seq)) => record.seq >= seq,
            (Some(time), None) => e.time.as_str() >= time.as_str(),
            (None, None) => true,
        };
        since
            && query
                .actor
                .as_ref()
                .is_none_or(|a| e.actor_id.as_ref() == Some(a) || e.actor_name.as_ref() == Some(a))
            && query
                .namespace
                .as_ref()
                .is_none_or(|n| e.namespace.as_ref() == Some(n))
            && query.action.as_ref().is_none_or(|a| &e.action == a)
    };
    let files = state.audit.files();
    let records = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            found.extend(
                text.lines()
                    .filter_map(|line| serde_json::from_str::<Record>(line).ok()),
            );
        }
        found
    })
    .await
    .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    let selected: Vec<&Record> = records.iter().filter(|r| matches(r)).take(limit).collect();
    Ok(Json(json!({ "records": selected })))
}

/// Verifies this node's audit log against the chain key and the
/// checkpoint in storage.
pub async fn verify(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, ApiError> {
    actor.require_admin(Admin::AuditRead)?;
    let files: Vec<String> = state
        .audit
        .files()
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    Ok(Json(match state.audit.verify().await? {
        Ok(report) => json!({
            "intact": true,
            "files": files,
            "records": report.records,
            "head": report.head,
            "torn_tail": report.torn_tail,
        }),
        Err(broken) => json!({
            "intact": false,
            "files": files,
            "break": {
                "file": broken.file,
                "line": broken.line,
                "reason": broken.reason,
            },
        }),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashBody {
    value: String,
}

/// The HMAC a sensitive string appears as in audit records.
pub async fn hash(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    actor.require_admin(Admin::AuditRead)?;
    let body = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let body: HashBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    Ok(Json(json!({ "hash": state.audit.hash(&body.value) })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_and_names_decoded() {
        let a = classify(&Method::GET, "/v1/secrets/pay/db%2Fpass");
        assert_eq!(
            (a.name, a.namespace.as_deref(), a.secret.as_deref()),
            ("secret.read", Some("pay"), Some("db/pass"))
        );
        let a = classify(&Method::GET, "/v1/secrets/pay/a/b/c");
        assert_eq!(a.secret.as_deref(), Some("a/b/c"));
        for (method, path, name) in [
            (
                Method::GET,
                "/v1/secrets/pay/db%2Fmetadata",
                "secret.metadata.read",
            ),
            (
                Method::PUT,
                "/v1/secrets/pay/db/metadata",
                "secret.metadata.write",
            ),
            (
                Method::DELETE,
                "/v1/secrets/pay/db/metadata",
                "secret.purge",
            ),
            (
                Method::POST,
                "/v1/secrets/pay/db/undelete",
                "secret.undelete",
            ),
            (Method::POST, "/v1/secrets/pay/db/destroy", "secret.destroy"),
            (Method::GET, "/v1/secrets/pay/db/destroy", "secret.unknown"),
        ] {
            let a = classify(&method, path);
            assert_eq!((a.name, a.secret.as_deref()), (name, Some("db")), "{path}");
            assert_eq!(
                a.changes_state(),
                !name.ends_with("read") && !name.ends_with("unknown"),
                "{path}"
            );
        }
        assert_eq!(
            classify(&Method::GET, "/v1/secrets/pay").name,
            "secret.list"
        );
        assert_eq!(
            classify(&Method::DELETE, "/v1/auth/tokens/abc")
                .public
                .as_deref(),
            Some("abc")
        );
        assert_eq!(classify(&Method::PATCH, "/v1/x").name, "unknown");
        for (method, target, name) in [
            (Method::GET, "/v1/pay/data/db/pass?version=2", "secret.read"),
            (Method::PATCH, "/v1/pay/data/db/pass", "secret.write"),
            (
                Method::GET,
                "/v1/pay/metadata/db/pass",
                "secret.metadata.read",
            ),
            (Method::GET, "/v1/pay/metadata/db?list=true", "secret.list"),
            (
                Method::from_bytes(b"LIST").unwrap(),
                "/v1/pay/metadata/db/",
                "secret.list",
            ),
            (Method::PUT, "/v1/pay/destroy/db/pass", "secret.destroy"),
        ] {
            let a = classify(&method, target);
            assert_eq!(
                (a.name, a.namespace.as_deref()),
                (name, Some("pay")),
                "{target}"
            );
        }
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
