//! `/v1/auth/tokens`: create, list and revoke tokens (`tokens:manage`).

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract::{JsonBody, PathParams};
use super::{ApiError, AppState};
use crate::auth::{Actor, Admin, Policy, Role, Rule, TokenRecord};
use crate::clock::rfc3339;
use crate::error::Error;

/// Longest lifetime a token may be given: ten years.
const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    /// `admin` or `operator`; combined with `rules` and `admin`.
    role: Option<String>,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    admin: BTreeSet<Admin>,
    ttl_seconds: Option<u64>,
}

/// A token as listed: never its hash, never the token.
#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    name: &'a str,
    policy: &'a Policy,
    created_at: String,
    expires_at: Option<String>,
    /// The id of the token that created it; none for the root token.
    created_by: Option<&'a str>,
}

impl<'a> From<&'a TokenRecord> for Listed<'a> {
    fn from(record: &'a TokenRecord) -> Self {
        Listed {
            id: &record.id,
            name: &record.name,
            policy: &record.policy,
            created_at: rfc3339(record.created_at_ms),
            expires_at: record.expires_at_ms.map(rfc3339),
            created_by: record.parent.as_deref().and_then(|hash| hash.get(..16)),
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    let mut policy = match body.role.as_deref() {
        Some(role) => role
            .parse::<Role>()
            .map_err(ApiError::bad_request)?
            .policy(),
        None => Policy::default(),
    };
    policy.rules.extend(body.rules);
    policy.admin.extend(body.admin);
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
    let mut answer = serde_json::to_value(Listed::from(&new.record))
        .map_err(|e| Error::Internal(e.to_string()))?;
    answer["token"] = Value::String(new.token.as_str().to_owned());
    Ok(Json(answer))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, ApiError> {
    let records = state.auth.list(&actor).await?;
    let listed: Vec<Listed> = records.iter().map(Listed::from).collect();
    Ok(Json(json!({ "tokens": listed })))
}

pub async fn revoke(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let record = state.auth.revoke(&id, &actor).await?;
    tracing::info!(token_id = %record.id, by = %actor.token_id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
