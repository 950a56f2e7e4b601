//! `coffer.toml`: the server's configuration, its defaults (the embedded
//! SQLite + keyset setup) and `COFFER_…` environment overrides
//! ([`env`]). The plugin sections are [`plugin`]'s, the server's own
//! tables [`sections`]'.
//!
//! Every key can be overridden from the environment: `COFFER_LISTEN`,
//! `COFFER_STORAGE__SQL__URL`, `COFFER_KEYRING__CONFIG__PATH`, … (`__`
//! separates table levels). A bad value is one error that names its key.

mod env;
mod http_grant;
mod plugin;
mod sections;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use http_grant::{HttpAuthKind, HttpGrantSection};
pub use plugin::{FileGrantSection, LimitsSection, PluginSection, SqlGrant};
pub use sections::{
    AuditSection, HttpSection, JanitorSection, KeysSection, MetricsSection, TlsSection,
};

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the embedded database, keyset, root token and caches live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where plugin names are looked up (`<plugin_dir>/<name>.wasm`).
    pub plugin_dir: Option<PathBuf>,
    /// Compiled-component cache; defaults to `<data_dir>/cache`.
    pub cache_dir: Option<PathBuf>,
    /// Versions kept per secret; older ones are dropped on write.
    #[serde(default = "default_max_versions")]
    pub max_versions: u32,
    /// Largest secret value accepted, in bytes.
    #[serde(default = "default_max_value_bytes")]
    pub max_value_bytes: usize,
    pub storage: Option<PluginSection>,
    pub keyring: Option<PluginSection>,
    /// A remote KMS as the root of the key hierarchy, in place of `[keyring]`.
    pub kms: Option<PluginSection>,
    /// A second storage, the target of `coffer migrate --to storage_next`.
    pub storage_next: Option<PluginSection>,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub keys: KeysSection,
    #[serde(default)]
    pub janitor: JanitorSection,
    #[serde(default)]
    pub http: HttpSection,
    /// HTTPS; plain HTTP when absent.
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub metrics: MetricsSection,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8270))
}

fn default_max_versions() -> u32 {
    10
}

fn default_max_value_bytes() -> usize {
    64 * 1024
}

/// The data directory when none is configured: `$XDG_DATA_HOME/coffer`,
/// else `~/.local/share/coffer`, else `./coffer-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("coffer");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/coffer");
    }
    PathBuf::from("coffer-data")
}

/// A configuration error, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{origin}: key `{key}`: {message}")]
    Key {
        origin: String,
        key: String,
        message: String,
    },
}

/// Largest `max_value_bytes` accepted.
const MAX_VALUE_BYTES_LIMIT: usize = 1 << 20;
/// Largest secret record (all retained versions) accepted.
const MAX_RECORD_BYTES: usize = 32 << 20;
/// Bytes a record spends per version besides the value (keys, nonces, tags).
const RECORD_OVERHEAD: usize = 256;

