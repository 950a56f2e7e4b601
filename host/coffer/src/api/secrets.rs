//! `/v1/secrets/{namespace}[/{name…}]`: write, read, list and delete; a
//! path ending in `/metadata`, `/undelete` or `/destroy` goes to
//! [`super::lifecycle`], as the route resolved it ([`Target`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::action::{Action, Target};
use super::extract::{PathParams, QueryParams, RawBody, parse};
use super::lifecycle;
use super::openapi::{NamespacePath, SecretPath};
use super::transport::{SealTo, bound_path};
use super::{ApiError, AppState};
use crate::auth::Actor;
use crate::clock::rfc3339;
use crate::sealing::SealedValue;
use coffer_crypto::record::ValueFormat;

/// The body of a write.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteBody {
    /// The value, stored encrypted under a fresh key.
    #[schema(value_type = String)]
    value: Zeroizing<String>,
    /// Check-and-set: write only if the latest version is this one (0: only
    /// if the secret does not exist).
    cas: Option<u32>,
}

/// A version written.
#[derive(Serialize, ToSchema)]
pub struct Written<'a> {
    namespace: &'a str,
    name: &'a str,
    version: u32,
    created_at: String,
    /// Versions this write dropped to keep `max_versions`.
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    pruned: &'a [u32],
}

/// A version's value.
#[derive(Serialize, ToSchema)]
pub struct Read<'a> {
    namespace: &'a str,
    name: &'a str,
    value: &'a str,
    /// `json` for an object written through the KV v2 API; text otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    version: u32,
    created_at: String,
}

/// A version's value sealed to the client's one-time key
/// (`Coffer-Seal-To`).
#[derive(Serialize, ToSchema)]
pub struct SealedRead<'a> {
    namespace: &'a str,
    name: &'a str,
    /// The value, sealed (HPKE auth mode) to the key in `Coffer-Seal-To`
    /// by the server's transport key `sealed.kid`, bound to the path and
    /// `version`.
    sealed: SealedValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    version: u32,
    created_at: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// The version to read; the latest when left out.
    #[param(minimum = 1)]
    version: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only names starting with this.
    #[serde(default)]
    prefix: String,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Most names on the page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// A page of names.
#[derive(Serialize, ToSchema)]
pub struct NamePage {
    names: Vec<String>,
    next: Option<String>,
}

/// Default page size of a listing.
const DEFAULT_LIST_LIMIT: u32 = 100;

/// `GET`: the value, or the secret's metadata.
pub async fn get(
    State(state): State<AppState>,
    Extension(target): Extension<Target>,
    seal_to: Option<Extension<SealTo>>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<Response, ApiError> {
    match target.action {
        Action::SecretRead => {
            let seal_to = seal_to.map(|Extension(key)| key);
            read(&state, &target, query.version, seal_to).await
        }
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
        Action::SecretUndelete => lifecycle::undelete(&state, &target, parse(&body)?).await,
        Action::SecretDestroy => lifecycle::destroy(&state, &target, parse(&body)?).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `DELETE`: the latest version (soft), or the whole secret.
pub async fn delete(
    State(state): State<AppState>,
    Extension(target): Extension<Target>,
) -> Result<Response, ApiError> {
    match target.action {
        Action::SecretDelete => delete_latest(&state, &target).await,
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

#[utoipa::path(
    put,
    path = "/v1/secrets/{namespace}/{name}",
    tag = "secrets",
    summary = "Write a new version (`write`); POST does the same. The body may instead be a `SealedRequest` holding this body sealed to the transport key",
    params(SecretPath),
    request_body = WriteBody,
    responses((status = 200, description = "The version written", body = Written)),
)]
pub(super) async fn write(
    state: &AppState,
    target: &Target,
    body: WriteBody,
) -> Result<Response, ApiError> {
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

#[utoipa::path(
    get,
    path = "/v1/secrets/{namespace}/{name}",
    tag = "secrets",
    summary = "Read the latest or a given version (`read`)",
    params(
        SecretPath,
        ReadQuery,
        ("Coffer-Seal-To" = Option<String>, Header,
         description = "A one-time X25519 public key (base64): the value comes back sealed to it"),
    ),
    responses(
        (status = 200, description = "The value", body = Read),
        (status = 200, description = "With `Coffer-Seal-To`: the value sealed to that key", body = SealedRead),
    ),
)]
pub(super) async fn read(
    state: &AppState,
    target: &Target,
    version: Option<u32>,
    seal_to: Option<SealTo>,
) -> Result<Response, ApiError> {
    let (namespace, name) = (target.namespace(), target.name());
    let secret = state.secrets.get(namespace, name, version).await?;
    let format = match secret.format {
        ValueFormat::Text => None,
        ValueFormat::Json => Some("json"),
    };
    let created_at = rfc3339(secret.created_at_ms);
    if let Some(SealTo(client_key)) = seal_to {
        let sealed = state
            .transport
            .seal(
                &client_key,
                &bound_path(target),
                secret.version,
                &secret.value,
            )
            .await?;
        return Ok(Json(SealedRead {
            namespace,
            name,
            sealed,
            format,
            version: secret.version,
            created_at,
        })
        .into_response());
    }
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
        format,
        version: secret.version,
        created_at,
    };
    Ok(Json(answer).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/secrets/{namespace}",
    tag = "secrets",
    summary = "List names, a page at a time (`list`)",
    params(NamespacePath, ListQuery),
    responses((status = 200, description = "A page of names", body = NamePage)),
)]
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
    Ok(Json(NamePage {
        names: page.names,
        next: page.next,
    })
    .into_response())
}

/// Deletes the latest version; it can be undeleted.
#[utoipa::path(
    delete,
    path = "/v1/secrets/{namespace}/{name}",
    tag = "secrets",
    summary = "Delete the latest version, softly (`delete`)",
    params(SecretPath),
    responses((status = 204, description = "Deleted")),
)]
pub(super) async fn delete_latest(state: &AppState, target: &Target) -> Result<Response, ApiError> {
    state
        .secrets
        .delete(target.namespace(), target.name())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
