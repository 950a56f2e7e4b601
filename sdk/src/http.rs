//! Requests to the one origin the host grants this plugin
//! (`[<section>.http]`). The plugin gives a path, headers and a body; the
//! host adds the origin and the credentials (a SigV4 signature, a Vault
//! token), which the plugin never sees, and hands back the response.
//!
//! ```ignore
//! use coffer_sdk::http;
//!
//! let reply = http::post("/v1/transit/encrypt/coffer")
//!     .json(&serde_json::json!({ "plaintext": "..." }))
//!     .send()?;
//! let body = reply.ok_json()?;
//! ```
//!
//! The host retries nothing: [`with_retries`] retries what the plugin says
//! may be retried, with jittered exponential backoff.

use std::time::Duration;

use crate::Error;
use crate::bindings::storage_world::coffer::plugin::http as wit;

pub use serde_json::{Value, from_slice, json};
pub use wit::Method;

/// A request being built.
#[must_use = "a request does nothing until it is sent"]
pub struct Request(wit::Request);

/// A `GET` of `path` (with its query), percent-encoded as it goes on the wire.
pub fn get(path: impl Into<String>) -> Request {
    Request::new(Method::Get, path)
}

/// A `POST` of `path`.
pub fn post(path: impl Into<String>) -> Request {
    Request::new(Method::Post, path)
}

/// A `PUT` of `path`.
pub fn put(path: impl Into<String>) -> Request {
    Request::new(Method::Put, path)
}

/// A `DELETE` of `path`.
pub fn delete(path: impl Into<String>) -> Request {
    Request::new(Method::Delete, path)
}

impl Request {
    /// A request of `method` for `path` (with its query).
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        Request(wit::Request {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// Adds a header. The host refuses `host`, and drops credentials
    /// headers (it sets its own).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.0.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.0.body = body.into();
        self
    }

    /// A JSON body, with `content-type: application/json` unless another
    /// content type was set.
    pub fn json(mut self, value: &Value) -> Request {
        if !self
            .0
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            self = self.header("content-type", "application/json");
        }
        self.0.body = value.to_string().into_bytes();
        self
    }

    /// Sends the request through the host. An error means no response
    /// came (`unavailable`) or the host refused the request (`denied`,
    /// `invalid`); any HTTP status is a [`Reply`].
    pub fn send(&self) -> Result<Reply, Error> {
        wit::send(&self.0).map(Reply)
    }
}

/// A response, whatever its status.
pub struct Reply(wit::Response);

impl Reply {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.0.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.0.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as received (the host caps its size).
    pub fn body(&self) -> &[u8] {
        &self.0.body
    }

    /// The body as JSON; an empty body is `null`.
    pub fn json(&self) -> Result<Value, Error> {
        if self.0.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.0.body).map_err(|e| {
            Error::Internal(format!(
                "HTTP {}: the response is not JSON: {e}",
                self.0.status
            ))
        })
    }

    /// The body as JSON if the status is 2xx; otherwise an error naming the
    /// status and the start of the body.
    pub fn ok_json(&self) -> Result<Value, Error> {
        if self.is_success() {
            self.json()
        } else {
            Err(self.error())
        }
    }

    /// The error this response stands for: `not-found` on 404, `denied` on
    /// 401 and 403, `unavailable` on 429 and 5xx, else `internal`; the
    /// message holds the status and the start of the body.
    pub fn error(&self) -> Error {
        let detail = format!("HTTP {}: {}", self.0.status, self.snippet());
        match self.0.status {
            404 => Error::NotFound,
            401 | 403 => Error::Denied(detail),
            429 | 500..=599 => Error::Unavailable(detail),
            _ => Error::Internal(detail),
        }
    }

    /// The start of the body as text, for messages.
    pub fn snippet(&self) -> String {
        const SHOWN: usize = 300;
        let text = String::from_utf8_lossy(&self.0.body);
        let mut end = text.len().min(SHOWN);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].trim().to_owned()
    }
}

/// How [`with_retries`] retries.
#[derive(Clone, Copy, Debug)]
pub struct Retries {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before the second try; doubled before each later one.
    pub first_wait: Duration,
    /// Longest wait between two tries.
    pub max_wait: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            attempts: 4,
            first_wait: Duration::from_millis(50),
            max_wait: Duration::from_secs(1),
        }
    }
}

/// Runs `attempt` until it succeeds, fails with an error `retry` does not
/// accept, or has been tried `retries.attempts` times; waits a random time
/// up to the backoff between tries ("full jitter").
pub fn with_retries<T, E>(
    retries: Retries,
    retry: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut wait = retries.first_wait;
    let mut tries = 1;
    loop {
        match attempt() {
            Err(error) if tries < retries.attempts && retry(&error) => {
                std::thread::sleep(jitter(wait));
                wait = (wait * 2).min(retries.max_wait);
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A random duration up to `up_to`.
fn jitter(up_to: Duration) -> Duration {
    let nanos = u64::try_from(up_to.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(crate::random::u64() % nanos)
}

/// `text` percent-encoded for a path segment or a query value: letters,
/// digits and `-._~` stay, every other byte becomes `%XX`.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_only_unreserved_bytes() {
        assert_eq!(encode("a b/c~é"), "a%20b%2Fc~%C3%A9");
    }
}
