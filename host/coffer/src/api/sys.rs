//! `/v1/sys`: health, plugins, and the answers for unknown routes and methods.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::auth::{Actor, Admin};

/// Health: whether storage answers. Unauthenticated, reveals no data.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let storage = state.storage.get("sys/health").await;
    let (status, storage_state) = match &storage {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(error) => {
            tracing::warn!(%error, "health check: storage failed");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "storage": storage_state,
    });
    (status, Json(body))
}

/// The loaded plugins with their SHA-256 (authenticated).
pub async fn plugins(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, ApiError> {
    actor.require_admin(Admin::Sys)?;
    Ok(Json(json!({ "plugins": state.plugins })))
}

pub async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint")
}

pub async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}
