//! `/v1/auth/tokens`: create, list and revoke tokens (`tokens:manage`).

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{JsonBody, PathParams};
use super::{ApiError, AppState};
use crate::auth::{Actor, Admin, Policy, Role, Rule, TokenRecord};
use crate::clock::rfc3339;

/// Longest lifetime a token may be given: ten years.
const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A token to create: a role, rules and administrative capabilities,
/// combined; at most the creator's own rights.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Shown in listings and audit records: up to 128 characters, no
    /// control characters.
    #[schema(min_length = 1, max_length = 128)]
    name: String,
    /// `admin` or `operator`; combined with `rules` and `admin`.
    #[schema(pattern = "^(admin|operator)$")]
    role: Option<String>,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    admin: BTreeSet<Admin>,
    /// Values this token writes and reads must cross the wire sealed.
    #[serde(default)]
    require_sealed: bool,
    /// Lifetime; none for a token that does not expire.
    #[schema(minimum = 1, maximum = 315_359_999)]
    ttl_seconds: Option<u64>,
}

/// A token as listed: never its hash, never the token.
#[derive(Serialize, ToSchema)]
pub struct TokenView<'a> {
    id: &'a str,
    name: &'a str,
    policy: &'a Policy,
    created_at: String,
    expires_at: Option<String>,
    /// The id of the token that created it; none for the root token.
    created_by: Option<&'a str>,
}

impl<'a> From<&'a TokenRecord> for TokenView<'a> {
    fn from(record: &'a TokenRecord) -> Self {
        TokenView {
            id: &record.id,
            name: &record.name,
            policy: &record.policy,
            created_at: rfc3339(record.created_at_ms),
            expires_at: record.expires_at_ms.map(rfc3339),
            created_by: record.parent.as_deref().and_then(|hash| hash.get(..16)),
        }
    }
}

/// A token just created: the only time the token itself is shown.
#[derive(Serialize, ToSchema)]
pub struct Created<'a> {
    #[serde(flatten)]
    listed: TokenView<'a>,
    token: &'a str,
}

/// The tokens the caller may see.
#[derive(Serialize, ToSchema)]
pub struct TokenList<'a> {
    tokens: Vec<TokenView<'a>>,
}

#[utoipa::path(
    post,
    path = "/v1/auth/tokens",
    tag = "tokens",
    summary = "Create a token (`tokens:manage`)",
    request_body = CreateBody,
    responses((status = 200, description = "The token, shown once", body = Created)),
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let mut policy = match body.role.as_deref() {
        Some(role) => role
            .parse::<Role>()
            .map_err(ApiError::bad_request)?
            .policy(),
        None => Policy::default(),
    };
    policy.rules.extend(body.rules);
    policy.admin.extend(body.admin);
    // A token bound to sealed transport mints only tokens bound to it.
    policy.require_sealed = body.require_sealed || actor.policy.require_sealed;
    if !actor.policy.covers(&policy) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a token may only create tokens with at most its own rights",
        ));
    }
    let ttl = match body.ttl_seconds {
        Some(0) | Some(MAX_TTL_SECONDS..) => {
            return Err(ApiError::bad_request(format!(
                "ttl_seconds must be between 1 and {}",
                MAX_TTL_SECONDS - 1
            )));
        }
        other => other.map(Duration::from_secs),
    };
    let new = state
        .auth
        .create(&body.name, policy, ttl, Some(&actor))
        .await?;
    tracing::info!(token_id = %new.record.id, by = %actor.token_id, "token created");
    Ok(Json(Created {
        listed: TokenView::from(&new.record),
        token: new.token.as_str(),
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/auth/tokens",
    tag = "tokens",
    summary = "List tokens (`tokens:manage`)",
    responses((status = 200, description = "The tokens", body = TokenList)),
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Response, ApiError> {
    let records = state.auth.list(&actor).await?;
    let tokens: Vec<TokenView> = records.iter().map(TokenView::from).collect();
    Ok(Json(TokenList { tokens }).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/auth/tokens/{id}",
    tag = "tokens",
    summary = "Revoke a token and the tokens it created (`tokens:manage`)",
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 204, description = "Revoked")),
)]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let record = state.auth.revoke(&id, &actor).await?;
    tracing::info!(token_id = %record.id, by = %actor.token_id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
