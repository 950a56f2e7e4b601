//! DynamoDB's JSON protocol over the host's `http` capability (the host
//! signs every request with SigV4; this plugin never sees a credential).
//! Throttling and server errors are retried with jittered backoff, then
//! reported as `unavailable`.

use coffer_sdk::Error;
use coffer_sdk::http::{self, Retries, Value};

/// Why a call failed.
pub enum Failure {
    /// A condition expression did not hold; the item as it was, when asked
    /// for and present.
    Condition(Option<Value>),
    /// The table does not exist.
    NoTable,
    Other(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Other(error)
    }
}

/// Error types worth another try.
const RETRIED: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
];

const RETRIES: Retries = Retries {
    attempts: 5,
    first_wait: std::time::Duration::from_millis(25),
    max_wait: std::time::Duration::from_secs(1),
};

/// Calls operation `op` with `body`; returns the answer's JSON.
pub fn call(op: &str, body: &Value) -> Result<Value, Failure> {
    http::with_retries(
        RETRIES,
        |failure| matches!(failure, Failure::Other(Error::Unavailable(_))),
        || once(op, body),
    )
}

fn once(op: &str, body: &Value) -> Result<Value, Failure> {
    let reply = http::post("/")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
        .json(body)
        .send()?;
    if reply.is_success() {
        return Ok(reply.json()?);
    }
    let answer = reply.json().unwrap_or(Value::Null);
    let kind = answer["__type"]
        .as_str()
        .and_then(|t| t.rsplit('#').next())
        .unwrap_or("")
        .to_owned();
    let message = answer["message"]
        .as_str()
        .or_else(|| answer["Message"].as_str())
        .unwrap_or("")
        .to_owned();
    let detail = if kind.is_empty() {
        format!("DynamoDB {op}: {}", reply.error())
    } else {
        format!("DynamoDB {op}: {kind}: {message}")
    };
    Err(match kind.as_str() {
        "ConditionalCheckFailedException" => Failure::Condition(answer.get("Item").cloned()),
        "ResourceNotFoundException" => Failure::NoTable,
        k if RETRIED.contains(&k) || reply.status() >= 500 => {
            Failure::Other(Error::Unavailable(detail))
        }
        _ if reply.status() == 403 => Failure::Other(Error::Denied(detail)),
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationTokenException" => Failure::Other(Error::Denied(detail)),
        "ValidationException" => Failure::Other(Error::Invalid(detail)),
        _ => Failure::Other(Error::Internal(detail)),
    })
}
