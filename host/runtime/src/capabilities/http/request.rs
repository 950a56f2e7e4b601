//! What a plugin's request may carry. The path stays on the granted origin
//! (no scheme, no authority, no `.`/`..` or empty segment, raw or encoded,
//! no backslash or control character), within the grant's path prefixes
//! when it has some, and out of the paths the host keeps for itself (a
//! Vault token's own endpoints); a `host` header is refused; the
//! credentials headers the host sets, and hop-by-hop headers, are dropped;
//! a header may be given once;
//! and an allow-list of operations, where the grant has one, is checked
//! against `X-Amz-Target`.

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
const CREDENTIALS: &[&str] = &[
    "authorization",
    "x-vault-token",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "cookie",
];

/// A request that passed the checks: its headers, lowercased and filtered.
pub(super) struct Checked {
    pub headers: Vec<(String, String)>,
}

/// What a grant allows beyond the origin.
#[derive(Debug, Default)]
pub(super) struct Rules {
    /// Operations (`X-Amz-Target`) that may be sent, when listed.
    pub actions: Option<Vec<String>>,
    /// Path prefixes requests must fall under, when listed.
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
    check_path(&request.path)?;
    let path = decoded_path(&request.path);
    if rules.reserved.iter().any(|prefix| path.starts_with(prefix)) {
        return Err(denied("the path is one the host keeps for its credentials"));
    }
    if let Some(paths) = &rules.paths
        && !paths
            .iter()
            .any(|prefix| path.starts_with(&prefix.to_ascii_lowercase()))
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
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(denied("a header value holds a line break"));
        }
        if name == "host" || name.starts_with(':') {
            return Err(denied("the host is the grant's, not the plugin's"));
        }
        if HOP_BY_HOP.contains(&name.as_str()) || CREDENTIALS.contains(&name.as_str()) {
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
    if path_and_query
        .chars()
        .any(|c| c.is_control() || c == '\\' || c == '#' || c == ' ')
    {
        return Err(denied("the path holds a character it may not"));
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

/// The path without its query, percent-decoded and lowercased: what a
/// server routes on, for comparing with prefixes.
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
    String::from_utf8_lossy(&decoded).to_ascii_lowercase()
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
        assert_eq!(names, ["x-amz-target", "content-type"]);
        let none = Rules::default();
        assert!(check(&request("/", &[("Host", "evil.example")]), &none).is_err());
        assert!(check(&request("/", &[("x-a", "b\r\nHost: evil")]), &none).is_err());
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
}
