//! The plugin sections of `coffer.toml` (`[storage]`, `[keyring]`,
//! `[kms]`): which plugin, its own `config`, and what the host grants it —
//! a database, files, an HTTP origin, environment variables, the clock —
//! within which limits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use coffer_runtime::Limits;

use super::http_grant::HttpGrantSection;

/// A `[storage]`, `[keyring]` or `[kms]` section: which plugin and what it
/// may use.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// A name from the plugin directory, or a path to a `.wasm` file.
    pub plugin: String,
    /// SHA-256 (hex) the `.wasm` must have.
    pub sha256: Option<String>,
    /// Passed to the plugin; every scalar becomes its string form.
    #[serde(default, serialize_with = "redacted_settings")]
    pub config: BTreeMap<String, toml::Value>,
    /// A database the host opens and lends the plugin (storage only).
    pub sql: Option<SqlGrant>,
    /// The origin the host talks to for the plugin (storage and KMS).
    pub http: Option<HttpGrantSection>,
    /// Whether the plugin may read the real time (it sees zero otherwise).
    #[serde(default)]
    pub clock: bool,
    /// Names of host environment variables the plugin may read (it sees
    /// no other); each must be set when the server starts.
    #[serde(default)]
    pub env: Vec<String>,
    /// Files lent to the plugin, each under a name (keyrings only); the
    /// plugin reaches exactly these files and nothing beside them.
    #[serde(default)]
    pub files: BTreeMap<String, FileGrantSection>,
    #[serde(default)]
    pub limits: LimitsSection,
}

impl PluginSection {
    /// A section for `plugin` that grants nothing, with default limits.
    pub fn named(plugin: &str) -> PluginSection {
        PluginSection {
            plugin: plugin.to_owned(),
            sha256: None,
            config: BTreeMap::new(),
            sql: None,
            http: None,
            clock: false,
            env: Vec::new(),
            files: BTreeMap::new(),
            limits: LimitsSection::default(),
        }
    }

    /// Checks the `[name]` section; an error names the key at fault and
    /// says what is wrong with it.
    pub fn validate(&self, name: &str) -> Result<(), (String, String)> {
        let fail = |key: &str, message: &str| Err((format!("{name}.{key}"), message.to_owned()));
        if self.plugin.is_empty() {
            return fail("plugin", "must not be empty");
        }
        if let Some(sha) = &self.sha256
            && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return fail("sha256", "must be 64 hex digits");
        }
        for (key, value) in &self.config {
            if super::scalar_string(value).is_none() {
                return fail(
                    &format!("config.{key}"),
                    "must be a string, number or boolean",
                );
            }
        }
        let limits = &self.limits;
        if !(1..=1024).contains(&limits.memory_mb) {
            return fail("limits.memory_mb", "must be between 1 and 1024");
        }
        if limits.cpu_ms < 10 {
            return fail("limits.cpu_ms", "must be at least 10");
        }
        if limits.timeout_ms < 10 {
            return fail("limits.timeout_ms", "must be at least 10");
        }
        if !(1..=256).contains(&limits.max_instances) {
            return fail("limits.max_instances", "must be between 1 and 256");
        }
        if !name.starts_with("storage") && self.sql.is_some() {
            return fail("sql", "only storage plugins can be granted a database");
        }
        if name != "keyring" && !self.files.is_empty() {
            return fail("files", "only keyring plugins can be granted files");
        }
        if name == "keyring" && self.http.is_some() {
            return fail(
                "http",
                "keyring plugins cannot be granted an origin (use [kms] for a remote KMS)",
            );
        }
        for (file, grant) in &self.files {
            if file.is_empty() || grant.path.file_name().is_none() {
                return fail(
                    &format!("files.{file}"),
                    "must name a file: { path = \"/dir/file\" }",
                );
            }
        }
        if let Some(http) = &self.http {
            http.validate(&format!("{name}.http"))?;
        }
        Ok(())
    }
}

/// One `[<section>.files]` entry: `name = { path = "…", writable = false }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileGrantSection {
    pub path: PathBuf,
    /// Whether the plugin may replace the file (to create or rotate a keyset).
    #[serde(default)]
    pub writable: bool,
}

impl std::fmt::Debug for PluginSection {
    // The plugin's config holds credentials: show its keys, not its values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSection")
            .field("plugin", &self.plugin)
            .field("sha256", &self.sha256)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("sql", &self.sql)
            .field("http", &self.http)
            .field("clock", &self.clock)
            .field("env", &self.env)
            .field("files", &self.files)
            .field("limits", &self.limits)
            .finish()
    }
}

/// The `[<section>.sql]` grant.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlGrant {
    /// `sqlite://path` or `postgres://user:password@host/db`.
    #[serde(serialize_with = "redacted_url")]
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl std::fmt::Debug for SqlGrant {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlGrant")
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// The `[<section>.limits]` table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Linear memory one instance may grow to.
    pub memory_mb: usize,
    /// CPU time one call may use.
    pub cpu_ms: u64,
    /// Wall-clock time one call may take.
    pub timeout_ms: u64,
    /// Instances kept, so calls at once.
    pub max_instances: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            memory_mb: 64,
            cpu_ms: 2_000,
            timeout_ms: 10_000,
            max_instances: 32,
        }
    }
}

impl LimitsSection {
    pub fn to_limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_mb.saturating_mul(1 << 20),
            cpu_time: Duration::from_millis(self.cpu_ms),
            call_timeout: Duration::from_millis(self.timeout_ms),
            max_instances: self.max_instances,
        }
    }
}

pub(super) fn default_max_connections() -> u32 {
    8
}

/// What `coffer config check` shows in place of a secret.
const REDACTED: &str = "<redacted>";

/// A plugin's settings with every value replaced but those of `_env` and
/// `_file` settings, which only name where a secret is: what a setting
/// holds is the plugin's business, so none is assumed harmless.
fn redacted_settings<S: serde::Serializer>(
    settings: &BTreeMap<String, toml::Value>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let shown: BTreeMap<&String, toml::Value> = settings
        .iter()
        .map(|(name, value)| {
            let names_a_place = name.ends_with("_env") || name.ends_with("_file");
            let value = if names_a_place {
                value.clone()
            } else {
                toml::Value::String(REDACTED.to_owned())
            };
            (name, value)
        })
        .collect();
    serde::Serialize::serialize(&shown, serializer)
}

/// A database URL without the password it may carry, in its user part
/// (up to the authority's last `@`) or its query (`password`,
/// `sslpassword`).
fn redacted_url<S: serde::Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let user = authority[..at].split(':').next().unwrap_or_default();
            format!("{user}:{REDACTED}@{}", &authority[at + 1..])
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        None => tail.to_owned(),
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                        format!("{key}={REDACTED}")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod redaction_tests {
    use super::redact_url;

    #[test]
    fn no_part_of_a_password_survives() {
        assert_eq!(
            redact_url("postgres://u:p@ss@host:5432/db?sslmode=require&password=x&sslpassword=y"),
            "postgres://u:<redacted>@host:5432/db?sslmode=require&password=<redacted>&sslpassword=<redacted>"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/coffer/coffer.db"),
            "sqlite:///var/lib/coffer/coffer.db"
        );
        assert_eq!(redact_url("postgres://host/db"), "postgres://host/db");
    }
}
