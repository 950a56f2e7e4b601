//! The one error type of the HTTP API: a stable code, a status and a
//! message, sent as `{"error": {"code": …, "message": …}}`.
//!
//! Internal details (plugin messages, broken invariants) go to the log,
//! never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_runtime::{GuestError, PluginError, PluginFailure};
use serde_json::json;

use crate::error::Error;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For the request's audit record, never for the client.
    pub note: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            note: None,
        }
    }

    /// Adds a note for the request's audit record.
    pub fn noted(mut self, note: String) -> ApiError {
        self.note = Some(note);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer <token>)",
        )
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this endpoint",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(note) = self.note {
            response.extensions_mut().insert(super::AuditNote(note));
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(m) => ApiError::bad_request(m),
            Error::NotFound(m) => ApiError::not_found(m),
            Error::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token's policy does not allow the request",
            ),
            Error::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            Error::Integrity(detail) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "integrity",
                "stored data failed its integrity check",
            )
            .noted(format!("refused: {detail}")),
            Error::Backend(m) => {
                tracing::warn!(detail = %m, "the storage backend misbehaved");
                ApiError::new(StatusCode::BAD_GATEWAY, "backend_error", m)
            }
            Error::KeyUnavailable(m) => {
                tracing::error!(detail = %m, "key unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "key_unavailable", m)
            }
            Error::KeyDestroyed(m) => ApiError::new(StatusCode::GONE, "key_destroyed", m),
            Error::Plugin(e) => plugin_error(e),
            Error::Internal(m) => {
                tracing::error!(detail = %m, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

/// A failed plugin is a bad gateway; a busy or slow one is unavailable.
fn plugin_error(error: PluginError) -> ApiError {
    tracing::warn!(%error, "plugin call failed");
    match error {
        PluginError::Failed { plugin, failure } => {
            let (status, code) = match failure {
                PluginFailure::TimedOut(_)
                | PluginFailure::Busy(_)
                | PluginFailure::Instantiate(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "plugin_unavailable")
                }
                _ => (StatusCode::BAD_GATEWAY, "plugin_failed"),
            };
            // The detail (trap messages, backtraces) is in the log above.
            ApiError::new(
                status,
                code,
                format!("plugin {plugin} {}", failure.summary()),
            )
        }
        PluginError::Guest { plugin, error } => match error {
            GuestError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                format!("plugin {plugin}: its backend is unavailable"),
            ),
            other => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "backend_error",
                format!("plugin {plugin} reported an error ({})", kind(&other)),
            ),
        },
    }
}

fn kind(error: &GuestError) -> &'static str {
    match error {
        GuestError::NotFound => "not-found",
        GuestError::Conflict(_) => "conflict",
        GuestError::Unavailable(_) => "unavailable",
        GuestError::Denied(_) => "denied",
        GuestError::Invalid(_) => "invalid",
        GuestError::Internal(_) => "internal",
    }
}
