//! `/v1/secrets/{namespace}[/{name…}]`: write, read, list and delete; a
//! path ending in `/metadata`, `/undelete` or `/destroy` goes to
//! [`super::lifecycle`], as the route resolved it ([`Target`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::action::{Action, Target};
use super::extract::{PathParams, QueryParams, RawBody, parse};
use super::lifecycle::{self, VersionChange};
use super::{ApiError, AppState};
use crate::auth::Actor;
use crate::clock::rfc3339;
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

/// `GET`: the value, or the secret's metadata.
pub async fn get(
    State(state): State<AppState>,
    Extension(target): Extension<Target>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<Response, ApiError> {
    match target.action {
        Action::SecretRead => read(&state, &target, query.version).await,
        Action::SecretMetadataRead if query.version.is_some() => {
            Err(ApiError::bad_request("metadata takes no version"))
        }
        Action::SecretMetadataRead => lifecycle::metadata(&state, &target).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `PUT`: a new version, or the secret's metadata.
pub async fn put(
    state: State<AppState>,
    actor: Extension<Actor>,
    target: Extension<Target>,
    body: RawBody,
) -> Result<Response, ApiError> {
    post(state, actor, target, body).await
}

/// `POST`: as `PUT`, and undelete or destroy versions.
pub async fn post(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(target): Extension<Target>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    match target.action {
        Action::SecretWrite => write(&state, &target, parse(&body)?).await,
        Action::SecretMetadataWrite => {
            lifecycle::set_metadata(&state, &actor, &target, parse(&body)?).await
        }
        Action::SecretUndelete => {
            lifecycle::change_versions(&state, &target, VersionChange::Undelete, parse(&body)?)
                .await
        }
        Action::SecretDestroy => {
            lifecycle::change_versions(&state, &target, VersionChange::Destroy, parse(&body)?).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `DELETE`: the latest version (soft), or the whole secret.
pub async fn delete(
    State(state): State<AppState>,
    Extension(target): Extension<Target>,
) -> Result<Response, ApiError> {
    match target.action {
        Action::SecretDelete => {
            state
                .secrets
                .delete(target.namespace(), target.name())
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Action::SecretPurge => lifecycle::purge(&state, &target).await,
        _ => Err(ApiError::method_not_allowed()),
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

async fn write(state: &AppState, target: &Target, body: WriteBody) -> Result<Response, ApiError> {
    let (namespace, name) = (target.namespace(), target.name());
    let written = state
        .secrets
        .put(namespace, name, body.value.as_bytes(), body.cas)
        .await?;
    let answer = Written {
        namespace,
        name,
        version: written.version,
        created_at: rfc3339(written.created_at_ms),
        pruned: &written.pruned,
    };
    let mut response = Json(answer).into_response();
    note_pruned(&mut response, &written.pruned);
    Ok(response)
}

async fn read(
    state: &AppState,
    target: &Target,
    version: Option<u32>,
) -> Result<Response, ApiError> {
    let (namespace, name) = (target.namespace(), target.name());
    let secret = state.secrets.get(namespace, name, version).await?;
    let value = std::str::from_utf8(&secret.value).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the value is not UTF-8",
        )
    })?;
    let answer = Read {
        namespace,
        name,
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
    PathParams(namespace): PathParams<String>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
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
