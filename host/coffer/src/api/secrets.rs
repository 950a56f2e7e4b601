//! `/v1/secrets/{namespace}[/{name…}]`: write, read, list and delete; a
//! path ending in `/metadata`, `/undelete` or `/destroy` goes to
//! [`super::lifecycle`] (see [`split_operation`]).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{ApiError, AppState, lifecycle};
use crate::auth::{Actor, Capability};
use crate::clock::rfc3339;
use crate::secrets::{SecretOperation, split_operation};
use coffer_crypto::record::ValueFormat;

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
    /// `json` for an object written through the KV v2 API; text otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
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

pub(super) type SecretPath = Result<Path<(String, String)>, PathRejection>;

/// The namespace, the secret's name and what the path addresses.
fn target(path: SecretPath) -> Result<(String, String, SecretOperation), ApiError> {
    let Path((namespace, path)) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (name, operation) = split_operation(&path);
    Ok((namespace, name.to_owned(), operation))
}

type Body = Result<Bytes, BytesRejection>;
type ReadQueryResult = Result<Query<ReadQuery>, QueryRejection>;

/// `GET`: the value, or the secret's metadata.
pub async fn get(
    state: State<AppState>,
    actor: Extension<Actor>,
    secret: SecretPath,
    query: ReadQueryResult,
) -> Result<Response, ApiError> {
    let (namespace, name, operation) = target(secret)?;
    match operation {
        SecretOperation::Value => read(state, actor, namespace, name, query).await,
        SecretOperation::Metadata => {
            let Query(query) = query.map_err(query_error)?;
            if query.version.is_some() {
                return Err(ApiError::bad_request("metadata takes no version"));
            }
            lifecycle::metadata(state, actor, namespace, name).await
        }
        SecretOperation::Undelete | SecretOperation::Destroy => Err(ApiError::method_not_allowed()),
    }
}

/// `PUT`: a new version, or the secret's metadata.
pub async fn put(
    state: State<AppState>,
    actor: Extension<Actor>,
    secret: SecretPath,
    body: Body,
) -> Result<Response, ApiError> {
    let (namespace, name, operation) = target(secret)?;
    match operation {
        SecretOperation::Value => write(state, actor, namespace, name, body).await,
        SecretOperation::Metadata => {
            lifecycle::set_metadata(state, actor, namespace, name, body).await
        }
        SecretOperation::Undelete | SecretOperation::Destroy => Err(ApiError::method_not_allowed()),
    }
}

/// `POST`: as `PUT`, and undelete or destroy versions.
pub async fn post(
    state: State<AppState>,
    actor: Extension<Actor>,
    secret: SecretPath,
    body: Body,
) -> Result<Response, ApiError> {
    let (namespace, name, operation) = target(secret)?;
    match operation {
        SecretOperation::Value => write(state, actor, namespace, name, body).await,
        SecretOperation::Metadata => {
            lifecycle::set_metadata(state, actor, namespace, name, body).await
        }
        SecretOperation::Undelete => lifecycle::undelete(state, actor, namespace, name, body).await,
        SecretOperation::Destroy => lifecycle::destroy(state, actor, namespace, name, body).await,
    }
}

/// `DELETE`: the latest version (soft), or the whole secret.
pub async fn delete(
    state: State<AppState>,
    actor: Extension<Actor>,
    secret: SecretPath,
) -> Result<Response, ApiError> {
    let (namespace, name, operation) = target(secret)?;
    match operation {
        SecretOperation::Value => delete_latest(state, actor, namespace, name).await,
        SecretOperation::Metadata => lifecycle::purge(state, actor, namespace, name).await,
        SecretOperation::Undelete | SecretOperation::Destroy => Err(ApiError::method_not_allowed()),
    }
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

/// Notes in the audit trail the versions a write dropped: writing erases
/// history beyond max_versions, and the trail says so.
pub(super) fn note_pruned(response: &mut Response, pruned: &[u32]) {
    if !pruned.is_empty() {
        let versions: Vec<String> = pruned.iter().map(u32::to_string).collect();
        response.extensions_mut().insert(super::AuditNote(format!(
            "pruned versions {} (max_versions)",
            versions.join(",")
        )));
    }
}

pub(super) fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

async fn write(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: String,
    name: String,
    body: Body,
) -> Result<Response, ApiError> {
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
    note_pruned(&mut response, &written.pruned);
    Ok(response)
}

async fn read(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: String,
    name: String,
    query: ReadQueryResult,
) -> Result<Response, ApiError> {
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
        format: match secret.format {
            ValueFormat::Text => None,
            ValueFormat::Json => Some("json"),
        },
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

async fn delete_latest(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: String,
    name: String,
) -> Result<Response, ApiError> {
    actor.require(Capability::Delete, &namespace)?;
    state.secrets.delete(&namespace, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
