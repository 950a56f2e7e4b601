//! The Vault KV v2 API over coffer namespaces: existing Vault and OpenBao
//! clients (the `bao`/`vault` CLI, hvac, the Go client) talk to coffer by
//! changing their address. A namespace is a KV v2 mount —
//! `/v1/{ns}/data/{path}`, `metadata`, `delete`, `undelete`, `destroy`,
//! `subkeys`, `config` — and the few `sys` and `auth` endpoints the clients
//! call around it answer too. The token (`X-Vault-Token` or a bearer) is a
//! coffer token, and coffer's policies apply as on the native API.
//!
//! Answers carry Vault's envelope ([`envelope`]); errors, from whichever
//! layer they come, are rewritten into Vault's `{"errors": […]}` with the
//! status codes Vault uses ([`vault_errors`]).

mod kv;
mod sys;
mod value;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::RequestId;
use super::action::{Action, Resolve};
use super::routes::Routes;

pub use sys::health;

/// The largest error body rewritten; a larger one passes as it is.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The Vault-compatible routes, each authorised like the native API's.
pub(super) fn routes(routes: Routes) -> Routes {
    let root_list = || get(kv::list_root).fallback(kv::list_root);
    routes
        .route(
            "/v1/{mount}/data/{*path}",
            Action::SecretRead,
            get(kv::read),
        )
        .route(
            "/v1/{mount}/data/{*path}",
            Action::SecretWrite,
            put(kv::write).post(kv::write).patch(kv::patch),
        )
        .route(
            "/v1/{mount}/data/{*path}",
            Action::SecretDelete,
            delete(kv::delete_latest),
        )
        .resolved("/v1/{mount}/metadata", Resolve::VaultMetadata, root_list())
        .resolved("/v1/{mount}/metadata/", Resolve::VaultMetadata, root_list())
        .resolved(
            "/v1/{mount}/metadata/{*path}",
            Resolve::VaultMetadata,
            get(kv::metadata_get)
                .post(kv::metadata_write)
                .put(kv::metadata_write)
                .delete(kv::metadata_delete)
                .fallback(kv::metadata_list),
        )
        .route(
            "/v1/{mount}/delete/{*path}",
            Action::SecretDelete,
            post(kv::delete_versions).put(kv::delete_versions),
        )
        .route(
            "/v1/{mount}/undelete/{*path}",
            Action::SecretUndelete,
            post(kv::undelete).put(kv::undelete),
        )
        .route(
            "/v1/{mount}/destroy/{*path}",
            Action::SecretDestroy,
            post(kv::destroy).put(kv::destroy),
        )
        .route(
            "/v1/{mount}/subkeys/{*path}",
            Action::SecretSubkeys,
            get(kv::subkeys),
        )
        .route(
            "/v1/{mount}/config",
            Action::KvConfig,
            get(kv::config).post(kv::configure),
        )
        .route(
            "/v1/sys/internal/ui/mounts/{*path}",
            Action::SysMountsLookup,
            get(sys::ui_mount),
        )
        .route("/v1/sys/mounts", Action::SysMounts, get(sys::mounts))
        .route(
            "/v1/auth/token/lookup-self",
            Action::TokenLookupSelf,
            get(sys::lookup_self),
        )
        .map(|router| router.layer(middleware::from_fn(vault_errors)))
}

/// A successful answer in Vault's envelope.
pub(super) fn envelope(request_id: &RequestId, data: Value) -> Response {
    axum::Json(json!({
        "request_id": request_id.0,
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    }))
    .into_response()
}

/// A Vault-shaped error.
pub(super) fn vault_error(status: StatusCode, messages: &[&str]) -> Response {
    (status, axum::Json(json!({ "errors": messages }))).into_response()
}

/// Rewrites coffer's errors (`{"error": {"code", "message"}}`) into
/// Vault's, with Vault's status codes: a missing or refused token is 403
/// `permission denied`, a check-and-set mismatch is 400, a missing path
/// is 404 with no message.
async fn vault_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status().as_u16() < 400 {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return vault_error(parts.status, &["the answer could not be read"]);
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let Some(error) = parsed.as_ref().and_then(|v| v.get("error")) else {
        // Already in Vault's shape (or not JSON): as it was.
        return Response::from_parts(parts, Body::from(bytes));
    };
    let code = error["code"].as_str().unwrap_or_default();
    let message = error["message"].as_str().unwrap_or_default();
    let mut answer = match (parts.status, code) {
        // Refused for the transport, not the token: say so.
        (StatusCode::FORBIDDEN, "sealed_required") => {
            vault_error(StatusCode::FORBIDDEN, &["permission denied", message])
        }
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => {
            vault_error(StatusCode::FORBIDDEN, &["permission denied"])
        }
        (StatusCode::NOT_FOUND, "not_found") => vault_error(StatusCode::NOT_FOUND, &[]),
        (StatusCode::CONFLICT, "conflict") => vault_error(
            StatusCode::BAD_REQUEST,
            &[
                "check-and-set parameter did not match the current version",
                message,
            ],
        ),
        (status, _) => vault_error(status, &[message]),
    };
    // What the audit layer and clients read besides the body stays.
    for name in [header::RETRY_AFTER, header::CACHE_CONTROL] {
        if let Some(value) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer.extensions_mut().extend(parts.extensions);
    answer
}

/// A version list as Vault takes it: numbers, numeric strings, or one
/// comma-separated string.
pub(super) fn versions<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum One {
        Number(u32),
        Text(String),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Many(Vec<One>),
        One(One),
    }
    let parse = |text: &str| -> Result<Vec<u32>, D::Error> {
        text.split(',')
            .map(|part| {
                part.trim().parse::<u32>().map_err(|_| {
                    serde::de::Error::custom(format!("`{part}` is not a version number"))
                })
            })
            .collect()
    };
    let flatten = |one: One| match one {
        One::Number(n) => Ok(vec![n]),
        One::Text(text) => parse(&text),
    };
    match Given::deserialize(deserializer)? {
        Given::One(one) => flatten(one),
        Given::Many(many) => many.into_iter().try_fold(Vec::new(), |mut all, one| {
            all.extend(flatten(one)?);
            Ok(all)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(deserialize_with = "versions")]
        versions: Vec<u32>,
    }

    #[test]
    fn versions_come_as_numbers_strings_or_a_list_of_either() {
        for text in [
            r#"{"versions": [1, 2]}"#,
            r#"{"versions": ["1", "2"]}"#,
            r#"{"versions": "1,2"}"#,
            r#"{"versions": ["1,2"]}"#,
        ] {
            let body: Body = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(body.versions, [1, 2], "{text}");
        }
        assert!(serde_json::from_str::<Body>(r#"{"versions": ["x"]}"#).is_err());
    }
}
