//! The HTTP API (`/v1`, JSON). Handlers parse, call the service, and shape
//! the answer; every error is an [`ApiError`].

mod audit;
mod error;
mod keys;
mod lifecycle;
mod secrets;
pub mod serve;
mod sys;
pub mod tls;
mod tokens;
mod vault;

use std::sync::Arc;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use audit::{AuditNote, RequestId};
pub use error::ApiError;

use crate::auth::Actor;
use crate::error::Error;
use crate::service::Coffer;

/// Shared state of every handler.
pub type AppState = Arc<Coffer>;

/// Extra room a request body may take beyond the value itself (JSON
/// framing, escapes, the `cas` field).
const BODY_OVERHEAD: usize = 16 * 1024;

/// The router: `/v1/sys/health` is open, everything else needs a token
/// whose policy allows the request, and every request is answered within
/// `request_timeout`.
pub fn app(state: AppState, max_value_bytes: usize, request_timeout: Duration) -> Router {
    // JSON escapes can grow a value up to six-fold (\uXXXX).
    let body_limit = max_value_bytes
        .saturating_mul(6)
        .saturating_add(BODY_OVERHEAD);
    let metrics = Router::new().route("/v1/sys/metrics", get(sys::metrics));
    let (open_metrics, protected_metrics) = if state.metrics.unauthenticated() {
        (metrics, Router::new())
    } else {
        (Router::new(), metrics)
    };
    let protected = Router::new()
        .merge(protected_metrics)
        .route("/v1/sys/plugins", get(sys::plugins))
        .route(
            "/v1/sys/plugins/reload",
            axum::routing::post(sys::reload_plugins),
        )
        .route(
            "/v1/sys/migrate",
            get(sys::migration).post(sys::start_migration),
        )
        .route("/v1/audit", get(audit::read))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/audit/hash", axum::routing::post(audit::hash))
        .route("/v1/auth/tokens", get(tokens::list).post(tokens::create))
        .route(
            "/v1/auth/tokens/{id}",
            axum::routing::delete(tokens::revoke),
        )
        .route("/v1/keys", get(keys::list))
        .route("/v1/keys/{namespace}", get(keys::show))
        .route(
            "/v1/keys/{namespace}/{operation}",
            axum::routing::post(keys::namespace_operation),
        )
        .route(
            "/v1/keys/{namespace}/{id}/{action}",
            axum::routing::post(keys::key_action),
        )
        .route("/v1/sys/kek", get(keys::kek_status))
        .route(
            "/v1/sys/kek/{operation}",
            axum::routing::post(keys::kek_operation),
        )
        .route(
            "/v1/sys/janitor/run",
            axum::routing::post(keys::run_janitor),
        )
        .route("/v1/secrets/{namespace}", get(secrets::list))
        .route(
            "/v1/secrets/{namespace}/{*name}",
            get(secrets::get)
                .put(secrets::put)
                .post(secrets::post)
                .delete(secrets::delete),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/v1/sys/health", get(sys::health))
        .route("/v1/sys/live", get(sys::live))
        .route("/v1/sys/ready", get(sys::ready))
        .merge(open_metrics)
        .merge(protected)
        .merge(vault::routes(state.clone()))
        .fallback(sys::no_route)
        .method_not_allowed_fallback(sys::no_method)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            timeout(request_timeout, request, next)
        }))
        .layer(middleware::from_fn(no_store))
        .layer(middleware::from_fn_with_state(state.clone(), audit::layer))
        .with_state(state)
}

/// The token a request presents, if any: a bearer, or (for Vault
/// clients) `X-Vault-Token`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let vault = || headers.get("x-vault-token").and_then(|v| v.to_str().ok());
    bearer.or_else(vault).map(str::trim)
}

/// Checks the bearer token and records the actor for handlers. A failed
/// authentication counts against the client's address; a token record
/// refused as tampered is a failed authentication, noted in the audit trail.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let failed = |note: Option<String>| {
        if let Some(address) = address {
            state.auth.throttle.failed(address);
        }
        let mut response = ApiError::unauthorized().into_response();
        if let Some(note) = note {
            response.extensions_mut().insert(AuditNote(note));
        }
        response
    };
    let token = bearer(request.headers()).map(|t| zeroize::Zeroizing::new(t.to_owned()));
    let verified = match token {
        None => Ok(None),
        Some(token) => state.auth.verify(&token).await,
    };
    let actor: Actor = match verified {
        Ok(Some(actor)) => actor,
        Ok(None) => return failed(None),
        Err(Error::Integrity(detail)) => {
            return failed(Some(format!("token record refused: {detail}")));
        }
        Err(error) => return ApiError::from(error).into_response(),
    };
    request.extensions_mut().insert(actor.clone());
    let mut response = next.run(request).await;
    // The audit layer outside reads who made the request from here.
    response.extensions_mut().insert(actor);
    response
}

/// Answers 503 when a request is not done within `limit`, body included.
/// Work cut off is only ever work a retry redoes: every change is one
/// compare-and-set, and key maintenance resumes where it stopped.
async fn timeout(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} ms", limit.as_millis()),
        )
        .into_response(),
    }
}

/// Secrets must not linger in caches between client and server.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
