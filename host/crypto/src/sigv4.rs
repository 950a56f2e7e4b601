//! AWS Signature Version 4, for the requests the host sends to AWS on a
//! plugin's behalf: the plugin never sees the credentials, the host signs
//! with the real clock.
//!
//! Only what coffer sends is covered: single-chunk requests with the body
//! hash in the signature, to JSON services that post to `/` (DynamoDB,
//! KMS). A path is canonicalised by encoding each segment of the path as
//! given, as the published signing test suite and botocore do (the wire
//! form of a path is so encoded twice, which is what AWS services other
//! than S3 check). The signature is over the method, the canonical path and
//! query, every header given (names lowercased, values trimmed, sorted),
//! and the SHA-256 of the body.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// AWS credentials. `Debug` shows the access key id only.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    /// For temporary credentials (STS): sent as `X-Amz-Security-Token`.
    pub session_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Where a signature is valid: a region and a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub region: String,
    pub service: String,
}

/// A request to sign. `path` and `query` are as they go on the wire
/// (percent-encoded); `headers` must include `host`.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The headers signing adds: `x-amz-date`, `x-amz-security-token` with
/// temporary credentials, and `authorization`. Their values are
/// credentials (a session token) or made from them: zeroized when dropped,
/// and not shown by `Debug`.
pub struct Signed {
    pub headers: Vec<(&'static str, Zeroizing<String>)>,
    /// The hex signature, for tests.
    pub signature: String,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Signed")
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

/// Signs `request` at `amz_date` (`20150830T123600Z`). The headers given
/// are all signed, with `x-amz-date` (and the session token) added.
pub fn sign(
    request: &Request<'_>,
    scope: &Scope,
    credentials: &Credentials,
    amz_date: &str,
) -> Signed {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), canonical_value(value)))
        .filter(|(name, _)| {
            name != "x-amz-date" && name != "x-amz-security-token" && name != "authorization"
        })
        .collect();
    headers.push(("x-amz-date".to_owned(), amz_date.to_owned()));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.to_string()));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        canonical_path(request.path),
        canonical_query(request.query),
        hex::encode(Sha256::digest(request.body)),
    );
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let secret = Zeroizing::new(format!("AWS4{}", credentials.secret_access_key.as_str()));
    let key = [date, &scope.region, &scope.service, "aws4_request"]
        .iter()
        .fold(Zeroizing::new(secret.as_bytes().to_vec()), |key, part| {
            Zeroizing::new(hmac(&key, part.as_bytes()).to_vec())
        });
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    let mut added = vec![("x-amz-date", Zeroizing::new(amz_date.to_owned()))];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    added.push((
        "authorization",
        Zeroizing::new(format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        )),
    ));
    Signed {
        headers: added,
        signature,
    }
}

/// `20150830T123600Z` for a time in seconds since the Unix epoch.
pub fn amz_date(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let rem = unix_seconds % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A header value trimmed, its inner runs of spaces made one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The path with each segment encoded as it is given: the wire form of a
/// path is encoded a second time, as AWS services other than S3 (and
/// botocore) canonicalise it; an empty path is `/`.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// Query parameters decoded, encoded, and sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (encode(&decode(name)), encode(&decode(value)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-decoding; anything not a valid escape stays as it is.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The credentials, scope and headers of AWS's signing test suite.
    fn suite(method: &str, path: &str, query: &str) -> String {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: Zeroizing::new(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            ),
            session_token: None,
        };
        let scope = Scope {
            region: "us-east-1".to_owned(),
            service: "service".to_owned(),
        };
        let headers = [("Host".to_owned(), "example.amazonaws.com".to_owned())];
        let request = Request {
            method,
            path,
            query,
            headers: &headers,
            body: b"",
        };
        sign(&request, &scope, &credentials, "20150830T123600Z").signature
    }

    #[test]
    fn the_signing_test_suite_holds() {
        assert_eq!(
            suite("GET", "/", ""),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(
            suite("GET", "/", "Param2=value2&Param1=value1"),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
        assert_eq!(
            suite("POST", "/", ""),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        assert_eq!(
            suite("POST", "/", "Param1=value1"),
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
        );
        // The suite's request line carries the path raw: `/example space/`.
        assert_eq!(
            suite("GET", "/example space/", ""),
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"
        );
    }

    #[test]
    fn the_authorization_header_names_scope_and_signed_headers() {
        let credentials = Credentials {
            access_key_id: "AKID".to_owned(),
            secret_access_key: Zeroizing::new("secret".to_owned()),
            session_token: Some(Zeroizing::new("token".to_owned())),
        };
        let scope = Scope {
            region: "eu-west-1".to_owned(),
            service: "dynamodb".to_owned(),
        };
        let headers = [
            (
                "host".to_owned(),
                "dynamodb.eu-west-1.amazonaws.com".to_owned(),
            ),
            (
                "X-Amz-Target".to_owned(),
                "DynamoDB_20120810.GetItem".to_owned(),
            ),
        ];
        let request = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        let signed = sign(&request, &scope, &credentials, "20261202T080000Z");
        let authorization = &signed.headers.last().unwrap().1;
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKID/20261202/eu-west-1/dynamodb/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token;x-amz-target, Signature="
            ),
            "{}",
            authorization.as_str()
        );
        assert!(!format!("{credentials:?}").contains("secret"));
        assert!(!format!("{signed:?}").contains("AWS4-HMAC"), "{signed:?}");
    }

    #[test]
    fn dates_are_formatted_as_aws_wants() {
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
    }
}