impl Config {
    /// Loads `file` (or nothing), applies `vars` overrides and the data-dir
    /// option, and validates the result.
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
        data_dir: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let Some(path) = file else {
            return Config::parse("", "configuration", vars, data_dir);
        };
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: origin.clone(),
            source,
        })?;
        Config::parse(&text, &origin, vars, data_dir)
    }

    /// Like [`Config::load`], for TOML `text` read from `origin`.
    pub fn parse(
        text: &str,
        origin: &str,
        vars: impl IntoIterator<Item = (String, String)>,
        data_dir: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let origin = origin.to_owned();
        let mut table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Syntax {
                path: origin.clone(),
                message: e.to_string(),
            })?;
        env::apply_env(&mut table, vars);
        if let Some(dir) = data_dir {
            table.insert(
                "data_dir".into(),
                toml::Value::String(dir.display().to_string()),
            );
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                ConfigError::Key {
                    origin: origin.clone(),
                    key: e.path().to_string(),
                    message: e.inner().to_string(),
                }
            })?;
        config.validate(&origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, message: &str| ConfigError::Key {
            origin: origin.to_owned(),
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if !(1..=1000).contains(&self.max_versions) {
            return Err(fail("max_versions", "must be between 1 and 1000"));
        }
        if !(1..=MAX_VALUE_BYTES_LIMIT).contains(&self.max_value_bytes) {
            return Err(fail(
                "max_value_bytes",
                &format!("must be between 1 and {MAX_VALUE_BYTES_LIMIT}"),
            ));
        }
        // A secret and its retained versions are one record, which the storage
        // plugin holds several copies of in its memory: it must fit.
        let storage_memory = self
            .storage
            .as_ref()
            .map_or(plugin::default_memory_mb(), |s| s.limits.memory_mb)
            .saturating_mul(1 << 20);
        let record = (self.max_versions as usize)
            .saturating_mul(self.max_value_bytes.saturating_add(RECORD_OVERHEAD));
        let record_limit = (storage_memory / 4).min(MAX_RECORD_BYTES);
        if record > record_limit {
            return Err(fail(
                "max_value_bytes",
                &format!(
                    "max_versions × max_value_bytes makes records of up to {record} bytes, more than the \
                     {record_limit} the storage plugin's memory allows: lower either, or raise storage.limits.memory_mb"
                ),
            ));
        }
        let audit = self.audit_settings();
        if audit.enabled && audit.file.is_none() && !audit.stdout {
            return Err(fail(
                "audit",
                "is enabled with no sink: set audit.file or audit.stdout (or enabled = false)",
            ));
        }
        if self.audit.rotate_bytes < 4096 {
            return Err(fail("audit.rotate_bytes", "must be at least 4096"));
        }
        if self.audit.checkpoint_ms < 10 {
            return Err(fail("audit.checkpoint_ms", "must be at least 10"));
        }
        if self.keys.lease_ttl_ms < 1000 {
            return Err(fail("keys.lease_ttl_ms", "must be at least 1000"));
        }
        if self.janitor.interval_ms < 10 {
            return Err(fail("janitor.interval_ms", "must be at least 10"));
        }
        if self.janitor.limit == 0 {
            return Err(fail("janitor.limit", "must be at least 1"));
        }
        if !(1..=100_000).contains(&self.http.max_connections) {
            return Err(fail("http.max_connections", "must be between 1 and 100000"));
        }
        if self.http.header_timeout_ms < 100 {
            return Err(fail("http.header_timeout_ms", "must be at least 100"));
        }
        if self.http.request_timeout_ms < 100 {
            return Err(fail("http.request_timeout_ms", "must be at least 100"));
        }
        if self.keyring.is_some() && self.kms.is_some() {
            return Err(fail(
                "kms",
                "is the root of the key hierarchy in place of [keyring]: configure one of them",
            ));
        }
        let sections = [
            ("storage", &self.storage),
            ("keyring", &self.keyring),
            ("kms", &self.kms),
            ("storage_next", &self.storage_next),
        ];
        for (name, section) in sections {
            if let Some(section) = section {
                section
                    .validate(name)
                    .map_err(|(key, message)| fail(&key, &message))?;
            }
        }
        if let (Some(storage), Some(kms)) = (
            self.storage.as_ref().and_then(|s| s.http.as_ref()),
            self.kms.as_ref().and_then(|s| s.http.as_ref()),
        ) {
            storage
                .apart_from(kms, "storage.http", "kms.http")
                .map_err(|(key, message)| fail(&key, &message))?;
        }
        Ok(())
    }

    /// The `[storage]` section, or the embedded default: SQLite in the data dir.
    pub fn storage_section(&self) -> PluginSection {
        self.storage.clone().unwrap_or_else(|| PluginSection {
            sql: Some(SqlGrant {
                url: format!("sqlite://{}", self.data_dir.join("coffer.db").display()),
                max_connections: plugin::default_max_connections(),
            }),
            ..PluginSection::named("storage-sql")
        })
    }

    /// The `[keyring]` section, or the embedded default: a Tink keyset in the
    /// data dir, created if missing.
    pub fn keyring_section(&self) -> PluginSection {
        self.keyring.clone().unwrap_or_else(|| PluginSection {
            config: BTreeMap::from([("create_if_missing".to_owned(), toml::Value::Boolean(true))]),
            files: BTreeMap::from([(
                "keyset".to_owned(),
                FileGrantSection {
                    path: self.default_keyset_path(),
                    writable: true,
                },
            )]),
            ..PluginSection::named("keyring-file")
        })
    }

    /// Where the embedded default keeps its keyset.
    pub fn default_keyset_path(&self) -> PathBuf {
        self.data_dir.join("keyring").join("keyset.json")
    }

    /// Settings of the data keys.
    pub fn data_key_settings(&self) -> crate::keys::DataKeySettings {
        crate::keys::DataKeySettings {
            algorithm: self.keys.algorithm,
            cache_ttl: Duration::from_millis(self.keys.cache_ttl_ms),
        }
    }

    /// Settings of key management, the grace defaulting to twice the cache
    /// lifetime plus the storage plugin's call timeout.
    pub fn key_admin_settings(&self) -> crate::maintenance::AdminSettings {
        let timeout = self.storage_section().limits.timeout_ms;
        let grace = self
            .keys
            .grace_ms
            .unwrap_or(2 * self.keys.cache_ttl_ms + timeout);
        crate::maintenance::AdminSettings {
            lease_wait: Duration::from_secs(5),
            grace: Duration::from_millis(grace),
        }
    }

    /// This node's name in the key-management lease.
    pub fn node_name(&self) -> String {
        self.keys.node.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "coffer".to_owned());
            format!("{host}:{}", self.listen.port())
        })
    }

    /// Settings of the janitor.
    pub fn janitor_settings(&self) -> crate::maintenance::janitor::JanitorSettings {
        crate::maintenance::janitor::JanitorSettings {
            enabled: self.janitor.enabled,
            interval: Duration::from_millis(self.janitor.interval_ms),
            limit: self.janitor.limit,
        }
    }

    /// The audit settings with defaults resolved against the data dir.
    pub fn audit_settings(&self) -> crate::audit::AuditSettings {
        let file = match &self.audit.file {
            None => Some(self.data_dir.join("audit").join("audit.log")),
            Some(path) if path.as_os_str().is_empty() => None,
            Some(path) => Some(path.clone()),
        };
        crate::audit::AuditSettings {
            enabled: self.audit.enabled,
            file,
            stdout: self.audit.stdout,
            rotate_bytes: self.audit.rotate_bytes,
            keep_files: self.audit.keep_files,
            keep_bytes: self.audit.keep_bytes,
            checkpoint_interval: Duration::from_millis(self.audit.checkpoint_ms),
            exclude: self.audit.exclude.iter().cloned().collect(),
        }
    }

    /// The limits the HTTP server keeps to.
    pub fn http_limits(&self) -> crate::api::serve::HttpLimits {
        crate::api::serve::HttpLimits {
            max_connections: self.http.max_connections,
            header_timeout: Duration::from_millis(self.http.header_timeout_ms),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("cache"))
    }
}

