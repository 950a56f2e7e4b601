//! What a plugin's request may carry. The path stays on the granted origin
//! (no scheme, no authority, no `.`/`..` or empty segment, raw or encoded,
//! no backslash or control character), within the grant's path prefixes
//! when it has some, and out of the paths the host keeps for itself (a
//! Vault token's own endpoints); a `host` header is refused; the
//! credentials headers the host sets, the headers that would route a
//! request elsewhere (`X-Vault-Namespace`, `X-Forwarded-*`, every
//! `X-Amz-*` but the operation) and hop-by-hop headers are dropped; a
//! header may be given once, and a request carries at most
//! [`MAX_HEADERS`] headers of at most [`MAX_HEADER_BYTES`] in all (the
//! checks run on the host's threads, outside the plugin's CPU budget); an
//! allow-list of operations, where the grant has one, is checked against
//! `X-Amz-Target`.

use crate::bindings::http::Request;
use crate::bindings::types::Error as WitError;

/// Headers that describe one connection, not the request: never passed on.
pub(super) const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
];

/// Credentials headers only the host sets.
const CREDENTIALS: &[&str] = &["authorization", "cookie", "forwarded"];

/// Header families the host owns: AWS's signing and security headers and
/// Vault's token, namespace, wrapping and forwarding controls.
const OWNED_PREFIXES: &[&str] = &["x-amz-", "x-vault-", "x-forwarded-"];

/// Headers of those families a plugin may set: the AWS operation, and the
/// header Vault wants on every API request.
const OWNED_BUT_ALLOWED: &[&str] = &["x-amz-target", "x-vault-request"];

/// Most headers one request may carry.
pub(super) const MAX_HEADERS: usize = 64;
/// Most bytes of header names and values one request may carry.
pub(super) const MAX_HEADER_BYTES: usize = 16 << 10;
/// Longest path and query.
pub(super) const MAX_PATH_BYTES: usize = 8 << 10;

/// Whether the host drops `name` (lowercase) from a plugin's request.
fn dropped(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
        || CREDENTIALS.contains(&name)
        || (OWNED_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
            && !OWNED_BUT_ALLOWED.contains(&name))
}

/// A request that passed the checks: its headers, lowercased and filtered.
pub(super) struct Checked {
    pub headers: Vec<(String, String)>,
}

/// What a grant allows beyond the origin.
#[derive(Debug, Default)]
pub(super) struct Rules {
    /// Operations (`X-Amz-Target`) that may be sent, when listed.
    pub actions: Option<Vec<String>>,
    /// Path prefixes requests must fall under, when listed; compared with
    /// the decoded path, case and all.
    pub paths: Option<Vec<String>>,
    /// Path prefixes the host keeps for itself (lowercase, decoded).
    pub reserved: &'static [&'static str],
}

/// A Vault token's own endpoints: `auth/token/lookup-self` shows the token,
/// `auth/token/create` mints more, `sys/wrapping` unwraps secrets; only the
/// host talks to them.
pub(super) const VAULT_RESERVED: &[&str] = &["/v1/auth/", "/v1/sys/"];

fn denied(why: &str) -> WitError {
    WitError::Denied(why.to_owned())
}

/// Checks `request` against the origin's `rules`.
pub(super) fn check(request: &Request, rules: &Rules) -> Result<Checked, WitError> {
    if request.path.len() > MAX_PATH_BYTES {
        return Err(denied("the path is too long"));
    }
    if request.headers.len() > MAX_HEADERS
        || request
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum::<usize>()
            > MAX_HEADER_BYTES
    {
        return Err(denied("the request carries too many headers"));
    }
    check_path(&request.path)?;
    let path = decoded_path(&request.path);
    let lowered = path.to_ascii_lowercase();
    if rules
        .reserved
        .iter()
        .any(|prefix| lowered.starts_with(prefix))
    {
        return Err(denied("the path is one the host keeps for its credentials"));
    }
    if let Some(paths) = &rules.paths
        && !paths.iter().any(|prefix| path.starts_with(prefix.as_str()))
    {
        return Err(denied("the path is outside the grant's paths"));
    }
    let mut headers = Vec::with_capacity(request.headers.len());
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(denied("a header name is not a token"));
        }
        if !value
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        {
            return Err(denied(
                "a header value holds a control or non-ASCII character",
            ));
        }
        if name == "host" || name.starts_with(':') {
            return Err(denied("the host is the grant's, not the plugin's"));
        }
        if dropped(&name) {
            continue;
        }
        if headers.iter().any(|(seen, _)| *seen == name) {
            // One value per name: what is checked (and signed) is what the
            // origin acts on.
            return Err(denied("a header is given twice"));
        }
        headers.push((name, value.clone()));
    }
    if let Some(actions) = &rules.actions {
        let target = headers
            .iter()
            .find(|(name, _)| name == "x-amz-target")
            .map(|(_, value)| value.as_str());
        if !target.is_some_and(|target| actions.iter().any(|a| a == target)) {
            return Err(denied(
                "the grant's allow-list of operations does not name this one",
            ));
        }
    }
    Ok(Checked { headers })
}

