//! `coffer.toml`: the server's configuration. This module holds the schema
//! and its defaults (the embedded SQLite + keyset setup) and loads it;
//! `COFFER_…` environment overrides are [`env`]'s, the checks
//! [`validate`]'s, and what it resolves to for other modules
//! [`settings`]'. The plugin sections are [`plugin`]'s, the server's own
//! tables [`sections`]'.
//!
//! Every key can be overridden from the environment: `COFFER_LISTEN`,
//! `COFFER_STORAGE__SQL__URL`, `COFFER_KEYRING__CONFIG__PATH`, … (`__`
//! separates table levels). A bad value is one error that names its key.

mod env;
mod http_grant;
mod plugin;
mod sections;
mod settings;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use http_grant::{HttpAuthKind, HttpGrantSection};
pub use plugin::{FileGrantSection, LimitsSection, PluginSection, SqlGrant};
pub use sections::{
    AuditSection, HttpSection, JanitorSection, KeysSection, MetricsSection, TlsSection,
    TransportSection,
};

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Where the embedded database, keyset, root token and caches live.
    pub data_dir: PathBuf,
    /// Where plugin names are looked up (`<plugin_dir>/<name>.wasm`).
    pub plugin_dir: Option<PathBuf>,
    /// Compiled-component cache; defaults to `<data_dir>/cache`.
    pub cache_dir: Option<PathBuf>,
    /// Versions kept per secret; older ones are dropped on write.
    pub max_versions: u32,
    /// Largest secret value accepted, in bytes.
    pub max_value_bytes: usize,
    pub storage: Option<PluginSection>,
    pub keyring: Option<PluginSection>,
    /// A remote KMS as the root of the key hierarchy, in place of `[keyring]`.
    pub kms: Option<PluginSection>,
    /// A second storage, the target of `coffer migrate --to storage_next`.
    pub storage_next: Option<PluginSection>,
    pub audit: AuditSection,
    pub keys: KeysSection,
    pub janitor: JanitorSection,
    pub http: HttpSection,
    /// HTTPS; plain HTTP when absent.
    pub tls: Option<TlsSection>,
    pub metrics: MetricsSection,
    pub transport: TransportSection,
}

/// The embedded default: SQLite and a Tink keyset in the data directory,
/// the API on 127.0.0.1:8270.
impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8270)),
            data_dir: default_data_dir(),
            plugin_dir: None,
            cache_dir: None,
            max_versions: 10,
            max_value_bytes: 64 * 1024,
            storage: None,
            keyring: None,
            kms: None,
            storage_next: None,
            audit: AuditSection::default(),
            keys: KeysSection::default(),
            janitor: JanitorSection::default(),
            http: HttpSection::default(),
            tls: None,
            metrics: MetricsSection::default(),
            transport: TransportSection::default(),
        }
    }
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
        assert_eq!(config.listen, Config::default().listen);
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
    fn transport_settings_that_would_break_sealing_are_refused() {
        for (var, value, key) in [
            ("COFFER_TRANSPORT__WINDOW_MS", "0", "transport.window_ms"),
            (
                "COFFER_TRANSPORT__WINDOW_MS",
                "86400000",
                "transport.window_ms",
            ),
            (
                "COFFER_TRANSPORT__KEY_LIFETIME_MS",
                "1",
                "transport.key_lifetime_ms",
            ),
        ] {
            let error = Config::load(None, vars(&[(var, value)]), None).unwrap_err();
            assert!(error.to_string().contains(key), "{var}={value}: {error}");
        }
        let config =
            Config::load(None, vars(&[("COFFER_TRANSPORT__GRACE_MS", "0")]), None).unwrap();
        assert_eq!(config.transport.grace_ms, 0, "a key may retire at once");
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