/// The string a plugin sees for a TOML scalar; none for tables and arrays.
pub fn scalar_string(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_file_gives_the_embedded_default() {
        let config = Config::load(None, vars(&[]), Some(Path::new("/tmp/d"))).unwrap();
        assert_eq!(config.listen, default_listen());
        assert_eq!(config.storage_section().plugin, "storage-sql");
        let sql = config.storage_section().sql.unwrap();
        assert_eq!(sql.url, "sqlite:///tmp/d/coffer.db");
        let keyring = config.keyring_section();
        assert_eq!(
            keyring.config["create_if_missing"],
            toml::Value::Boolean(true)
        );
        assert_eq!(
            keyring.files["keyset"].path,
            Path::new("/tmp/d/keyring/keyset.json")
        );
    }

    #[test]
    fn environment_overrides_nested_keys_with_types() {
        let config = Config::load(
            None,
            vars(&[
                ("COFFER_LISTEN", "127.0.0.1:9999"),
                ("COFFER_STORAGE__PLUGIN", "storage-sql"),
                ("COFFER_STORAGE__SQL__URL", "sqlite:///x.db"),
                ("COFFER_STORAGE__LIMITS__CPU_MS", "500"),
                ("COFFER_ADDR", "http://ignored"),
                ("COFFER_TOKEN", "ignored"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9999);
        let storage = config.storage.unwrap();
        assert_eq!(storage.sql.unwrap().url, "sqlite:///x.db");
        assert_eq!(storage.limits.cpu_ms, 500);
    }

    #[test]
    fn environment_values_reach_plugins_as_written() {
        let config = Config::load(
            None,
            vars(&[
                ("COFFER_STORAGE__PLUGIN", "storage-sql"),
                ("COFFER_STORAGE__CONFIG__PASSWORD", "1e5"),
                ("COFFER_STORAGE__CONFIG__MASK", "0x1F"),
                ("COFFER_STORAGE__CONFIG__PORT", "5432"),
            ]),
            None,
        )
        .unwrap();
        let plugin_config = config.storage.unwrap().config;
        let seen = |key: &str| scalar_string(&plugin_config[key]).unwrap();
        assert_eq!(
            (seen("password"), seen("mask"), seen("port")),
            ("1e5".into(), "0x1F".into(), "5432".into())
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("coffer.toml");
        std::fs::write(
            &file,
            "[storage]\nplugin = \"storage-sql\"\n[storage.limits]\ncpu_ms = \"lots\"\n",
        )
        .unwrap();
        let error = Config::load(Some(&file), vars(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("storage.limits.cpu_ms"), "{error}");

        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let error = Config::load(Some(&file), vars(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("lisen"), "{error}");

        std::fs::write(&file, "max_versions = 500\nmax_value_bytes = 1000000\n").unwrap();
        let error = Config::load(Some(&file), vars(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("max_value_bytes") && error.contains("memory_mb"),
            "{error}"
        );

        std::fs::write(&file, "max_versions = 0\n").unwrap();
        let error = Config::load(Some(&file), vars(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_versions"), "{error}");
    }

    #[test]
    fn plugin_config_values_stay_out_of_debug_output() {
        let config = Config::load(
            None,
            vars(&[
                ("COFFER_STORAGE__PLUGIN", "x"),
                ("COFFER_STORAGE__CONFIG__TOKEN", "s.hunter2"),
            ]),
            None,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            shown.contains("token") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn sql_grant_debug_hides_the_url() {
        let grant = SqlGrant {
            url: "postgres://u:hunter2@db/x".into(),
            max_connections: 1,
        };
        assert!(!format!("{grant:?}").contains("hunter2"));
    }

    fn refusal(text: &str) -> String {
        Config::parse(text, "coffer.toml", vars(&[]), None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_kms_root_excludes_a_keyring_and_grants_are_checked_per_kind() {
        let error = refusal("[keyring]\nplugin = \"keyring-file\"\n[kms]\nplugin = \"kms-aws\"\n");
        assert!(
            error.contains("key `kms`") && error.contains("[keyring]"),
            "{error}"
        );
        let error = refusal(
            "[keyring]\nplugin = \"keyring-file\"\n[keyring.http]\norigin = \"https://kms.example\"\n",
        );
        assert!(error.contains("keyring.http"), "{error}");
        let error = refusal("[kms]\nplugin = \"kms-aws\"\n[kms.sql]\nurl = \"sqlite://x\"\n");
        assert!(error.contains("kms.sql"), "{error}");
        let error = refusal(
            "[kms]\nplugin = \"kms-aws\"\n[kms.http]\norigin = \"https://kms.example/v1\"\n",
        );
        assert!(error.contains("kms.http.origin"), "{error}");
        let config = Config::parse(
            "[kms]\nplugin = \"kms-aws\"\n[kms.http]\norigin = \"https://kms.eu-west-1.amazonaws.com\"\n\
             auth = \"aws-sigv4\"\nservice = \"kms\"\nregion = \"eu-west-1\"\n",
            "coffer.toml",
            vars(&[]),
            None,
        )
        .unwrap();
        assert_eq!(
            config.kms.unwrap().http.unwrap().auth,
            HttpAuthKind::AwsSigv4
        );
    }
}
