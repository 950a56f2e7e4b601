//! DynamoDB's JSON protocol over the host's `http` capability (the host
//! signs every request with SigV4; this plugin never sees a credential).
//!
//! Reads are retried with jittered backoff on any transient failure. A
//! write is retried only when DynamoDB refused it for its rate, which
//! guarantees it did nothing: after a server error or a lost answer the
//! write may have landed, and a retry would fail its own condition and
//! report a conflict (or a missing key) for a write that succeeded; those
//! are reported as `unavailable` and left to the host.

use coffer_sdk::Error;
use coffer_sdk::aws::{self, Service};
use coffer_sdk::http::{self, Retries, Value};

const DYNAMODB: Service = Service {
    name: "DynamoDB",
    target_prefix: "DynamoDB_20120810",
    content_type: "application/x-amz-json-1.0",
};

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

/// DynamoDB's transient error types beyond throttling.
const TRANSIENT: &[&str] = &["InternalServerError", "ServiceUnavailable"];

/// Operations that change nothing, safe to send again.
const READS: &[&str] = &["GetItem", "BatchGetItem", "Query", "DescribeTable"];

const RETRIES: Retries = Retries {
    attempts: 5,
    first_wait: std::time::Duration::from_millis(25),
    max_wait: std::time::Duration::from_secs(1),
};

/// Calls operation `op` with `body`; returns the answer's JSON.
pub fn call(op: &str, body: &Value) -> Result<Value, Failure> {
    let read = READS.contains(&op);
    http::with_retries(
        RETRIES,
        |failure: &aws::Failure| match failure {
            aws::Failure::Fault(fault) if fault.throttled() => true,
            failure if read => matches!(transient_error(failure), Error::Unavailable(_)),
            _ => false,
        },
        || aws::call(&DYNAMODB, op, body),
    )
    .map_err(|failure| match failure {
        aws::Failure::Fault(fault) if fault.kind == "ConditionalCheckFailedException" => {
            Failure::Condition(fault.answer.get("Item").cloned())
        }
        aws::Failure::Fault(fault) if fault.kind == "ResourceNotFoundException" => Failure::NoTable,
        failure => Failure::Other(failure.error(TRANSIENT)),
    })
}

/// The contract's error of `failure`, to tell transient ones apart.
fn transient_error(failure: &aws::Failure) -> Error {
    match failure {
        aws::Failure::Host(error) => error.clone(),
        aws::Failure::Fault(fault) => fault.error(TRANSIENT),
    }
}