/// Refuses a path that could leave the origin or walk up it.
fn check_path(path_and_query: &str) -> Result<(), WitError> {
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(denied("the path must start with a single /"));
    }
    // Only what is sent as written: a character the URL parser would
    // escape would make the request differ from the one signed.
    if !path_and_query
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\\#\"'<>`{}^|".contains(&b))
    {
        return Err(denied(
            "the path holds a character it may not (percent-encode it)",
        ));
    }
    if path.contains("://") || path.contains('@') {
        return Err(denied("the path names another origin"));
    }
    if path.len() > 1 && path.contains("//") {
        return Err(denied("the path has an empty segment"));
    }
    for segment in path.split('/') {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err(denied("the path walks up with a . or .. segment"));
        }
        let lowered = segment.to_ascii_lowercase();
        if lowered.contains("%2f") || lowered.contains("%5c") || lowered.contains("%00") {
            return Err(denied("the path hides a separator in a segment"));
        }
    }
    Ok(())
}

/// The path without its query, percent-decoded: what a server routes on,
/// for comparing with prefixes.
fn decoded_path(path_and_query: &str) -> String {
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::http::Method;

    fn request(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: Method::Post,
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn paths_that_leave_or_walk_up_the_origin_are_refused() {
        for bad in [
            "http://evil.example/",
            "//evil.example/x",
            "evil",
            "/v1/../sys",
            "/v1/%2e%2e/sys",
            "/v1/.%2E/sys",
            "/v1/./x",
            "/x\\y",
            "/x\ny",
            "/a@evil/",
            "/a%2f..%2fb",
            "/x#frag",
            "/x\"y",
            "/x{y}",
            "/caf\u{e9}",
            "/a b",
        ] {
            assert!(
                check(&request(bad, &[]), &Rules::default()).is_err(),
                "{bad:?}"
            );
        }
        for good in [
            "/",
            "/v1/secret/data/a%20b",
            "/v1/kv/metadata/x?list=true&after=y",
        ] {
            assert!(
                check(&request(good, &[]), &Rules::default()).is_ok(),
                "{good:?}"
            );
        }
    }

    #[test]
    fn credentials_are_dropped_and_the_host_refused() {
        let checked = check(
            &request(
                "/",
                &[
                    ("Authorization", "AWS4 forged"),
                    ("X-Vault-Token", "stolen"),
                    ("X-Amz-Security-Token", "t"),
                    ("X-Amz-Target", "DynamoDB_20120810.GetItem"),
                    ("X-Amz-Date", "20000101T000000Z"),
                    ("X-Vault-Namespace", "other-team"),
                    ("X-Vault-Request", "true"),
                    ("X-Forwarded-For", "10.0.0.1"),
                    ("Transfer-Encoding", "chunked"),
                    ("Content-Type", "application/x-amz-json-1.0"),
                ],
            ),
            &Rules::default(),
        )
        .unwrap_or_else(|_| Checked {
            headers: Vec::new(),
        });
        let names: Vec<&str> = checked.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-amz-target", "x-vault-request", "content-type"]);
        let none = Rules::default();
        assert!(check(&request("/", &[("Host", "evil.example")]), &none).is_err());
        assert!(check(&request("/", &[("x-a", "b\r\nHost: evil")]), &none).is_err());
        assert!(check(&request("/", &[("x-a", "b\x0bc")]), &none).is_err());
        let twice = [
            ("X-Amz-Target", "A.GetItem"),
            ("x-amz-target", "A.DeleteTable"),
        ];
        assert!(check(&request("/", &twice), &none).is_err());
    }

    #[test]
    fn only_listed_operations_pass_an_allow_list() {
        let allowed = Rules {
            actions: Some(vec!["DynamoDB_20120810.GetItem".to_owned()]),
            ..Rules::default()
        };
        let get = request("/", &[("X-Amz-Target", "DynamoDB_20120810.GetItem")]);
        let delete = request("/", &[("X-Amz-Target", "DynamoDB_20120810.DeleteTable")]);
        assert!(check(&get, &allowed).is_ok());
        assert!(check(&delete, &allowed).is_err());
        assert!(check(&request("/", &[]), &allowed).is_err());
    }

    #[test]
    fn the_tokens_own_endpoints_stay_the_hosts_however_spelled() {
        let vault = Rules {
            paths: Some(vec!["/v1/".to_owned()]),
            reserved: VAULT_RESERVED,
            ..Rules::default()
        };
        for bad in [
            "/v1/auth/token/lookup-self",
            "/v1/%61uth/token/create",
            "/V1/AUTH/token/lookup-self",
            "/v1//auth/token/lookup-self",
            "/v1/sys/wrapping/unwrap",
            "/v2/secret/data/x",
        ] {
            assert!(check(&request(bad, &[]), &vault).is_err(), "{bad}");
        }
        assert!(check(&request("/v1/secret/data/auth", &[]), &vault).is_ok());
    }

    #[test]
    fn path_prefixes_match_case_and_all() {
        let kv = Rules {
            paths: Some(vec!["/v1/secret/data/coffer/".to_owned()]),
            ..Rules::default()
        };
        assert!(check(&request("/v1/secret/data/coffer/a", &[]), &kv).is_ok());
        assert!(check(&request("/v1/secret/data/%63offer/a", &[]), &kv).is_ok());
        for bad in [
            "/v1/secret/data/COFFER/a",
            "/v1/Secret/data/coffer/a",
            "/v1/secret/data/coffer-other/a",
        ] {
            assert!(check(&request(bad, &[]), &kv).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_flood_of_headers_is_refused_before_it_is_looked_at() {
        let many: Vec<(String, String)> = (0..=MAX_HEADERS)
            .map(|i| (format!("x-h{i}"), "v".to_owned()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert!(check(&request("/", &many), &Rules::default()).is_err());
        let long = "v".repeat(MAX_HEADER_BYTES);
        assert!(check(&request("/", &[("x-h", &long)]), &Rules::default()).is_err());
        let path = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert!(check(&request(&path, &[]), &Rules::default()).is_err());
    }
}
