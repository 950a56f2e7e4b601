//! The `[<section>.http]` grant: the one origin a storage or KMS plugin may
//! reach through the host, and how the host authenticates to it. The
//! credentials are named here (environment variables, files), never
//! written here, and never reach the plugin.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the host authenticates a plugin's requests.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HttpAuthKind {
    /// Nothing added.
    #[default]
    None,
    /// AWS Signature Version 4 (DynamoDB, KMS).
    AwsSigv4,
    /// A Vault/OpenBao token, renewed while it is renewable.
    VaultToken,
    /// A Vault/OpenBao AppRole the host logs in with.
    VaultApprole,
}

impl HttpAuthKind {
    fn as_str(self) -> &'static str {
        match self {
            HttpAuthKind::None => "none",
            HttpAuthKind::AwsSigv4 => "aws-sigv4",
            HttpAuthKind::VaultToken => "vault-token",
            HttpAuthKind::VaultApprole => "vault-approle",
        }
    }
}

/// One `[<section>.http]` table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrantSection {
    /// `https://host[:port]`: where every request of the plugin goes.
    pub origin: String,
    /// PEM certificates to trust besides the public roots.
    pub ca_file: Option<PathBuf>,
    /// Longest one request may take; a plugin call's deadline may cut it
    /// shorter.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest response body handed to the plugin.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// When set, only these operations (`X-Amz-Target`) are sent.
    pub actions: Option<Vec<String>>,
    /// When set, only requests under these path prefixes are sent (such as
    /// `["/v1/secret/"]` for a KV mount).
    pub paths: Option<Vec<String>>,
    #[serde(default)]
    pub auth: HttpAuthKind,

    /// aws-sigv4: the service signed for (`dynamodb`, `kms`).
    pub service: Option<String>,
    /// aws-sigv4: the region signed for.
    pub region: Option<String>,
    /// aws-sigv4: variables holding the access key, secret key and session
    /// token; `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (when set)
    /// `AWS_SESSION_TOKEN` unless named, or unless `credentials_file` is.
    pub access_key_env: Option<String>,
    pub secret_key_env: Option<String>,
    pub session_token_env: Option<String>,
    /// aws-sigv4: an AWS shared credentials file, read for `profile`
    /// (`default`).
    pub credentials_file: Option<PathBuf>,
    pub profile: Option<String>,

    /// vault-token: the variable or file holding the token.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// vault-approle: where AppRole is mounted (`approle`), and the
    /// variables or files holding the role id and secret id.
    pub approle_mount: Option<String>,
    pub role_id_env: Option<String>,
    pub role_id_file: Option<PathBuf>,
    pub secret_id_env: Option<String>,
    pub secret_id_file: Option<PathBuf>,
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_max_response_bytes() -> usize {
    4 << 20
}

/// Largest `max_response_bytes`: what one response may put in a plugin's
/// memory.
const MAX_RESPONSE_BYTES_LIMIT: usize = 64 << 20;

impl HttpGrantSection {
    /// Checks the grant; an error names the key (under `key`) at fault.
    pub fn validate(&self, key: &str) -> Result<(), (String, String)> {
        let fail = |field: &str, message: &str| Err((format!("{key}.{field}"), message.to_owned()));
        if !origin_only(&self.origin) {
            return fail(
                "origin",
                "must be http(s)://host[:port], with no path, query or credentials",
            );
        }
        if !(10..=600_000).contains(&self.timeout_ms) {
            return fail("timeout_ms", "must be between 10 and 600000");
        }
        if !(1024..=MAX_RESPONSE_BYTES_LIMIT).contains(&self.max_response_bytes) {
            return fail(
                "max_response_bytes",
                &format!("must be between 1024 and {MAX_RESPONSE_BYTES_LIMIT}"),
            );
        }
        if self
            .actions
            .as_ref()
            .is_some_and(|actions| actions.is_empty() || actions.iter().any(String::is_empty))
        {
            return fail(
                "actions",
                "must list operations, such as \"DynamoDB_20120810.GetItem\"",
            );
        }
        if self.paths.as_ref().is_some_and(|paths| {
            paths.is_empty()
                || paths
                    .iter()
                    .any(|p| !p.starts_with('/') || !p.ends_with('/'))
        }) {
            return fail(
                "paths",
                "must list path prefixes that start and end with /, such as \"/v1/secret/\"",
            );
        }
        let vault = matches!(
            self.auth,
            HttpAuthKind::VaultToken | HttpAuthKind::VaultApprole
        );
        if vault && self.paths.is_none() {
            return fail(
                "paths",
                "is required with Vault auth: the prefixes the token is used under, \
                 such as [\"/v1/secret/\"] (a token reaches every path its policy allows)",
            );
        }
        if self.auth != HttpAuthKind::None && !secure_or_loopback(&self.origin) {
            return fail(
                "origin",
                "would send credentials in the clear: use https:// (http:// only to a loopback address)",
            );
        }
        for (field, set, kinds) in self.auth_fields() {
            if set && !kinds.contains(&self.auth) {
                let wanted: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                return fail(
                    field,
                    &format!("is only for auth = \"{}\"", wanted.join("\" or \"")),
                );
            }
        }
        match self.auth {
            HttpAuthKind::None => Ok(()),
            HttpAuthKind::AwsSigv4 => {
                if self.service.as_deref().is_none_or(str::is_empty) {
                    return fail(
                        "service",
                        "is required for aws-sigv4 (\"dynamodb\", \"kms\")",
                    );
                }
                if self.region.as_deref().is_none_or(str::is_empty) {
                    return fail("region", "is required for aws-sigv4");
                }
                if self.credentials_file.is_some()
                    && (self.access_key_env.is_some() || self.secret_key_env.is_some())
                {
                    return fail(
                        "credentials_file",
                        "excludes access_key_env and secret_key_env: name one source",
                    );
                }
                Ok(())
            }
            HttpAuthKind::VaultToken => match (&self.token_env, &self.token_file) {
                (Some(_), None) | (None, Some(_)) => Ok(()),
                _ => fail("token_env", "name exactly one of token_env and token_file"),
            },
            HttpAuthKind::VaultApprole => {
                if self.role_id_env.is_some() == self.role_id_file.is_some() {
                    return fail(
                        "role_id_env",
                        "name exactly one of role_id_env and role_id_file",
                    );
                }
                if self.secret_id_env.is_some() == self.secret_id_file.is_some() {
                    return fail(
                        "secret_id_env",
                        "name exactly one of secret_id_env and secret_id_file",
                    );
                }
                Ok(())
            }
        }
    }

