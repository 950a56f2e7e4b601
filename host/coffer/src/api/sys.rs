//! `/v1/sys`: health, plugins, and the answers for unknown routes and methods.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::extract::JsonBody;
use super::{ApiError, AppState};
use crate::store::layout;

/// Health: whether storage (and a KMS root) answers and the audit trail
/// can be written. Unauthenticated, reveals no data. A Vault client
/// (`X-Vault-Request`, or Vault's health parameters) gets Vault's shape.
#[utoipa::path(
    get,
    path = "/v1/sys/health",
    tag = "sys",
    summary = "Whether storage, the KMS and the audit trail answer",
    security(()),
    responses((status = 200, description = "Healthy (503: degraded, same body)", body = Object)),
)]
pub async fn health(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let (ok, body) = check_health(&state).await;
    let vault_style = headers.contains_key("x-vault-request")
        || query
            .0
            .is_some_and(|q| q.contains("standbyok") || q.contains("sealedcode"));
    if vault_style {
        return super::vault::health(ok);
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Liveness: the process answers. Touches nothing, so a storage or KMS
/// outage does not get a healthy node restarted.
#[utoipa::path(
    get,
    path = "/v1/sys/live",
    tag = "sys",
    summary = "Liveness: the process answers",
    security(()),
    responses((status = 200, description = "Alive", body = Object)),
)]
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// Readiness: plugins loaded and keys unwrapped (a serving node has
/// both), storage and a KMS root answering, the audit trail writable.
/// 503 while any of them is not, with the same details as health.
#[utoipa::path(
    get,
    path = "/v1/sys/ready",
    tag = "sys",
    summary = "Readiness: plugins loaded, keys unwrapped, audit writable",
    security(()),
    responses((status = 200, description = "Ready (503: not ready, same body)", body = Object)),
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let (ok, body) = check_health(&state).await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn check_health(state: &AppState) -> (bool, Value) {
    let storage_ok = match state.storage.get(layout::HEALTH_PROBE).await {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(%error, "health check: storage failed");
            false
        }
    };
    let audit = match (state.audit.enabled(), state.audit.healthy()) {
        (false, _) => "disabled",
        (true, true) => "ok",
        (true, false) => "failing",
    };
    let kms = state.kms_answers().await;
    let ok = storage_ok && kms != Some(false) && audit != "failing";
    let mut body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "storage": if storage_ok { "ok" } else { "unavailable" },
        "audit": audit,
        "audit_retention": if state.audit.retention_blocked() { "blocked" } else { "ok" },
    });
    if let Some(answers) = kms {
        body["kms"] = json!(if answers { "ok" } else { "unavailable" });
    }
    (ok, body)
}

/// The loaded plugins with their SHA-256 (authenticated).
#[utoipa::path(
    get,
    path = "/v1/sys/plugins",
    tag = "sys",
    summary = "The loaded plugins with their SHA-256 (`sys`)",
    responses((status = 200, description = "The plugins", body = Object)),
)]
pub async fn plugins(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "plugins": state.plugins() })))
}

/// Reloads the plugins from the config (`sys`): 200 with what runs now,
/// or 409 `reload_refused` saying which section failed which check.
#[utoipa::path(
    post,
    path = "/v1/sys/plugins/reload",
    tag = "sys",
    summary = "Reload the plugins from the config (`sys`)",
    responses((status = 200, description = "What runs now", body = Object)),
)]
pub async fn reload_plugins(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.reload_config().await {
        Ok(reloaded) => Ok(Json(json!({ "reloaded": reloaded }))),
        Err(error) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "reload_refused",
            format!("{error}; the running plugins keep serving"),
        )),
    }
}

/// Body of `POST /v1/sys/migrate`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateRequest {
    /// The name of a configured storage.
    to: String,
}

/// Starts moving every record to another configured storage (`sys`);
/// 202 with the status to poll.
#[utoipa::path(
    post,
    path = "/v1/sys/migrate",
    tag = "sys",
    summary = "Start moving every record to another storage (`sys`)",
    request_body = MigrateRequest,
    responses((status = 202, description = "The migration started", body = Object)),
)]
pub async fn start_migration(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<MigrateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let status = state.start_migration(request.to)?;
    Ok((StatusCode::ACCEPTED, Json(json!(status))))
}

/// Where the last migration stands (`sys`).
#[utoipa::path(
    get,
    path = "/v1/sys/migrate",
    tag = "sys",
    summary = "Where the last migration stands (`sys`)",
    responses((status = 200, description = "The migration", body = Object)),
)]
pub async fn migration(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let status = state
        .migration()
        .ok_or_else(|| ApiError::not_found("no migration has run since the server started"))?;
    Ok(Json(json!(status)))
}

pub async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint")
}

pub async fn no_method() -> ApiError {
    ApiError::method_not_allowed()
}

/// Prometheus metrics (`sys`, or open with `[metrics] unauthenticated`).
#[utoipa::path(
    get,
    path = "/v1/sys/metrics",
    tag = "sys",
    summary = "Prometheus metrics (`sys`, or open by config)",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(&state);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(
    get,
    path = "/v1/sys/openapi.json",
    tag = "sys",
    summary = "This document",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
pub async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        super::openapi::document(),
    )
        .into_response()
}
