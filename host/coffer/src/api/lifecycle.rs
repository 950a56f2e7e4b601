//! A secret's lifecycle beyond its value: `…/{name…}/undelete` and
//! `…/destroy` (`POST {"versions": […]}`), and `…/metadata` (`GET`, `PUT`
//! or `POST` to change it, `DELETE` to purge the secret with every version).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::secrets::body_error;
use super::{ApiError, AppState, AuditNote};
use crate::auth::{Actor, Capability};
use crate::clock::rfc3339;
use crate::secrets::{Metadata, MetadataChange};

/// The body of an undelete or a destroy.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionsBody {
    versions: Vec<u32>,
}

/// The body of a metadata change: fields left out stay as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataBody {
    max_versions: Option<u32>,
    cas_required: Option<bool>,
    custom_metadata: Option<BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct Changed<'a> {
    namespace: &'a str,
    name: &'a str,
    /// The versions the request changed (others were already so).
    versions: &'a [u32],
}

#[derive(Serialize)]
struct MetadataView<'a> {
    namespace: &'a str,
    name: &'a str,
    current_version: u32,
    oldest_version: u32,
    /// The secret's own setting; 0 leaves it to the server's.
    max_versions: u32,
    /// What the next write keeps.
    effective_max_versions: u32,
    cas_required: bool,
    custom_metadata: &'a BTreeMap<String, String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    versions: Vec<VersionView>,
}

#[derive(Serialize)]
struct VersionView {
    version: u32,
    created_at: String,
    deleted_at: Option<String>,
    destroyed: bool,
    destroyed_at: Option<String>,
}

fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(body_error)?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn timestamp(ms: i64) -> Option<String> {
    (ms != 0).then(|| rfc3339(ms))
}

fn metadata_view(namespace: &str, name: &str, metadata: &Metadata) -> Response {
    let view = MetadataView {
        namespace,
        name,
        current_version: metadata.current_version(),
        oldest_version: metadata.oldest_version(),
        max_versions: metadata.meta.max_versions,
        effective_max_versions: metadata.effective_max_versions(),
        cas_required: metadata.meta.cas_required,
        custom_metadata: &metadata.meta.custom,
        created_at: metadata
            .versions
            .first()
            .and_then(|v| timestamp(v.created_at_ms)),
        updated_at: timestamp(metadata.updated_at_ms()),
        versions: metadata
            .versions
            .iter()
            .map(|v| VersionView {
                version: v.version,
                created_at: rfc3339(v.created_at_ms),
                deleted_at: v.deleted_at_ms.map(rfc3339),
                destroyed: v.destroyed_at_ms.is_some(),
                destroyed_at: v.destroyed_at_ms.map(rfc3339),
            })
            .collect(),
    };
    Json(view).into_response()
}

/// The answer to a change of versions, noted in the audit trail.
fn changed(namespace: &str, name: &str, verb: &str, versions: &[u32]) -> Response {
    let mut response = Json(Changed {
        namespace,
        name,
        versions,
    })
    .into_response();
    let list: Vec<String> = versions.iter().map(u32::to_string).collect();
    response
        .extensions_mut()
        .insert(AuditNote(format!("{verb} versions [{}]", list.join(","))));
    response
}

pub async fn metadata(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: String,
    name: String,
) -> Result<Response, ApiError> {
    actor.require(Capability::Read, &namespace)?;
    let metadata = state.secrets.metadata(&namespace, &name).await?;
    Ok(metadata_view(&namespace, &name, &metadata))
}

pub async fn set_metadata(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: String,
    name: String,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    actor.require(Capability::Write, &namespace)?;
    let body: MetadataBody = json_body(body)?;
    let change = MetadataChange {
        max_versions: body.max_versions,
        cas_required: body.cas_required,
        custom: body.custom_metadata,
    };
    // Lowering max_versions below what is kept erases history on the next
    // write: that takes `destroy`.
    let may_shorten = actor.require(Capability::Destroy, &namespace).is_ok();
    let metadata = state
        .secrets
        .set_metadata(&namespace, &name, change, may_shorten)
        .await?;
    Ok(metadata_view(&namespace, &name, &metadata))
}

pub async fn undelete(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: String,
    name: String,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Who may hide versions may bring them back.
    actor.require(Capability::Delete, &namespace)?;
    let body: VersionsBody = json_body(body)?;
    let versions = state
        .secrets
        .undelete(&namespace, &name, &body.versions)
        .await?;
    Ok(changed(&namespace, &name, "undeleted", &versions))
}

pub async fn destroy(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: String,
    name: String,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    actor.require(Capability::Destroy, &namespace)?;
    let body: VersionsBody = json_body(body)?;
    let versions = state
        .secrets
        .destroy(&namespace, &name, &body.versions)
        .await?;
    if !versions.is_empty() {
        state.keys.shred().await;
    }
    Ok(changed(&namespace, &name, "destroyed", &versions))
}

pub async fn purge(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: String,
    name: String,
) -> Result<Response, ApiError> {
    actor.require(Capability::Destroy, &namespace)?;
    let purged = state.secrets.purge(&namespace, &name).await?;
    state.keys.shred().await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(AuditNote(format!(
        "purged the secret and its metadata; {} versions destroyed",
        purged.destroyed
    )));
    Ok(response)
}
