//! The running engine: plugins, keys, secrets and tokens wired together.
//! The HTTP API and the CLI both call into this; neither holds logic.

use std::sync::Arc;
use std::time::Duration;

use coffer_runtime::{Runtime, RuntimeOptions, SqlPool, Storage, create_private_dir};
use zeroize::Zeroizing;

use crate::audit::Audit;
use crate::auth::Auth;
use crate::config::Config;
use crate::keys::admin::KeyAdmin;
use crate::keys::janitor::Janitor;
use crate::keys::{DataKeys, Kek, Lease, RootKeys, system_key};
use crate::plugins::{self, PluginInfo};
use crate::secrets::{Secrets, SecretsSettings};

/// Everything a request needs.
pub struct Coffer {
    pub secrets: Arc<Secrets>,
    pub keys: Arc<KeyAdmin>,
    pub janitor: Arc<Janitor>,
    pub audit: Audit,
    pub auth: Auth,
    pub storage: Arc<dyn Storage>,
    pub plugins: Vec<PluginInfo>,
    /// Kept so the engine (and its epoch ticker) lives as long as the plugins.
    _runtime: Runtime,
    sql: Option<Arc<SqlPool>>,
}

/// Why the engine could not start; printed to the operator as is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

impl Coffer {
    /// Starts the runtime, loads the plugins and the KEK (creating a keyset
    /// when the keyring allows it).
    pub async fn open(config: &Config) -> Result<Coffer, StartError> {
        // The data directory holds the database, the root token and, by
        // default, the keyset: nobody but its owner may enter it.
        warn_if_shared(&config.data_dir);
        create_private_dir(&config.data_dir).map_err(|e| {
            StartError(format!(
                "data_dir: cannot create {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: Some(config.cache_dir()),
        })
        .map_err(|e| StartError(e.to_string()))?;

        let (storage, sql) = plugins::load_storage(&runtime, config)
            .await
            .map_err(|e| StartError(e.to_string()))?;
        let keyring = plugins::load_keyring(&runtime, config)
            .await
            .map_err(|e| StartError(e.to_string()))?;
        let plugins = vec![
            PluginInfo {
                kind: "storage",
                name: storage.name().to_owned(),
                sha256: storage.sha256().to_owned(),
            },
            PluginInfo {
                kind: "keyring",
                name: keyring.name().to_owned(),
                sha256: keyring.sha256().to_owned(),
            },
        ];

        let (kek, created) = Kek::load_or_create(&keyring)
            .await
            .map_err(|e| StartError(format!("keyring {}: {e}", keyring.name())))?;
        if created {
            tracing::warn!(
                "created a new root keyset through keyring plugin {}; back it up: without it no secret can be read",
                keyring.name()
            );
        }
        if config.keyring.is_none() {
            tracing::warn!(
                keyset = %config.default_keyset_path().display(),
                "the root keyset sits next to the data it protects: fine for development, \
                 not for production (configure [keyring] with a key kept elsewhere)"
            );
        }

        if config
            .keys
            .grace_ms
            .is_some_and(|grace| grace < config.keys.cache_ttl_ms)
        {
            tracing::warn!(
                "[keys] grace_ms is below cache_ttl_ms: with more than one node, a retired data \
                 key could be inactivated or destroyed while another node still seals with it"
            );
        }

        let storage: Arc<dyn Storage> = Arc::new(storage);
        let root = Arc::new(RootKeys::new(Arc::new(keyring), kek));
        let keys = Arc::new(DataKeys::new(
            storage.clone(),
            root.clone(),
            config.data_key_settings(),
        ));
        let secrets = Arc::new(Secrets::new(
            storage.clone(),
            keys.clone(),
            SecretsSettings {
                max_versions: config.max_versions,
                max_value_bytes: config.max_value_bytes,
            },
        ));
        let lease = Arc::new(Lease::new(
            storage.clone(),
            config.node_name(),
            Duration::from_millis(config.keys.lease_ttl_ms),
        ));
        let key_admin = Arc::new(KeyAdmin::new(
            storage.clone(),
            keys.clone(),
            secrets.clone(),
            lease.clone(),
            config.key_admin_settings(),
        ));
        key_admin
            .check_keks(&root.current())
            .await
            .map_err(|e| StartError(format!("refusing to serve: {e}")))?;
        tracing::debug!("every data key's KEK is in the keyset");
        let audit_settings = config.audit_settings();
        let audit_key = if audit_settings.enabled {
            system_key(storage.as_ref(), &root.current(), "audit-hmac")
                .await
                .map_err(|e| {
                    StartError(format!("refusing to serve: cannot load the audit key: {e}"))
                })?
        } else {
            tracing::warn!(
                "the audit trail is disabled ([audit] enabled = false): requests leave no record"
            );
            Zeroizing::new(Vec::new())
        };
        let audit = Audit::open(audit_settings, audit_key);
        let janitor = Arc::new(Janitor::new(
            key_admin.clone(),
            lease,
            config.janitor_settings(),
        ));
        Ok(Coffer {
            secrets,
            keys: key_admin,
            janitor,
            audit,
            auth: Auth::new(storage.clone()),
            storage,
            plugins,
            _runtime: runtime,
            sql,
        })
    }

    /// Starts the background work (the key janitor); call once serving.
    pub fn start_background(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.janitor.clone().spawn()
    }

    /// Closes database pools so SQLite checkpoints its WAL.
    pub async fn close(&self) {
        if let Some(sql) = &self.sql {
            sql.close().await;
        }
    }
}

/// Says so when an existing data directory lets other users in: it holds
/// the database, the root token and perhaps the keyset.
fn warn_if_shared(dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(dir)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                data_dir = %dir.display(),
                "the data directory can be entered by other users: run chmod 700 on it"
            );
        }
    }
}
