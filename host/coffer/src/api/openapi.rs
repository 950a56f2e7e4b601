//! The OpenAPI 3.1 description of the native API, served at
//! `/v1/sys/openapi.json`. It is generated from the handlers' own request
//! and answer types and their `#[utoipa::path]` attributes; every
//! operation answers errors in the one shape of [`ErrorBody`].

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::{audit_log, keys, lifecycle, secrets, sys, tokens, transport};
use crate::sealing::SealedRequest;

/// A namespace in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NamespacePath {
    /// The namespace: letters, digits, `_`, `.` and `-`.
    #[allow(dead_code)]
    #[param(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    namespace: String,
}

/// A secret in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SecretPath {
    /// The namespace: letters, digits, `_`, `.` and `-`.
    #[allow(dead_code)]
    #[param(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    namespace: String,
    /// The secret's name: `/`-separated segments, none empty, `.` or `..`,
    /// no control characters (percent-encode the slashes in a single path
    /// parameter).
    #[allow(dead_code)]
    #[param(min_length = 1, max_length = 512)]
    name: String,
}

/// A data key in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// The namespace: letters, digits, `_`, `.` and `-`.
    #[allow(dead_code)]
    #[param(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    namespace: String,
    /// The key's id in the namespace.
    #[allow(dead_code)]
    #[param(minimum = 1)]
    id: u32,
}

/// Every error, on every route.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `payload_too_large`, `timeout`, `audit_unavailable`, ….
    code: String,
    /// What went wrong and what to do, for people.
    message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "coffer",
        description = "The native API of coffer, a secrets engine. Every request but the \
                       sys health endpoints and this document takes a token \
                       (`Authorization: Bearer …`) whose policy allows it."
    ),
    paths(
        secrets::list,
        secrets::read,
        secrets::write,
        secrets::delete_latest,
        lifecycle::metadata,
        lifecycle::set_metadata,
        lifecycle::purge,
        lifecycle::undelete,
        lifecycle::destroy,
        tokens::create,
        tokens::list,
        tokens::revoke,
        keys::list,
        keys::show,
        keys::rotate,
        keys::reencrypt,
        keys::import,
        keys::deprecate,
        keys::inactivate,
        keys::destroy,
        keys::export,
        keys::kek_status,
        keys::kek_rotate,
        keys::kek_rewrap,
        keys::kek_reload,
        keys::run_janitor,
        transport::transport_key,
        transport::rotate,
        audit_log::read,
        audit_log::verify,
        audit_log::hash,
        sys::health,
        sys::live,
        sys::ready,
        sys::plugins,
        sys::reload_plugins,
        sys::migration,
        sys::start_migration,
        sys::metrics,
        sys::openapi,
    ),
    components(schemas(ErrorBody, ErrorDetail, SealedRequest)),
    modifiers(&Conventions),
    security(("token" = [])),
    tags(
        (name = "secrets", description = "Secrets and their versions"),
        (name = "tokens", description = "Tokens and their policies"),
        (name = "keys", description = "Data keys and the KEK"),
        (name = "audit", description = "The audit trail"),
        (name = "sys", description = "Health, plugins, metrics, migration"),
    )
)]
struct NativeApi;

/// What every operation shares: the bearer token scheme, and errors
/// answered as [`ErrorBody`] whatever their status.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let error: RefOr<Response> = ResponseBuilder::new()
            .description("An error")
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
            .into();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                // Function names repeat across modules; with the tag they
                // do not.
                if let (Some(tag), Some(id)) = (
                    operation.tags.as_ref().and_then(|tags| tags.first()),
                    operation.operation_id.as_ref(),
                ) {
                    operation.operation_id = Some(format!("{tag}.{id}"));
                }
                operation
                    .responses
                    .responses
                    .insert("default".to_owned(), error.clone());
            }
        }
    }
}

/// The document, rendered once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        NativeApi::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot render: {e}\"}}"))
    })
}