    /// Checks that this grant (under `key`) and `other` (under `other_key`)
    /// cannot reach each other's paths with each other's credentials: on
    /// one origin (a Vault holding both the KV mount and transit), the
    /// storage plugin must not be able to ask transit to unwrap the keys
    /// it stores. Their paths must be disjoint and their credentials
    /// separate.
    pub fn apart_from(
        &self,
        other: &HttpGrantSection,
        key: &str,
        other_key: &str,
    ) -> Result<(), (String, String)> {
        let origin =
            |grant: &HttpGrantSection| grant.origin.trim_end_matches('/').to_ascii_lowercase();
        // SigV4 signatures name their service: one signed for DynamoDB
        // does not reach KMS on a shared endpoint.
        let vault = |grant: &HttpGrantSection| {
            matches!(
                grant.auth,
                HttpAuthKind::VaultToken | HttpAuthKind::VaultApprole
            )
        };
        if origin(self) != origin(other) || !vault(self) || !vault(other) {
            return Ok(());
        }
        let (Some(mine), Some(theirs)) = (&self.paths, &other.paths) else {
            return Err((
                format!("{key}.paths"),
                format!("is required when {other_key} shares this origin"),
            ));
        };
        if mine.iter().any(|a| {
            theirs
                .iter()
                .any(|b| a.starts_with(b.as_str()) || b.starts_with(a.as_str()))
        }) {
            return Err((
                format!("{key}.paths"),
                format!("must not overlap {other_key}.paths on the same origin"),
            ));
        }
        let sources = |grant: &HttpGrantSection| {
            [
                grant.token_env.as_ref().map(|v| format!("env:{v}")),
                grant
                    .token_file
                    .as_ref()
                    .map(|f| format!("file:{}", f.display())),
                grant.role_id_env.as_ref().map(|v| format!("env:{v}")),
                grant
                    .role_id_file
                    .as_ref()
                    .map(|f| format!("file:{}", f.display())),
                grant.access_key_env.as_ref().map(|v| format!("env:{v}")),
                grant
                    .credentials_file
                    .as_ref()
                    .map(|f| format!("file:{}", f.display())),
            ]
        };
        let shared = sources(self)
            .into_iter()
            .flatten()
            .any(|source| sources(other).contains(&Some(source)));
        if shared {
            return Err((
                format!("{key}.auth"),
                format!(
                    "uses the same credentials as {other_key} on the same origin: give each \
                     plugin its own token or role, whose policy reaches only its paths"
                ),
            ));
        }
        Ok(())
    }

    /// Each credentials field, whether it is set, and the kinds it is for.
    fn auth_fields(&self) -> [(&'static str, bool, &'static [HttpAuthKind]); 14] {
        use HttpAuthKind::{AwsSigv4, VaultApprole, VaultToken};
        const AWS: &[HttpAuthKind] = &[AwsSigv4];
        const TOKEN: &[HttpAuthKind] = &[VaultToken];
        const APPROLE: &[HttpAuthKind] = &[VaultApprole];
        [
            ("service", self.service.is_some(), AWS),
            ("region", self.region.is_some(), AWS),
            ("access_key_env", self.access_key_env.is_some(), AWS),
            ("secret_key_env", self.secret_key_env.is_some(), AWS),
            ("session_token_env", self.session_token_env.is_some(), AWS),
            ("credentials_file", self.credentials_file.is_some(), AWS),
            ("profile", self.profile.is_some(), AWS),
            ("token_env", self.token_env.is_some(), TOKEN),
            ("token_file", self.token_file.is_some(), TOKEN),
            ("approle_mount", self.approle_mount.is_some(), APPROLE),
            ("role_id_env", self.role_id_env.is_some(), APPROLE),
            ("role_id_file", self.role_id_file.is_some(), APPROLE),
            ("secret_id_env", self.secret_id_env.is_some(), APPROLE),
            ("secret_id_file", self.secret_id_file.is_some(), APPROLE),
        ]
    }
}

