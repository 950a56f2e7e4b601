//! The KV v2 endpoints of one mount (a coffer namespace): what each does
//! is the native API's operation of the same name, with the rights it
//! needs there, in Vault's request and answer shapes.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::extract::{JsonBody, PathParams, QueryParams, RawBody, parse};
use super::super::lifecycle::VersionChange;
use super::super::secrets::note_pruned;
use super::super::{ApiError, AppState, AuditNote, RequestId};
use super::{envelope, value, versions};
use crate::auth::{Actor, Capability};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::secrets::{MAX_LIST_LIMIT, MAX_NAME_BYTES, MetadataChange, VersionState, Written};

/// How often a patch re-reads and merges after losing a race to a writer.
const PATCH_ATTEMPTS: usize = 5;
/// Most names one listing looks through before it asks for a narrower path.
const MAX_LISTED_NAMES: usize = 100_000;

#[derive(Deserialize)]
pub struct ReadQuery {
    #[serde(default)]
    version: u32,
    #[serde(default)]
    depth: u32,
}

#[derive(Deserialize)]
pub struct ListQuery {
    list: Option<String>,
}

impl ListQuery {
    fn wants_list(&self) -> bool {
        self.list.as_deref() == Some("true")
    }
}

#[derive(Deserialize)]
struct WriteBody {
    data: Option<Map<String, Value>>,
    #[serde(default)]
    options: WriteOptions,
}

#[derive(Deserialize, Default)]
struct WriteOptions {
    cas: Option<u32>,
}

#[derive(Deserialize)]
pub struct VersionsBody {
    #[serde(default, deserialize_with = "versions")]
    versions: Vec<u32>,
}

#[derive(Deserialize)]
struct MetadataBody {
    max_versions: Option<u32>,
    cas_required: Option<bool>,
    custom_metadata: Option<BTreeMap<String, String>>,
    delete_version_after: Option<String>,
}

fn no_content(note: Option<String>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(note) = note {
        response.extensions_mut().insert(AuditNote(note));
    }
    response
}

/// A version's metadata as Vault shows it beside its data.
fn version_metadata(state: &VersionState, custom: &BTreeMap<String, String>) -> Value {
    json!({
        "created_time": rfc3339(state.created_at_ms),
        "custom_metadata": if custom.is_empty() { Value::Null } else { json!(custom) },
        "deletion_time": state.deleted_at_ms.map(rfc3339).unwrap_or_default(),
        "destroyed": state.destroyed_at_ms.is_some(),
        "version": state.version,
    })
}

fn written_metadata(written: &Written) -> Value {
    json!({
        "created_time": rfc3339(written.created_at_ms),
        "custom_metadata": null,
        "deletion_time": "",
        "destroyed": false,
        "version": written.version,
    })
}

/// The version `asked` (0: the current one) with its metadata and data;
/// a deleted or destroyed version answers 404 with its metadata, as Vault
/// does.
async fn version_data(
    state: &AppState,
    request_id: &RequestId,
    mount: &str,
    path: &str,
    asked: u32,
) -> Result<Result<(Map<String, Value>, Value), Response>, ApiError> {
    let metadata = state.secrets.metadata(mount, path).await?;
    let version = if asked == 0 {
        metadata.current_version()
    } else {
        asked
    };
    let entry = metadata
        .versions
        .iter()
        .find(|v| v.version == version)
        .ok_or_else(|| ApiError::not_found(format!("no version {version}")))?;
    let shown = version_metadata(entry, &metadata.meta.custom);
    if entry.deleted_at_ms.is_some() || entry.destroyed_at_ms.is_some() {
        let mut response = envelope(request_id, json!({ "data": null, "metadata": shown }));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(Err(response));
    }
    let secret = state.secrets.get(mount, path, Some(version)).await?;
    let data = value::to_data(&secret.value, secret.format).ok_or_else(|| {
        ApiError::from(Error::Internal(
            "a value marked as a JSON object is not one".to_owned(),
        ))
    })?;
    Ok(Ok((data, shown)))
}

