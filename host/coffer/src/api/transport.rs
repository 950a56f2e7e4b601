//! The sealed transport at the API's edge ([`crate::sealing`]).
//!
//! The guard calls [`admit`] once the token is checked and before the
//! change is recorded: a sealed write's body is opened there and replaced
//! by the plain body it carries, so the write handler is the same for
//! both; a read asking for a sealed answer (`Coffer-Seal-To`) gets a
//! [`SealTo`] for the read handler. Where values must cross the wire
//! sealed, plaintext writes and reads — and the Vault-compatible API,
//! which has no sealed form — are refused here, before anything runs.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::action::{Action, Resolve, Target};
use super::secrets::WriteBody;
use super::{ApiError, AppState};
use crate::auth::Actor;
use crate::sealing::replay::Refusal;
use crate::sealing::{SealError, SealedRequest, TransportKeys, parse_client_key};
use crate::secrets::{check_namespace, check_new_name};
use coffer_crypto::sealing::SEAL_TO_HEADER;

/// A read's one-time client key: a request extension.
#[derive(Clone, Copy)]
pub struct SealTo(pub [u8; coffer_crypto::sealing::KEY_LEN]);

/// The request's value crossed the wire sealed: a response extension, for
/// its audit record.
#[derive(Clone, Copy, Debug)]
pub struct Sealed;

/// Extra room a sealed body takes over the plain one: base64 (4/3) and
/// the envelope's fields.
fn sealed_body_limit(plain_limit: usize) -> usize {
    plain_limit
        .saturating_mul(4)
        .div_euclid(3)
        .saturating_add(1024)
}

/// The path a seal about `target` is bound to.
pub fn bound_path(target: &Target) -> String {
    coffer_crypto::sealing::secret_path(target.namespace(), target.name())
}

/// Lets `request` through as the handler should see it, and says whether
/// its value travels sealed; refuses what the sealed transport forbids.
pub async fn admit(
    state: &AppState,
    resolve: Resolve,
    target: &Target,
    actor: Option<&Actor>,
    request: Request,
) -> Result<(Request, bool), ApiError> {
    let native = matches!(resolve, Resolve::NativeSecret);
    let required = || state.transport.required(actor, target.namespace());
    match target.action {
        Action::SecretWrite if native => open_write(state, target, request, required()).await,
        Action::SecretRead if native => read_sealed(request, required()),
        Action::SecretRead | Action::SecretWrite | Action::SecretSubkeys if required() => {
            Err(plaintext_refused(
                "the Vault-compatible API carries values in plaintext; use /v1/secrets with \
                 the sealed transport",
            ))
        }
        _ => Ok((request, false)),
    }
}

/// A write: opens a sealed body into the plain one; a plain body passes
/// unless sealing is required.
async fn open_write(
    state: &AppState,
    target: &Target,
    request: Request,
    required: bool,
) -> Result<(Request, bool), ApiError> {
    let (parts, body) = request.into_parts();
    let limit = sealed_body_limit(super::body_limit(state.secrets.max_value_bytes()));
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|error| {
        if error.into_inner().is::<http_body_util::LengthLimitError>() {
            super::extract::too_large()
        } else {
            ApiError::bad_request("the request body could not be read whole")
        }
    })?;
    if !is_sealed(&bytes) {
        if required {
            return Err(plaintext_refused(
                "values written here must be sealed to the server's transport key \
                 (GET /v1/sys/transport-key)",
            ));
        }
        return Ok((Request::from_parts(parts, Body::from(bytes)), false));
    }
    // The name is checked before anything is opened for it: a seal is
    // bound to the path only as the route decoded it.
    check_namespace(target.namespace())?;
    check_new_name(target.name())?;
    let sealed: SealedRequest = serde_json::from_slice(&bytes).map_err(|_| {
        invalid(
            "a sealed body is {\"sealed\": {\"kid\", \"enc\", \"ciphertext\", \"timestamp\"}} \
             and nothing else",
        )
    })?;
    let plain = state
        .transport
        .open(parts.method.as_str(), &bound_path(target), &sealed.sealed)
        .await
        .map_err(refused)?;
    // What is wrong with a sealed body stays sealed: serde's message would
    // quote the value.
    if serde_json::from_slice::<WriteBody>(&plain).is_err() {
        return Err(invalid(
            "the sealed body opened, but is not a write: {\"value\": string, \"cas\": number}",
        ));
    }
    // The handler reads the plain body as it reads any other.
    let body = Body::from(plain.to_vec());
    Ok((Request::from_parts(parts, body), true))
}

/// Whether a body is a sealed envelope: a JSON object with a `sealed` key.
/// Anything else is left to the handler, which says what is wrong with it.
fn is_sealed(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        sealed: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|probe| probe.sealed.is_some())
}

/// A read: takes the client's one-time key, if it sent one.
fn read_sealed(mut request: Request, required: bool) -> Result<(Request, bool), ApiError> {
    let Some(header) = request.headers().get(SEAL_TO_HEADER) else {
        if required {
            return Err(plaintext_refused(
                "values read here are only sent sealed: send a one-time X25519 public key in \
                 Coffer-Seal-To",
            ));
        }
        return Ok((request, false));
    };
    let key = header
        .to_str()
        .map_err(|_| invalid("Coffer-Seal-To is not text"))
        .and_then(|text| parse_client_key(text).map_err(refused))?;
    request.extensions_mut().insert(SealTo(key));
    Ok((request, true))
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "seal_invalid", message)
}

fn plaintext_refused(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "sealed_required", message)
}

/// The answer to a refused sealed request.
fn refused(error: SealError) -> ApiError {
    match error {
        SealError::Invalid(message) => invalid(&message),
        SealError::UnknownKey(message) => {
            ApiError::new(StatusCode::BAD_REQUEST, "seal_unknown_key", message)
        }
        SealError::Refused(Refusal::Stale) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "seal_stale",
            "the sealed body's timestamp is too far from the server's clock: seal it again now",
        ),
        SealError::Refused(Refusal::Replayed) => ApiError::new(
            StatusCode::CONFLICT,
            "seal_replayed",
            "this sealed body was already used: seal each request afresh",
        ),
        SealError::Refused(Refusal::Busy) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "seal_busy",
            "too many sealed requests within the replay window; retry shortly",
        ),
        SealError::Engine(error) => error.into(),
    }
}

#[utoipa::path(
    get,
    path = "/v1/sys/transport-key",
    tag = "sys",
    summary = "The transport key to seal requests to (any valid token)",
    responses((status = 200, description = "The current key and the replaced keys still accepted", body = TransportKeys)),
)]
pub async fn transport_key(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.transport.published().await?).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/sys/transport-key/rotate",
    tag = "sys",
    summary = "Make a new transport key current (`keys:manage`)",
    responses((status = 200, description = "The new key and the replaced keys still accepted", body = TransportKeys)),
)]
pub async fn rotate(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.transport.rotate().await?).into_response())
}
