//! `/v1/secrets/{namespace}[/{name…}]`: write, read, list and delete.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{ApiError, AppState};
use crate::auth::{Actor, Capability};
use crate::clock::rfc3339;

/// The body of a write.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteBody {
    value: Zeroizing<String>,
    cas: Option<u32>,
}

#[derive(Serialize)]
struct Written<'a> {
    namespace: &'a str,
    name: &'a str,
    version: u32,
    created_at: String,
    /// Versions this write dropped to keep `max_versions`.
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    pruned: &'a [u32],
}

#[derive(Serialize)]
struct Read<'a> {
    namespace: &'a str,
    name: &'a str,
    value: &'a str,
    version: u32,
    created_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    version: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    prefix: String,
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct Listed {
    names: Vec<String>,
    next: Option<String>,
}

/// Default page size of a listing.
const DEFAULT_LIST_LIMIT: u32 = 100;

type SecretPath = Result<Path<(String, String)>, PathRejection>;

fn path(path: SecretPath) -> Result<(String, String), ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

pub(super) fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this server accepts",
        )
    } else {
        ApiError::bad_request(rejection.body_text())
    }
}

pub(super) fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

pub async fn write(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    secret: SecretPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (namespace, name) = path(secret)?;
    actor.require(Capability::Write, &namespace)?;
    let body = body.map_err(body_error)?;
    let body: WriteBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let written = state
        .secrets
        .put(&namespace, &name, body.value.as_bytes(), body.cas)
        .await?;
    let answer = Written {
        namespace: &namespace,
        name: &name,
        version: written.version,
        created_at: rfc3339(written.created_at_ms),
        pruned: &written.pruned,
    };
    let mut response = Json(answer).into_response();
    if !written.pruned.is_empty() {
        // Writing erases history beyond max_versions: the trail says so.
        let versions: Vec<String> = written.pruned.iter().map(u32::to_string).collect();
        response.extensions_mut().insert(super::AuditNote(format!(
            "pruned versions {} (max_versions)",
            versions.join(",")
        )));
    }
    Ok(response)
}

pub async fn read(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    secret: SecretPath,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (namespace, name) = path(secret)?;
    actor.require(Capability::Read, &namespace)?;
    let Query(query) = query.map_err(query_error)?;
    let secret = state.secrets.get(&namespace, &name, query.version).await?;
    let value = std::str::from_utf8(&secret.value).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the value is not UTF-8",
        )
    })?;
    let answer = Read {
        namespace: &namespace,
        name: &name,
        value,
        version: secret.version,
        created_at: rfc3339(secret.created_at_ms),
    };
    Ok(Json(answer).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(namespace) = namespace.map_err(|e| ApiError::bad_request(e.body_text()))?;
    actor.require(Capability::List, &namespace)?;
    let Query(query) = query.map_err(query_error)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if limit == 0 || limit > crate::secrets::MAX_LIST_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {}",
            crate::secrets::MAX_LIST_LIMIT
        )));
    }
    let page = state
        .secrets
        .list(&namespace, &query.prefix, query.after.as_deref(), limit)
        .await?;
    Ok(Json(Listed {
        names: page.names,
        next: page.next,
    })
    .into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    secret: SecretPath,
) -> Result<StatusCode, ApiError> {
    let (namespace, name) = path(secret)?;
    actor.require(Capability::Delete, &namespace)?;
    state.secrets.delete(&namespace, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
