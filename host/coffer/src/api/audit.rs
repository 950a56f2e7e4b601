//! The audit layer around every request.
//!
//! It gives each request an id and a [`RequestContext`], marks every
//! answer for no cache to keep, and writes one record per request before
//! the answer leaves; the route's guard
//! ([`super::guard`]) adds the record written before a change runs. What
//! the request is comes from the route ([`Target`]), never from re-reading
//! the path. Whatever a request brings is bounded before it is recorded:
//! secret names and anything that is not a valid namespace or a short
//! plain id appear as pseudonyms, so an unauthenticated request with a
//! 60 KB path costs a record of a few hundred bytes. Addresses that keep
//! failing authentication are dropped before they cost anything
//! ([`crate::auth::Throttle`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use tracing::Instrument;

use super::action::Target;
use super::{ApiError, AppState, bearer};
use crate::audit::Audit;
use crate::audit::record::Entry;
use crate::auth::Actor;
use crate::clock::{now_ms, rfc3339};
use crate::secrets::check_namespace;

/// What a handler adds to its request's audit record (the versions a write
/// pruned, a record refused as tampered): a response extension.
#[derive(Clone, Debug)]
pub struct AuditNote(pub String);

/// The id the audit trail gives a request, for answers that carry it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Longest public path part (a token id) recorded as it is.
const MAX_PUBLIC_LEN: usize = 64;

/// Who sent a request and under which id it is recorded: a request
/// extension, for every record written about it.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub id: String,
    pub remote: String,
    /// The pseudonym of the secret the request names, shared by its records.
    secret: SecretPseudonym,
}

/// A secret name's pseudonym, computed once for all the records of a
/// request (a change has two).
#[derive(Clone, Default)]
struct SecretPseudonym(Arc<OnceLock<(String, String)>>);

impl std::fmt::Debug for SecretPseudonym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretPseudonym(..)")
    }
}

impl SecretPseudonym {
    fn of(&self, audit: &Audit, name: &str) -> String {
        let (named, shown) = self.0.get_or_init(|| (name.to_owned(), audit.hash(name)));
        if named == name {
            shown.clone()
        } else {
            audit.hash(name)
        }
    }
}

impl RequestContext {
    /// A record about this request and `target`.
    pub fn entry(
        &self,
        audit: &Audit,
        target: &Target,
        status: StatusCode,
        actor: Option<&Actor>,
        outcome: &str,
        detail: Option<String>,
    ) -> Entry {
        let namespace = target.namespace.as_deref().map(|ns| {
            if check_namespace(ns).is_ok() {
                ns.to_owned()
            } else {
                audit.hash(ns)
            }
        });
        let path = target
            .secret
            .as_deref()
            .map(|s| self.secret.of(audit, s))
            .or_else(|| {
                target.public.as_deref().map(|p| {
                    if p.len() <= MAX_PUBLIC_LEN && p.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        p.to_owned()
                    } else {
                        audit.hash(p)
                    }
                })
            });
        Entry {
            time: rfc3339(now_ms()),
            request_id: self.id.clone(),
            actor_id: actor.map(|a| a.token_id.clone()),
            actor_name: actor.map(|a| a.name.clone()),
            action: target.action.name().to_owned(),
            namespace,
            path,
            outcome: outcome.to_owned(),
            status: status.as_u16(),
            remote: self.remote.clone(),
            detail,
            sealed: false,
        }
    }
}

fn request_id() -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    crate::lower_hex::lower_hex(&bytes)
}

/// `response` with its request's id, and marked for no cache to keep:
/// secrets must not linger between client and server.
fn finished(mut response: Response, id: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("x-request-id", value);
    }
    response
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

/// The answer when the audit trail cannot take a record.
pub fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "audit_unavailable",
        "the audit trail cannot be written, so no request is served",
    )
}

/// Writes one record per request before its answer leaves; refuses to
/// answer (503) when that record cannot be written.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let address: Option<IpAddr> = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let context = RequestContext {
        id: request_id(),
        remote: address.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
        secret: SecretPseudonym::default(),
    };
    request
        .extensions_mut()
        .insert(RequestId(context.id.clone()));
    request.extensions_mut().insert(context.clone());
    let path = request.uri().path().to_owned();

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
            let mut summary = context.entry(
                &state.audit,
                &Target::unknown(None),
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "denied",
                None,
            );
            summary.action = "auth.throttled".to_owned();
            summary.detail = Some(format!(
                "{dropped} request(s) from this address dropped after repeated failed authentication"
            ));
            let _ = state.audit.write(summary);
        }
        return finished(throttled(), &context.id);
    }

    // Every line logged while the request runs carries its id.
    let span = tracing::info_span!("request", id = %context.id);
    let response = next.run(request).instrument(span).await;
    let status = response.status();
    let target = response
        .extensions()
        .get::<Target>()
        .cloned()
        .unwrap_or_else(|| Target::unknown(Some(path)));
    let response = if state.audit.records(target.action.name()) {
        let mut answered = context.entry(
            &state.audit,
            &target,
            status,
            response.extensions().get::<Actor>(),
            outcome(status),
            response
                .extensions()
                .get::<AuditNote>()
                .map(|note| note.0.clone()),
        );
        answered.sealed = response
            .extensions()
            .get::<super::transport::Sealed>()
            .is_some();
        match state.audit.write(answered) {
            Ok(()) => response,
            Err(_) => unavailable().into_response(),
        }
    } else {
        response
    };
    let response = finished(response, &context.id);
    state.metrics.observe_request(
        target.action.name(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
