//! A secret's lifecycle beyond its value: `…/{name…}/undelete` and
//! `…/destroy` (`POST {"versions": […]}`), and `…/metadata` (`GET`, `PUT`
//! or `POST` to change it, `DELETE` to purge the secret with every version).

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::action::Target;
use super::openapi::SecretPath;
use super::{ApiError, AppState, AuditNote};
use crate::auth::{Actor, Capability};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::secrets::{Metadata, MetadataChange};

/// The body of an undelete or a destroy.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionsBody {
    versions: Vec<u32>,
}

/// The body of a metadata change: fields left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataBody {
    /// Versions kept (0: the server's setting); lowering it below what is
    /// kept takes `destroy`.
    max_versions: Option<u32>,
    /// Whether every write must give `cas`.
    cas_required: Option<bool>,
    /// Replaces the secret's string map.
    custom_metadata: Option<BTreeMap<String, String>>,
}

/// The versions a request changed.
#[derive(Serialize, ToSchema)]
pub struct Changed<'a> {
    namespace: &'a str,
    name: &'a str,
    /// The versions the request changed (others were already so).
    versions: &'a [u32],
}

/// A secret's metadata and its versions.
#[derive(Serialize, ToSchema)]
pub struct MetadataView<'a> {
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

/// One version's state.
#[derive(Serialize, ToSchema)]
pub struct VersionView {
    version: u32,
    created_at: String,
    deleted_at: Option<String>,
    destroyed: bool,
    destroyed_at: Option<String>,
}

/// A change of some of a secret's versions, as both APIs offer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VersionChange {
    Delete,
    Undelete,
    Destroy,
}

impl VersionChange {
    /// What it did, for the audit note.
    fn verb(self) -> &'static str {
        match self {
            VersionChange::Delete => "deleted",
            VersionChange::Undelete => "undeleted",
            VersionChange::Destroy => "destroyed",
        }
    }

    /// Applies the change to `versions` (shredding what a destroy freed);
    /// the versions it changed.
    pub(super) async fn apply(
        self,
        state: &AppState,
        namespace: &str,
        name: &str,
        versions: &[u32],
    ) -> Result<Vec<u32>, Error> {
        let secrets = &state.secrets;
        let changed = match self {
            VersionChange::Delete => secrets.delete_versions(namespace, name, versions).await?,
            VersionChange::Undelete => secrets.undelete(namespace, name, versions).await?,
            VersionChange::Destroy => secrets.destroy(namespace, name, versions).await?,
        };
        if self == VersionChange::Destroy && !changed.is_empty() {
            state.keys.shred().await;
        }
        Ok(changed)
    }

    /// The audit note of the versions it changed.
    pub(super) fn note(self, changed: &[u32]) -> AuditNote {
        let list: Vec<String> = changed.iter().map(u32::to_string).collect();
        AuditNote(format!("{} versions [{}]", self.verb(), list.join(",")))
    }
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

#[utoipa::path(
    get,
    path = "/v1/secrets/{namespace}/{name}/metadata",
    tag = "secrets",
    summary = "A secret's metadata and versions (`read`)",
    params(SecretPath),
    responses((status = 200, description = "The metadata", body = MetadataView)),
)]
pub async fn metadata(state: &AppState, target: &Target) -> Result<Response, ApiError> {
    let (namespace, name) = (target.namespace(), target.name());
    let metadata = state.secrets.metadata(namespace, name).await?;
    Ok(metadata_view(namespace, name, &metadata))
}

#[utoipa::path(
    put,
    path = "/v1/secrets/{namespace}/{name}/metadata",
    tag = "secrets",
    summary = "Change a secret's settings (`write`); POST does the same",
    params(SecretPath),
    request_body = MetadataBody,
    responses((status = 200, description = "The metadata now", body = MetadataView)),
)]
pub async fn set_metadata(
    state: &AppState,
    actor: &Actor,
    target: &Target,
    body: MetadataBody,
) -> Result<Response, ApiError> {
    let (namespace, name) = (target.namespace(), target.name());
    let change = MetadataChange {
        max_versions: body.max_versions,
        cas_required: body.cas_required,
        custom: body.custom_metadata,
    };
    // Lowering max_versions below what is kept erases history on the next
    // write: that takes `destroy`.
    let may_shorten = actor.require(Capability::Destroy, namespace).is_ok();
    let metadata = state
        .secrets
        .set_metadata(namespace, name, change, may_shorten)
        .await?;
    Ok(metadata_view(namespace, name, &metadata))
}

#[utoipa::path(
    post,
    path = "/v1/secrets/{namespace}/{name}/undelete",
    tag = "secrets",
    summary = "Bring deleted versions back (`delete`)",
    params(SecretPath),
    request_body = VersionsBody,
    responses((status = 200, description = "The versions undeleted", body = Changed)),
)]
pub async fn undelete(
    state: &AppState,
    target: &Target,
    body: VersionsBody,
) -> Result<Response, ApiError> {
    change_versions(state, target, VersionChange::Undelete, body).await
}

#[utoipa::path(
    post,
    path = "/v1/secrets/{namespace}/{name}/destroy",
    tag = "secrets",
    summary = "Crypto-shred versions for good (`destroy`)",
    params(SecretPath),
    request_body = VersionsBody,
    responses((status = 200, description = "The versions destroyed", body = Changed)),
)]
pub async fn destroy(
    state: &AppState,
    target: &Target,
    body: VersionsBody,
) -> Result<Response, ApiError> {
    change_versions(state, target, VersionChange::Destroy, body).await
}

/// Undeletes or destroys the versions the body names; answers with those
/// it changed, noted in the audit trail.
async fn change_versions(
    state: &AppState,
    target: &Target,
    change: VersionChange,
    body: VersionsBody,
) -> Result<Response, ApiError> {
    let (namespace, name) = (target.namespace(), target.name());
    let versions = change.apply(state, namespace, name, &body.versions).await?;
    let mut response = Json(Changed {
        namespace,
        name,
        versions: &versions,
    })
    .into_response();
    response.extensions_mut().insert(change.note(&versions));
    Ok(response)
}

#[utoipa::path(
    delete,
    path = "/v1/secrets/{namespace}/{name}/metadata",
    tag = "secrets",
    summary = "Purge the secret: every version and its metadata (`destroy`)",
    params(SecretPath),
    responses((status = 204, description = "Purged")),
)]
pub async fn purge(state: &AppState, target: &Target) -> Result<Response, ApiError> {
    let purged = state
        .secrets
        .purge(target.namespace(), target.name())
        .await?;
    state.keys.shred().await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(AuditNote(format!(
        "purged the secret and its metadata; {} versions destroyed",
        purged.destroyed
    )));
    Ok(response)
}
