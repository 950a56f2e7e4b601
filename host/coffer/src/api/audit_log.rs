//! `/v1/audit` (`audit:read`): read this node's records, verify the
//! chain, and find the HMAC a sensitive string appears as.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::extract::{JsonBody, QueryParams};
use super::{ApiError, AppState};
use crate::audit::record::Record;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// A sequence number, or a time (`2026-11-23T10:00:00Z`): records from then on.
    since: Option<String>,
    /// A token id or name.
    actor: Option<String>,
    namespace: Option<String>,
    action: Option<String>,
    limit: Option<usize>,
}

/// Records of this node's audit log that match the filters, oldest first.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    summary = "This node's audit records that match, oldest first (`audit:read`)",
    params(AuditQuery),
    responses((status = 200, description = "The records", body = Object)),
)]
pub async fn read(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let since_seq = query.since.as_deref().and_then(|s| s.parse::<u64>().ok());
    let matches = |record: &Record| {
        let e = &record.entry;
        let since = match (&query.since, since_seq) {
            (_, Some(seq)) => record.seq >= seq,
            (Some(time), None) => e.time.as_str() >= time.as_str(),
            (None, None) => true,
        };
        since
            && query
                .actor
                .as_ref()
                .is_none_or(|a| e.actor_id.as_ref() == Some(a) || e.actor_name.as_ref() == Some(a))
            && query
                .namespace
                .as_ref()
                .is_none_or(|n| e.namespace.as_ref() == Some(n))
            && query.action.as_ref().is_none_or(|a| &e.action == a)
    };
    let files = state.audit.files();
    let records = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            found.extend(
                text.lines()
                    .filter_map(|line| serde_json::from_str::<Record>(line).ok()),
            );
        }
        found
    })
    .await
    .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    let selected: Vec<&Record> = records.iter().filter(|r| matches(r)).take(limit).collect();
    Ok(Json(json!({ "records": selected })))
}

/// Verifies this node's audit log against the chain key and the
/// checkpoint in storage.
#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    tag = "audit",
    summary = "Verify this node's audit chain (`audit:read`)",
    responses((status = 200, description = "Whether the chain is intact, or where it breaks", body = Object)),
)]
pub async fn verify(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let files: Vec<String> = state
        .audit
        .files()
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    Ok(Json(match state.audit.verify().await? {
        Ok(report) => json!({
            "intact": true,
            "files": files,
            "records": report.records,
            "head": report.head,
            "torn_tail": report.torn_tail,
        }),
        Err(broken) => json!({
            "intact": false,
            "files": files,
            "break": {
                "file": broken.file,
                "line": broken.line,
                "reason": broken.reason,
            },
        }),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HashBody {
    value: String,
}

/// The HMAC a sensitive string appears as in audit records.
#[utoipa::path(
    post,
    path = "/v1/audit/hash",
    tag = "audit",
    summary = "The HMAC a sensitive string appears as in records (`audit:read`)",
    request_body = HashBody,
    responses((status = 200, description = "The HMAC", body = Object)),
)]
pub async fn hash(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<HashBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "hash": state.audit.hash(&body.value) })))
}
