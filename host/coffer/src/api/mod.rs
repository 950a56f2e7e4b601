//! The HTTP API (`/v1`, JSON). Handlers parse, call the service, and shape
//! the answer; every error is an [`ApiError`].

mod action;
mod audit;
mod audit_log;
mod error;
mod extract;
mod guard;
mod keys;
mod lifecycle;
mod openapi;
mod routes;
mod secrets;
pub mod serve;
mod sys;
pub mod tls;
mod tokens;
mod transport;
mod vault;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::middleware;

pub use audit::{AuditNote, RequestId};
pub use error::ApiError;

use crate::service::Coffer;

/// Shared state of every handler.
pub type AppState = Arc<Coffer>;

/// Extra room a request body may take beyond the value itself (JSON
/// framing, escapes, the `cas` field).
const BODY_OVERHEAD: usize = 16 * 1024;

/// The router: each route declares its action and the right it takes
/// ([`routes`]); every request is audited, and answered within
/// `request_timeout`, with an answer no cache keeps ([`audit::layer`]).
pub fn app(state: AppState, max_value_bytes: usize, request_timeout: Duration) -> Router {
    let body_limit = body_limit(max_value_bytes);
    let routes = routes::Routes::new(state.clone(), request_timeout);
    let vault = vault::routes(routes::Routes::new(state.clone(), request_timeout));
    routes::native(routes)
        .merge(vault)
        .into_router()
        .fallback(sys::no_route)
        .method_not_allowed_fallback(sys::no_method)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), audit::layer))
        .with_state(state)
}

/// The largest request body for values of up to `max_value_bytes`: JSON
/// escapes can grow a value up to six-fold (\uXXXX).
fn body_limit(max_value_bytes: usize) -> usize {
    max_value_bytes
        .saturating_mul(6)
        .saturating_add(BODY_OVERHEAD)
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
