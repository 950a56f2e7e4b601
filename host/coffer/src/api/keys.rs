//! `/v1/keys…` (data keys) and `/v1/sys/kek…` (the KEK), with
//! `keys:read` for looking and `keys:manage` for changing. Where a key
//! operation reaches into the secrets themselves, the namespace's own
//! capability is needed too: `list` to see which secrets a key protects,
//! `read` to export a key (whoever holds the transport keyset can open it),
//! `destroy` to force-destroy a key secrets still use.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use coffer_crypto::Algorithm;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::extract::{JsonBody, OptionalJsonBody, PathParams, QueryParams};
use super::openapi::{KeyPath, NamespacePath};
use super::{ApiError, AppState};
use crate::auth::{Actor, Capability};
use crate::keys::transport::ExportedKey;
use crate::maintenance::ReencryptRequest;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// `AES256_GCM` or `AES128_GCM`; the configured one when left out.
    #[schema(value_type = Option<String>)]
    algorithm: Option<Algorithm>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyBody {
    /// Destroy even though secret versions still use the key.
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    /// The transport keyset, Tink JSON (as text or object).
    transport: serde_json::Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// The transport keyset, Tink JSON (as text or object).
    transport: serde_json::Value,
    key: ExportedKey,
}

/// The transport keyset's JSON text, given either as a string or inline.
fn transport_text(value: serde_json::Value) -> Zeroizing<String> {
    match value {
        serde_json::Value::String(text) => Zeroizing::new(text),
        other => Zeroizing::new(other.to_string()),
    }
}

fn ok(value: impl serde::Serialize) -> Response {
    Json(value).into_response()
}

#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    summary = "List the namespaces that hold keys (`keys:read`)",
    params(ListQuery),
    responses((status = 200, description = "A page of namespaces", body = Object)),
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let (namespaces, next) = state
        .keys
        .list(query.after.as_deref(), query.limit.unwrap_or(100))
        .await?;
    Ok(ok(json!({ "namespaces": namespaces, "next": next })))
}

/// A namespace's keys; which secrets each protects only with `list` on it.
#[utoipa::path(
    get,
    path = "/v1/keys/{namespace}",
    tag = "keys",
    summary = "A namespace's keys and their use (`keys:read`)",
    params(NamespacePath),
    responses((status = 200, description = "The keys", body = Object)),
)]
pub async fn show(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    PathParams(namespace): PathParams<String>,
) -> Result<Response, ApiError> {
    let shown = state.keys.show(&namespace).await?;
    if actor.require(Capability::List, &namespace).is_ok() {
        Ok(ok(shown))
    } else {
        Ok(ok(shown.without_names()))
    }
}

#[utoipa::path(
    post,
    path = "/v1/keys/{namespace}/rotate",
    tag = "keys",
    summary = "Make a new data key the active one (`keys:manage`)",
    params(NamespacePath),
    request_body = Option<RotateBody>,
    responses((status = 200, description = "The keys now", body = Object)),
)]
pub async fn rotate(
    State(state): State<AppState>,
    PathParams(namespace): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<RotateBody>,
) -> Result<Response, ApiError> {
    Ok(ok(state.keys.rotate(&namespace, body.algorithm).await?))
}

#[utoipa::path(
    post,
    path = "/v1/keys/{namespace}/reencrypt",
    tag = "keys",
    summary = "Re-wrap one batch of secrets onto the active key (`keys:manage`)",
    params(NamespacePath),
    request_body = Option<ReencryptRequest>,
    responses((status = 200, description = "Where the pass stands", body = Object)),
)]
pub async fn reencrypt(
    State(state): State<AppState>,
    PathParams(namespace): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<ReencryptRequest>,
) -> Result<Response, ApiError> {
    Ok(ok(state.keys.reencrypt(&namespace, body).await?))
}

#[utoipa::path(
    post,
    path = "/v1/keys/{namespace}/import",
    tag = "keys",
    summary = "Import a data key exported by another instance (`keys:manage`)",
    params(NamespacePath),
    request_body = ImportBody,
    responses((status = 200, description = "The key imported", body = Object)),
)]
pub async fn import(
    State(state): State<AppState>,
    PathParams(namespace): PathParams<String>,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<Response, ApiError> {
    let transport = transport_text(body.transport);
    Ok(ok(state
        .keys
        .import(&namespace, &transport, &body.key)
        .await?))
}

#[utoipa::path(
    post,
    path = "/v1/keys/{namespace}/{id}/deprecate",
    tag = "keys",
    summary = "Deprecate a key: it still decrypts (`keys:manage`)",
    params(KeyPath),
    responses((status = 200, description = "The key", body = Object)),
)]
pub async fn deprecate(
    State(state): State<AppState>,
    PathParams((namespace, id)): PathParams<(String, u32)>,
) -> Result<Response, ApiError> {
    Ok(ok(state.keys.deprecate(&namespace, id).await?))
}

