//! What the configuration resolves to for the rest of coffer: the
//! embedded default sections, and each module's settings with their
//! defaults filled in against the data directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{Config, FileGrantSection, PluginSection, SqlGrant, plugin};

impl Config {
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

    /// The sealed transport's settings.
    pub fn transport_settings(&self) -> crate::sealing::TransportSettings {
        let millis = |ms: u64| i64::try_from(ms).unwrap_or(i64::MAX);
        crate::sealing::TransportSettings {
            key_lifetime_ms: millis(self.transport.key_lifetime_ms),
            grace_ms: millis(self.transport.grace_ms),
            window: Duration::from_millis(self.transport.window_ms),
            require_sealed: self.transport.require_sealed.clone(),
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
