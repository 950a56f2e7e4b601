//! `/v1/keys…` (data keys) and `/v1/sys/kek…` (the KEK), with
//! `keys:read` for looking and `keys:manage` for changing. Where a key
//! operation reaches into the secrets themselves, the namespace's own
//! capability is needed too: `list` to see which secrets a key protects,
//! `read` to export a key (whoever holds the transport keyset can open it),
//! `destroy` to force-destroy a key secrets still use.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use coffer_crypto::Algorithm;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use zeroize::Zeroizing;

use super::secrets::{body_error, query_error};
use super::{ApiError, AppState};
use crate::auth::{Actor, Admin, Capability};
use crate::keys::transport::ExportedKey;
use crate::maintenance::ReencryptRequest;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    algorithm: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    /// `destroy` only: destroy even though secret versions still use the key.
    #[serde(default)]
    force: bool,
    /// `export` only: the transport keyset, Tink JSON (as text or object).
    transport: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    transport: serde_json::Value,
    key: ExportedKey,
}

type Body = Result<Bytes, BytesRejection>;

/// Parses a JSON body; an empty body is `{}`.
fn json_body<T: DeserializeOwned + Default>(body: Body) -> Result<T, ApiError> {
    let body = body.map_err(body_error)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(e.body_text()))
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

pub async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    actor.require_admin(Admin::KeysRead)?;
    let Query(query) = query.map_err(query_error)?;
    let (namespaces, next) = state
        .keys
        .list(query.after.as_deref(), query.limit.unwrap_or(100))
        .await?;
    Ok(ok(json!({ "namespaces": namespaces, "next": next })))
}

pub async fn show(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    namespace: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    actor.require_admin(Admin::KeysRead)?;
    let namespace = path(namespace)?;
    let shown = state.keys.show(&namespace).await?;
    if actor.require(Capability::List, &namespace).is_ok() {
        Ok(ok(shown))
    } else {
        Ok(ok(shown.without_names()))
    }
}

/// `POST /v1/keys/{namespace}/{operation}`: rotate, reencrypt, import.
pub async fn namespace_operation(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    target: Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    actor.require_admin(Admin::KeysManage)?;
    let (namespace, operation) = path(target)?;
    match operation.as_str() {
        "rotate" => {
            let body: RotateBody = json_body(body)?;
            let algorithm = body
                .algorithm
                .map(|a| {
                    a.parse::<Algorithm>().map_err(|_| {
                        ApiError::bad_request("algorithm must be AES256_GCM or AES128_GCM")
                    })
                })
                .transpose()?;
            Ok(ok(state.keys.rotate(&namespace, algorithm).await?))
        }
        "reencrypt" => {
            let body: ReencryptRequest = json_body(body)?;
            Ok(ok(state.keys.reencrypt(&namespace, body).await?))
        }
        "import" => {
            let body = body.map_err(body_error)?;
            let body: ImportBody = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
            let transport = transport_text(body.transport);
            Ok(ok(state
                .keys
                .import(&namespace, &transport, &body.key)
                .await?))
        }
        _ => Err(ApiError::not_found("no such key operation")),
    }
}

/// `POST /v1/keys/{namespace}/{id}/{action}`: deprecate, inactivate,
/// destroy, export.
pub async fn key_action(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    target: Result<Path<(String, u32, String)>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    actor.require_admin(Admin::KeysManage)?;
    let (namespace, id, action) = path(target)?;
    let body: ActionBody = json_body(body)?;
    match action.as_str() {
        "deprecate" => Ok(ok(state.keys.deprecate(&namespace, id).await?)),
        "inactivate" => Ok(ok(state.keys.inactivate(&namespace, id).await?)),
        "destroy" => {
            if body.force {
                actor.require(Capability::Destroy, &namespace)?;
            }
            Ok(ok(state.keys.destroy(&namespace, id, body.force).await?))
        }
        "export" => {
            actor.require(Capability::Read, &namespace)?;
            let transport = body.transport.map(transport_text).ok_or_else(|| {
                ApiError::bad_request("transport: the transport keyset is required")
            })?;
            Ok(ok(state.keys.export(&namespace, id, &transport).await?))
        }
        _ => Err(ApiError::not_found("no such key action")),
    }
}

pub async fn kek_status(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Response, ApiError> {
    actor.require_admin(Admin::KeysRead)?;
    Ok(ok(state.keys.kek_status().await?))
}

/// `POST /v1/sys/kek/{operation}`: rotate, rewrap, reload.
pub async fn kek_operation(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    operation: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    actor.require_admin(Admin::KeysManage)?;
    match path(operation)?.as_str() {
        "rotate" => Ok(ok(state.keys.kek_rotate().await?)),
        "rewrap" => Ok(ok(state.keys.kek_rewrap().await?)),
        "reload" => Ok(ok(state.keys.kek_reload().await?)),
        _ => Err(ApiError::not_found("no such KEK operation")),
    }
}

/// `POST /v1/sys/janitor/run`: one janitor cycle now.
pub async fn run_janitor(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Response, ApiError> {
    actor.require_admin(Admin::KeysManage)?;
    Ok(ok(state.janitor.cycle().await?))
}
