//! AWS's JSON protocols (DynamoDB, KMS, …) over the host's `http`
//! capability: one operation is a `POST /` naming itself in
//! `X-Amz-Target`; the host signs it with SigV4. A failure comes back as a
//! [`Fault`] naming AWS's error type, which [`Fault::error`] turns into the
//! contract's error the usual way.
//!
//! ```ignore
//! use coffer_sdk::aws::{self, Service};
//!
//! const KMS: Service = Service {
//!     name: "KMS",
//!     target_prefix: "TrentService",
//!     content_type: "application/x-amz-json-1.1",
//! };
//! let answer = aws::call(&KMS, "DescribeKey", &serde_json::json!({ "KeyId": "alias/coffer" }))
//!     .map_err(|failure| failure.error(&[]))?;
//! ```

use crate::Error;
use crate::http::{self, Value};

/// An AWS service spoken to over its JSON protocol.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    /// Its name in messages (`DynamoDB`).
    pub name: &'static str,
    /// What `X-Amz-Target` starts with (`DynamoDB_20120810`).
    pub target_prefix: &'static str,
    /// Its JSON content type (`application/x-amz-json-1.0`).
    pub content_type: &'static str,
}

/// A call that failed.
#[derive(Debug)]
pub enum Failure {
    /// The host could not make the call (the origin is down, the grant
    /// refuses it, the deadline passed).
    Host(Error),
    /// AWS answered with an error.
    Fault(Fault),
}

/// An error answer from AWS.
#[derive(Debug)]
pub struct Fault {
    /// The HTTP status.
    pub status: u16,
    /// The error type without its namespace (`ThrottlingException`); empty
    /// when the answer named none.
    pub kind: String,
    /// The answer as JSON (`Value::Null` when it was not JSON).
    pub answer: Value,
    /// `<service> <operation>: <type>: <message>`, for errors.
    pub detail: String,
}

/// Error types that say AWS did nothing and a later try may pass.
const THROTTLED: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

/// Error types that say the credentials or their rights are wrong.
const REFUSED: &[&str] = &[
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncorrectSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
];

impl Fault {
    /// Whether AWS refused the call for its rate: it did nothing, and a
    /// later try may pass.
    pub fn throttled(&self) -> bool {
        THROTTLED.contains(&self.kind.as_str()) || self.status == 429
    }

    /// The contract's error for this fault: `unavailable` when throttled,
    /// a server error, or one of `retried` (the service's own transient
    /// types); `denied` for refused credentials; `not-found` for
    /// `NotFoundException` and `ResourceNotFoundException`; `invalid` for
    /// `ValidationException`; else `internal`.
    pub fn error(&self, retried: &[&str]) -> Error {
        let detail = self.detail.clone();
        match self.kind.as_str() {
            "NotFoundException" | "ResourceNotFoundException" => Error::NotFound,
            _ if self.throttled() || self.status >= 500 => Error::Unavailable(detail),
            kind if retried.contains(&kind) => Error::Unavailable(detail),
            kind if REFUSED.contains(&kind) || self.status == 401 || self.status == 403 => {
                Error::Denied(detail)
            }
            "ValidationException" => Error::Invalid(detail),
            _ => Error::Internal(detail),
        }
    }
}

impl Failure {
    /// The contract's error for this failure (see [`Fault::error`]).
    pub fn error(self, retried: &[&str]) -> Error {
        match self {
            Failure::Host(error) => error,
            Failure::Fault(fault) => fault.error(retried),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Host(error)
    }
}

/// Calls `operation` of `service` with `body`, once; returns the answer.
pub fn call(service: &Service, operation: &str, body: &Value) -> Result<Value, Failure> {
    let reply = http::post("/")
        .header("content-type", service.content_type)
        .header(
            "x-amz-target",
            format!("{}.{operation}", service.target_prefix),
        )
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
        .unwrap_or("");
    let detail = if kind.is_empty() {
        format!("{} {operation}: {}", service.name, reply.error())
    } else {
        format!("{} {operation}: {kind}: {message}", service.name)
    };
    Err(Failure::Fault(Fault {
        status: reply.status(),
        kind,
        answer,
        detail,
    }))
}