/// Whether `origin` is https, or http to a loopback address.
fn secure_or_loopback(origin: &str) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return true;
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let host = if authority.starts_with('[') {
        authority
            .split(']')
            .next()
            .map(|h| &h[1..])
            .unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `origin` is `http(s)://host[:port]` and nothing more.
fn origin_only(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', '\\'])
        && !authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn grant(toml_text: &str) -> HttpGrantSection {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "https://kms.eu-west-1.amazonaws.com",
            "http://127.0.0.1:8200/",
        ] {
            assert!(origin_only(good), "{good}");
        }
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@host",
            "https://host/v1",
            "https://host?x",
            "host:8200",
        ] {
            assert!(!origin_only(bad), "{bad}");
        }
    }

    #[test]
    fn credentials_fields_must_match_the_auth_kind() {
        let error = grant("origin = \"http://a\"\ntoken_env = \"T\"")
            .validate("storage.http")
            .unwrap_err();
        assert_eq!(error.0, "storage.http.token_env");
        assert!(error.1.contains("vault-token"), "{}", error.1);

        let error = grant("origin = \"https://a\"\nauth = \"aws-sigv4\"\nservice = \"kms\"")
            .validate("kms.http")
            .unwrap_err();
        assert_eq!(error.0, "kms.http.region");

        let error =
            grant("origin = \"https://a\"\nauth = \"vault-token\"\npaths = [\"/v1/transit/\"]")
                .validate("kms.http")
                .unwrap_err();
        assert_eq!(error.0, "kms.http.token_env");

        grant("origin = \"http://127.0.0.1:8200\"\nauth = \"vault-approle\"\nrole_id_env = \"R\"\nsecret_id_file = \"/s\"\npaths = [\"/v1/kv/\"]")
            .validate("storage.http")
            .unwrap();
    }

    #[test]
    fn vault_auth_needs_paths_and_credentials_need_tls_off_loopback() {
        let vault = "auth = \"vault-token\"\ntoken_env = \"T\"";
        let error = grant(&format!("origin = \"https://vault\"\n{vault}"))
            .validate("storage.http")
            .unwrap_err();
        assert_eq!(error.0, "storage.http.paths");
        let error = grant(&format!(
            "origin = \"https://vault\"\n{vault}\npaths = [\"/v1/kv\"]"
        ))
        .validate("storage.http")
        .unwrap_err();
        assert_eq!(error.0, "storage.http.paths");
        let error = grant(&format!(
            "origin = \"http://vault:8200\"\n{vault}\npaths = [\"/v1/kv/\"]"
        ))
        .validate("storage.http")
        .unwrap_err();
        assert_eq!(error.0, "storage.http.origin");
        for loopback in [
            "http://127.0.0.1:8200",
            "http://[::1]:8200",
            "http://localhost",
            "https://vault",
        ] {
            grant(&format!(
                "origin = \"{loopback}\"\n{vault}\npaths = [\"/v1/kv/\"]"
            ))
            .validate("storage.http")
            .unwrap();
        }
        // One Vault for KV and transit: separate paths and tokens.
        let kv = grant(
            "origin = \"https://vault\"\nauth = \"vault-token\"\ntoken_env = \"KV\"\npaths = [\"/v1/secret/\"]",
        );
        let transit = |paths: &str, env: &str| {
            grant(&format!(
                "origin = \"https://vault/\"\nauth = \"vault-token\"\ntoken_env = \"{env}\"\npaths = {paths}"
            ))
        };
        kv.apart_from(
            &transit("[\"/v1/transit/\"]", "TRANSIT"),
            "storage.http",
            "kms.http",
        )
        .unwrap();
        let error = kv
            .apart_from(
                &transit("[\"/v1/\"]", "TRANSIT"),
                "storage.http",
                "kms.http",
            )
            .unwrap_err();
        assert_eq!(error.0, "storage.http.paths");
        let error = kv
            .apart_from(
                &transit("[\"/v1/transit/\"]", "KV"),
                "storage.http",
                "kms.http",
            )
            .unwrap_err();
        assert_eq!(error.0, "storage.http.auth");
        // Without credentials, plain http anywhere is the operator's call.
        grant("origin = \"http://metadata.internal\"")
            .validate("storage.http")
            .unwrap();
    }
}