pub async fn read(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    PathParams((mount, path)): PathParams<(String, String)>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<Response, ApiError> {
    Ok(
        match version_data(&state, &request_id, &mount, &path, query.version).await? {
            Ok((data, metadata)) => {
                envelope(&request_id, json!({ "data": data, "metadata": metadata }))
            }
            Err(gone) => gone,
        },
    )
}

pub async fn subkeys(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    PathParams((mount, path)): PathParams<(String, String)>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<Response, ApiError> {
    Ok(
        match version_data(&state, &request_id, &mount, &path, query.version).await? {
            Ok((data, metadata)) => envelope(
                &request_id,
                json!({ "subkeys": value::subkeys(&data, query.depth), "metadata": metadata }),
            ),
            Err(gone) => gone,
        },
    )
}

/// Stores `data` as a new version.
async fn store(
    state: &AppState,
    mount: &str,
    path: &str,
    data: &Map<String, Value>,
    cas: Option<u32>,
) -> Result<Written, Error> {
    let (stored, format) = value::to_stored(data);
    state
        .secrets
        .put_as(mount, path, &stored, format, cas)
        .await
}

fn written(request_id: &RequestId, written: &Written) -> Response {
    let mut response = envelope(request_id, written_metadata(written));
    note_pruned(&mut response, &written.pruned);
    response
}

pub async fn write(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    PathParams((mount, path)): PathParams<(String, String)>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let body: WriteBody = parse(&body)?;
    let data = body
        .data
        .ok_or_else(|| ApiError::bad_request("no data provided"))?;
    let done = store(&state, &mount, &path, &data, body.options.cas).await?;
    Ok(written(&request_id, &done))
}

/// `PATCH` with a JSON merge patch of the current version's data, written
/// as a new version with check-and-set (re-merged if a writer came first).
pub async fn patch(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    PathParams((mount, path)): PathParams<(String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let merge_patch = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/merge-patch+json"));
    if !merge_patch {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "PATCH takes Content-Type: application/merge-patch+json",
        ));
    }
    let body: WriteBody = parse(&body)?;
    let patch = Value::Object(
        body.data
            .ok_or_else(|| ApiError::bad_request("no data provided"))?,
    );
    if body.options.cas.is_none()
        && state
            .secrets
            .metadata(&mount, &path)
            .await?
            .meta
            .cas_required
    {
        return Err(ApiError::bad_request(
            "check-and-set parameter required for this call",
        ));
    }
    for _ in 0..PATCH_ATTEMPTS {
        let (data, metadata) = match version_data(&state, &request_id, &mount, &path, 0).await? {
            Ok(found) => found,
            Err(_) => return Err(ApiError::not_found("the current version is deleted")),
        };
        let current = metadata["version"].as_u64().unwrap_or_default() as u32;
        if let Some(cas) = body.options.cas
            && cas != current
        {
            return Err(Error::Conflict(format!(
                "check-and-set failed: the latest version is {current}, not {cas}"
            ))
            .into());
        }
        let mut merged = Value::Object(data);
        value::merge_patch(&mut merged, &patch);
        let Value::Object(merged) = merged else {
            return Err(ApiError::bad_request("the patch must leave an object"));
        };
        match store(&state, &mount, &path, &merged, Some(current)).await {
            Ok(done) => return Ok(written(&request_id, &done)),
            Err(Error::Conflict(_)) if body.options.cas.is_none() => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(
        Error::Conflict("the secret keeps changing under concurrent writers; retry".to_owned())
            .into(),
    )
}

pub async fn delete_latest(
    State(state): State<AppState>,
    PathParams((mount, path)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    // Vault answers 204 whether or not there was a version to delete.
    absent_is_fine(state.secrets.delete(&mount, &path).await)?;
    Ok(no_content(None))
}

/// Vault answers a change of a missing secret as done: nothing to change.
fn absent_is_fine<T>(result: Result<T, Error>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

pub async fn delete_versions(
    state: State<AppState>,
    path: PathParams<(String, String)>,
    body: JsonBody<VersionsBody>,
) -> Result<Response, ApiError> {
    change_versions(state, path, body, VersionChange::Delete).await
}

pub async fn undelete(
    state: State<AppState>,
    path: PathParams<(String, String)>,
    body: JsonBody<VersionsBody>,
) -> Result<Response, ApiError> {
    change_versions(state, path, body, VersionChange::Undelete).await
}

pub async fn destroy(
    state: State<AppState>,
    path: PathParams<(String, String)>,
    body: JsonBody<VersionsBody>,
) -> Result<Response, ApiError> {
    change_versions(state, path, body, VersionChange::Destroy).await
}

/// `delete`, `undelete` and `destroy` of the versions the body names; 204
/// even when the secret is missing, as Vault answers.
async fn change_versions(
    State(state): State<AppState>,
    PathParams((mount, path)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<VersionsBody>,
    change: VersionChange,
) -> Result<Response, ApiError> {
    if body.versions.is_empty() {
        return Err(ApiError::bad_request("no version number provided"));
    }
    let asked = body.versions;
    let changed =
        absent_is_fine(change.apply(&state, &mount, &path, &asked).await)?.unwrap_or_default();
    let mut response = no_content(None);
    response.extensions_mut().insert(change.note(&changed));
    Ok(response)
}

pub async fn metadata_get(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    PathParams((mount, path)): PathParams<(String, String)>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    if query.wants_list() {
        return list(&state, &request_id, &mount, &path).await;
    }
    let metadata = state.secrets.metadata(&mount, &path).await?;
    let versions: Map<String, Value> = metadata
        .versions
        .iter()
        .map(|v| {
            let shown = json!({
                "created_time": rfc3339(v.created_at_ms),
                "deletion_time": v.deleted_at_ms.map(rfc3339).unwrap_or_default(),
                "destroyed": v.destroyed_at_ms.is_some(),
            });
            (v.version.to_string(), shown)
        })
        .collect();
    let custom = &metadata.meta.custom;
    Ok(envelope(
        &request_id,
        json!({
            "cas_required": metadata.meta.cas_required,
            "created_time": metadata.versions.first().map(|v| rfc3339(v.created_at_ms)).unwrap_or_default(),
            "current_version": metadata.current_version(),
            "custom_metadata": if custom.is_empty() { Value::Null } else { json!(custom) },
            "delete_version_after": "0s",
            "max_versions": metadata.meta.max_versions,
            "oldest_version": metadata.oldest_version(),
            "updated_time": rfc3339(metadata.updated_at_ms()),
            "versions": versions,
        }),
    ))
}

/// `LIST` (the method hvac sends) on a path under the mount.
pub async fn metadata_list(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    method: Method,
    PathParams((mount, path)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    if method.as_str() != "LIST" {
        return Err(ApiError::method_not_allowed());
    }
    list(&state, &request_id, &mount, &path).await
}

/// `LIST`, or `GET ?list=true`, at the mount's root.
pub async fn list_root(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    method: Method,
    PathParams(mount): PathParams<String>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let listing = method.as_str() == "LIST" || method == Method::GET && query.wants_list();
    if !listing {
        return Err(ApiError::method_not_allowed());
    }
    list(&state, &request_id, &mount, "").await
}

/// The names and folders (ending in `/`) right under `folder`, as Vault
/// lists them; a folder's contents are skipped over, not read.
async fn list(
    state: &AppState,
    request_id: &RequestId,
    mount: &str,
    folder: &str,
) -> Result<Response, ApiError> {
    let prefix = match folder {
        "" => String::new(),
        f if f.ends_with('/') => f.to_owned(),
        f => format!("{f}/"),
    };
    let mut keys: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut looked_at = 0;
    loop {
        let page = state
            .secrets
            .list(mount, &prefix, after.as_deref(), MAX_LIST_LIMIT)
            .await?;
        looked_at += page.scanned;
        let mut last_folder = None;
        for name in &page.names {
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            let key = match rest.find('/') {
                Some(end) => &rest[..=end],
                None => rest,
            };
            if keys.last().map(String::as_str) != Some(key) {
                keys.push(key.to_owned());
            }
            last_folder = key.ends_with('/').then(|| format!("{prefix}{key}"));
        }
        let Some(next) = page.next else { break };
        if looked_at > MAX_LISTED_NAMES {
            return Err(ApiError::bad_request(format!(
                "more than {MAX_LISTED_NAMES} names under this path: list a narrower one"
            )));
        }
        // A page that ends inside a folder: go on after everything in it
        // (when the cursor that takes stays within a name's length).
        after = Some(match last_folder {
            Some(folder) if folder.len() + 4 <= MAX_NAME_BYTES => format!("{folder}\u{10FFFF}"),
            _ => next,
        });
    }
    if keys.is_empty() {
        return Err(ApiError::not_found("nothing under this path"));
    }
    Ok(envelope(request_id, json!({ "keys": keys })))
}

pub async fn metadata_write(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    PathParams((mount, path)): PathParams<(String, String)>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let body: MetadataBody = parse(&body)?;
    if body
        .delete_version_after
        .as_deref()
        .is_some_and(|after| !matches!(after, "" | "0" | "0s"))
    {
        return Err(ApiError::bad_request(
            "delete_version_after is not supported: versions stay until deleted or pruned",
        ));
    }
    let change = MetadataChange {
        max_versions: body.max_versions,
        cas_required: body.cas_required,
        custom: body.custom_metadata,
    };
    let may_shorten = actor.require(Capability::Destroy, &mount).is_ok();
    state
        .secrets
        .set_metadata(&mount, &path, change, may_shorten)
        .await?;
    Ok(no_content(None))
}

pub async fn metadata_delete(
    State(state): State<AppState>,
    PathParams((mount, path)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    // Vault answers 204 whether or not there was anything.
    let note = match state.secrets.purge(&mount, &path).await {
        Ok(purged) => {
            state.keys.shred().await;
            format!(
                "purged the secret and its metadata; {} versions destroyed",
                purged.destroyed
            )
        }
        Err(Error::NotFound(_)) => "nothing to purge".to_owned(),
        Err(error) => return Err(error.into()),
    };
    Ok(no_content(Some(note)))
}

pub async fn config(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
) -> Result<Response, ApiError> {
    Ok(envelope(
        &request_id,
        json!({
            "cas_required": false,
            "delete_version_after": "0s",
            "max_versions": state.secrets.max_versions(),
        }),
    ))
}

pub async fn configure() -> ApiError {
    ApiError::bad_request(
        "a coffer namespace has no settings of its own: max_versions is in coffer.toml, \
         cas_required is set per secret through its metadata",
    )
}