#[utoipa::path(
    post,
    path = "/v1/keys/{namespace}/{id}/inactivate",
    tag = "keys",
    summary = "Inactivate a key no secret uses (`keys:manage`)",
    params(KeyPath),
    responses((status = 200, description = "The key", body = Object)),
)]
pub async fn inactivate(
    State(state): State<AppState>,
    PathParams((namespace, id)): PathParams<(String, u32)>,
) -> Result<Response, ApiError> {
    Ok(ok(state.keys.inactivate(&namespace, id).await?))
}

/// Destroys a key; with `force` even though secret versions still use it,
/// which takes `destroy` on the namespace too.
#[utoipa::path(
    post,
    path = "/v1/keys/{namespace}/{id}/destroy",
    tag = "keys",
    summary = "Destroy a key (`keys:manage`; with force, `destroy` too)",
    params(KeyPath),
    request_body = Option<DestroyBody>,
    responses((status = 200, description = "The key", body = Object)),
)]
pub async fn destroy(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    PathParams((namespace, id)): PathParams<(String, u32)>,
    OptionalJsonBody(body): OptionalJsonBody<DestroyBody>,
) -> Result<Response, ApiError> {
    if body.force {
        actor.require(Capability::Destroy, &namespace)?;
    }
    Ok(ok(state.keys.destroy(&namespace, id, body.force).await?))
}

/// Exports a key wrapped to a transport keyset; takes `read` on the
/// namespace too.
#[utoipa::path(
    post,
    path = "/v1/keys/{namespace}/{id}/export",
    tag = "keys",
    summary = "Export a key wrapped to a transport keyset (`keys:manage` and `read`)",
    params(KeyPath),
    request_body = ExportBody,
    responses((status = 200, description = "The wrapped key", body = Object)),
)]
pub async fn export(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    PathParams((namespace, id)): PathParams<(String, u32)>,
    JsonBody(body): JsonBody<ExportBody>,
) -> Result<Response, ApiError> {
    actor.require(Capability::Read, &namespace)?;
    let transport = transport_text(body.transport);
    Ok(ok(state.keys.export(&namespace, id, &transport).await?))
}

#[utoipa::path(
    get,
    path = "/v1/sys/kek",
    tag = "keys",
    summary = "The KEK and the namespaces it wraps (`keys:read`)",
    responses((status = 200, description = "The KEK status", body = Object)),
)]
pub async fn kek_status(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(state.keys.kek_status().await?))
}

#[utoipa::path(
    post,
    path = "/v1/sys/kek/rotate",
    tag = "keys",
    summary = "Rotate the KEK, and the transport key with it (`keys:manage`)",
    responses((status = 200, description = "What was re-wrapped, and the new transport key's id", body = Object)),
)]
pub async fn kek_rotate(State(state): State<AppState>) -> Result<Response, ApiError> {
    let report = state.keys.kek_rotate().await?;
    // The KEK has rotated whatever happens next: a transport key that
    // cannot rotate now is reported, not the KEK's rotation undone.
    let transport_key_id = match state.transport.rotate().await {
        Ok(transport) => Some(transport.current.kid),
        Err(error) => {
            tracing::warn!(%error, "rotated the KEK, but not the transport key");
            None
        }
    };
    Ok(ok(KekRotated {
        report,
        transport_key_id,
    }))
}

/// A KEK rotation's report, with the transport key rotated along (none
/// when it could not be: `coffer transport rotate` then).
#[derive(serde::Serialize)]
struct KekRotated {
    #[serde(flatten)]
    report: crate::maintenance::KekReport,
    transport_key_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/sys/kek/rewrap",
    tag = "keys",
    summary = "Re-wrap every namespace under the current KEK (`keys:manage`)",
    responses((status = 200, description = "What was re-wrapped", body = Object)),
)]
pub async fn kek_rewrap(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(state.keys.kek_rewrap().await?))
}

#[utoipa::path(
    post,
    path = "/v1/sys/kek/reload",
    tag = "keys",
    summary = "Reload the keyset from its file (`keys:manage`)",
    responses((status = 200, description = "The KEK status", body = Object)),
)]
pub async fn kek_reload(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(state.keys.kek_reload().await?))
}

/// One janitor cycle now.
#[utoipa::path(
    post,
    path = "/v1/sys/janitor/run",
    tag = "keys",
    summary = "Run one janitor cycle now (`keys:manage`)",
    responses((status = 200, description = "What the cycle did", body = Object)),
)]
pub async fn run_janitor(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(state.janitor.cycle().await?))
}
