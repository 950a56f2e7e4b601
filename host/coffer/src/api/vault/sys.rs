//! What Vault clients call around a KV v2 mount: the mount lookup the
//! `bao kv` commands make first, the mount table, the token's own lookup
//! (hvac's `is_authenticated`), and health in Vault's shape.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::super::extract::PathParams;
use super::super::{ApiError, AppState, RequestId};
use super::envelope;
use crate::auth::Actor;
use crate::clock::{now_ms, rfc3339};
use crate::secrets::check_namespace;

/// Most namespaces the mount table shows.
const MAX_MOUNTS: u32 = 1000;

/// A namespace as a mount-table entry.
fn mount_entry(namespace: &str) -> Value {
    json!({
        "path": format!("{namespace}/"),
        "type": "kv",
        "description": "coffer namespace",
        "accessor": format!("kv_{namespace}"),
        "options": { "version": "2" },
        "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false },
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
    })
}

/// `GET /v1/sys/internal/ui/mounts/{path}`: every namespace is a KV v2
/// mount, named by the path's first segment.
pub async fn ui_mount(
    Extension(request_id): Extension<RequestId>,
    PathParams(path): PathParams<String>,
) -> Result<Response, ApiError> {
    let namespace = path.split('/').next().unwrap_or_default();
    check_namespace(namespace)?;
    // These names are the native API's: no KV v2 mount answers there.
    if ["secrets", "sys", "keys", "audit", "auth"].contains(&namespace) {
        return Err(ApiError::not_found("no KV v2 mount there"));
    }
    Ok(envelope(&request_id, mount_entry(namespace)))
}

/// `GET /v1/sys/mounts`: the namespaces that hold keys (`keys:read`).
pub async fn mounts(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
) -> Result<Response, ApiError> {
    let (namespaces, _) = state.keys.list(None, MAX_MOUNTS).await?;
    let table: Map<String, Value> = namespaces
        .iter()
        .map(|ns| (format!("{}/", ns.namespace), mount_entry(&ns.namespace)))
        .collect();
    Ok(envelope(&request_id, Value::Object(table)))
}

/// `GET /v1/auth/token/lookup-self`: the calling token, by its public id
/// (the token itself is never echoed).
pub async fn lookup_self(
    Extension(actor): Extension<Actor>,
    Extension(request_id): Extension<RequestId>,
) -> Response {
    let now = now_ms();
    let ttl = actor
        .expires_at_ms
        .map_or(0, |at| (at.saturating_sub(now) / 1000).max(0));
    envelope(
        &request_id,
        json!({
            "id": actor.token_id,
            "accessor": actor.token_id,
            "display_name": actor.name,
            // Vault's policies are names; coffer's is the token's own rules.
            "policies": ["coffer"],
            "coffer_policy": actor.policy,
            "ttl": ttl,
            "expire_time": actor.expires_at_ms.map(rfc3339),
            "renewable": false,
            "orphan": false,
            "type": "service",
            "path": "auth/token/create",
            "meta": null,
            "num_uses": 0,
        }),
    )
}

/// Health as Vault answers it: initialized, unsealed, active; 503 when
/// coffer itself is not healthy.
pub fn health(ok: bool) -> Response {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": now_ms() / 1000,
        "version": concat!("coffer-", env!("CARGO_PKG_VERSION")),
        "cluster_name": "coffer",
        "cluster_id": "",
    });
    (status, axum::Json(body)).into_response()
}
