//! The running engine: plugins, keys, secrets and tokens wired together.
//! The HTTP API and the CLI both call into this; neither holds logic.
//!
//! Start-up comes in two steps. [`Foundation`] is what anything touching
//! stored data needs — the plugins, the KEK, the engine's own keys and the
//! sealed store; `coffer upgrade` and offline audit verification stop
//! there. [`Coffer`] builds the services on it.

use std::sync::Arc;
use std::time::Duration;

use coffer_crypto::RecordKey;
use coffer_runtime::{Runtime, RuntimeOptions, SqlPool, Storage, create_private_dir};
use zeroize::Zeroizing;

use crate::audit::Audit;
use crate::auth::Auth;
use crate::config::Config;
use crate::keys::{DataKeys, RootKeys, RootSource, system_key};
use crate::maintenance::{Janitor, KeyAdmin, Lease};
use crate::plugins::reload::{LivePlugins, LiveRoot};
use crate::plugins::{self, Live, PluginInfo};
use crate::pseudonyms::Pseudonyms;
use crate::sealing::Transport;
use crate::secrets::{Secrets, SecretsSettings};
use crate::store::{Store, format};

/// Where a server's configuration comes from: the file and the data
/// directory given on its command line (the environment is read again).
#[derive(Clone, Debug)]
pub struct ConfigSource {
    pub file: Option<std::path::PathBuf>,
    pub data_dir: Option<std::path::PathBuf>,
}

/// Why the engine could not start; printed to the operator as is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// The plugins, the KEK, the engine's own keys and the sealed store.
pub struct Foundation {
    pub storage: Arc<dyn Storage>,
    pub root: Arc<RootKeys>,
    pub store: Arc<Store>,
    pub names: Arc<Pseudonyms>,
    /// Chains the audit trail (and makes the pseudonyms).
    pub audit_key: Zeroizing<Vec<u8>>,
    pub plugins: Vec<PluginInfo>,
    /// The database the host lends the storage plugin, if any.
    pub sql: Option<Arc<SqlPool>>,
    /// The plugins as loaded from a config, swappable while serving; none
    /// for an engine assembled on plugins given to it.
    pub live: Option<Arc<LivePlugins>>,
}

impl Foundation {
    /// Starts the runtime and loads the configured plugins and keys
    /// (creating a keyset when the keyring allows it).
    pub async fn open(config: &Config) -> Result<Foundation, StartError> {
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
        // A missing table or mount, or a refused credential, shows here,
        // named, rather than as the first failed read.
        storage
            .get(crate::store::layout::HEALTH_PROBE)
            .await
            .map_err(|e| StartError(format!("storage: {e}")))?;
        // A store `coffer migrate` moved away from is history: its records
        // live on (and change) in the target.
        if let Some(moved) = storage
            .get(crate::store::layout::MIGRATED)
            .await
            .map_err(|e| StartError(format!("storage: {e}")))?
        {
            return Err(StartError(format!(
                "storage: {}; point [storage] at that store (the section `coffer migrate` \
                 moved to)",
                String::from_utf8_lossy(&moved.value)
            )));
        }
        let mut plugins = vec![PluginInfo {
            kind: "storage",
            name: storage.name().to_owned(),
            sha256: storage.sha256().to_owned(),
        }];
        let root = match &config.kms {
            Some(section) => {
                let kms = plugins::load_kms(&runtime, config, section)
                    .await
                    .map_err(|e| StartError(e.to_string()))?;
                plugins.push(PluginInfo {
                    kind: "kms",
                    name: kms.name().to_owned(),
                    sha256: kms.sha256().to_owned(),
                });
                LiveRoot::Kms(Arc::new(Live::new(Arc::new(kms))))
            }
            None => {
                let keyring = plugins::load_keyring(&runtime, config)
                    .await
                    .map_err(|e| StartError(e.to_string()))?;
                plugins.push(PluginInfo {
                    kind: "keyring",
                    name: keyring.name().to_owned(),
                    sha256: keyring.sha256().to_owned(),
                });
                if config.keyring.is_none() {
                    tracing::warn!(
                        keyset = %config.default_keyset_path().display(),
                        "the root keyset sits next to the data it protects: fine for \
                         development, not for production (configure [keyring] with a key kept \
                         elsewhere, or [kms])"
                    );
                }
                LiveRoot::Keyring(Arc::new(Live::new(Arc::new(keyring))))
            }
        };
        let storage = Arc::new(Live::<dyn Storage>::new(Arc::new(storage)));
        let live = Arc::new(LivePlugins::new(
            runtime,
            storage.clone(),
            root.clone(),
            plugins.clone(),
        ));
        let mut foundation = Foundation::assemble(storage, root.source(), sql, plugins).await?;
        foundation.live = Some(live);
        Ok(foundation)
    }

    /// The foundation over a storage and a root (keyring or KMS) already
    /// running.
    pub async fn assemble(
        storage: Arc<dyn Storage>,
        root: RootSource,
        sql: Option<Arc<SqlPool>>,
        plugins: Vec<PluginInfo>,
    ) -> Result<Foundation, StartError> {
        let section = match root {
            RootSource::Keyring(_) => "keyring",
            RootSource::Kms(_) => "kms",
        };
        let (root, created) = RootKeys::open(root)
            .await
            .map_err(|e| StartError(format!("{section}: {e}")))?;
        let kek = root.current();
        if created {
            tracing::warn!(
                "created a new root keyset through the keyring plugin; back it up: without it \
                 no secret can be read"
            );
        }
        let system = async |name: &str| {
            system_key(storage.as_ref(), &kek, name)
                .await
                .map_err(|e| StartError(format!("refusing to serve: system key {name}: {e}")))
        };
        let records_key = system(crate::keys::system::RECORDS).await?;
        let audit_key = system(crate::keys::system::AUDIT).await?;
        let records_key =
            RecordKey::new(&records_key).map_err(|e| StartError(format!("the record key: {e}")))?;
        let names = Arc::new(Pseudonyms::new(audit_key.clone()));
        let store = Arc::new(Store::new(storage.clone(), records_key, names.clone()));
        Ok(Foundation {
            storage,
            root: Arc::new(root),
            store,
            names,
            audit_key,
            plugins,
            sql,
            live: None,
        })
    }
}

/// Everything a request needs.
pub struct Coffer {
    pub secrets: Arc<Secrets>,
    pub keys: Arc<KeyAdmin>,
    pub janitor: Arc<Janitor>,
    pub audit: Arc<Audit>,
    pub auth: Auth,
    pub storage: Arc<dyn Storage>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The sealed transport's keys and replay memory.
    pub transport: Arc<Transport>,
    foundation: Foundation,
    /// Where the config was read from, to read it again on a reload.
    config_source: std::sync::OnceLock<ConfigSource>,
}

impl Coffer {
    /// Starts the engine of `config`.
    pub async fn open(config: &Config) -> Result<Coffer, StartError> {
        let foundation = Foundation::open(config).await?;
        Coffer::assemble(foundation, config).await
    }

    /// Builds the services on `foundation`, after checking that the store
    /// holds this build's format and that every stored key's KEK is here.
    pub async fn assemble(foundation: Foundation, config: &Config) -> Result<Coffer, StartError> {
        let refuse = |e: crate::error::Error| StartError(format!("refusing to serve: {e}"));
        format::check(&foundation.store).await.map_err(refuse)?;
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
        let store = foundation.store.clone();
        let keys = Arc::new(DataKeys::new(
            store.clone(),
            foundation.root.clone(),
            config.data_key_settings(),
        ));
        let secrets = Arc::new(Secrets::new(
            store.clone(),
            keys.clone(),
            SecretsSettings {
                max_versions: config.max_versions,
                max_value_bytes: config.max_value_bytes,
            },
        ));
        let lease = Arc::new(Lease::new(
            store.clone(),
            config.node_name(),
            Duration::from_millis(config.keys.lease_ttl_ms),
        ));
        let key_admin = Arc::new(KeyAdmin::new(
            store.clone(),
            keys.clone(),
            secrets.clone(),
            lease.clone(),
            foundation.names.clone(),
            foundation.sql.clone(),
            config.key_admin_settings(),
        ));
        key_admin
            .check_keks(&foundation.root.current())
            .await
            .map_err(refuse)?;
        tracing::debug!("every data key's KEK is in the keyset");
        let audit_settings = config.audit_settings();
        if !audit_settings.enabled {
            tracing::warn!(
                "the audit trail is disabled ([audit] enabled = false): requests leave no record"
            );
        }
        let audit = Audit::open(
            audit_settings,
            &foundation.audit_key,
            foundation.names.clone(),
            store.clone(),
            config.node_name(),
        )
        .await
        .map_err(|e| StartError(format!("refusing to serve: the audit trail: {e}")))?;
        let janitor = Arc::new(Janitor::new(
            key_admin.clone(),
            lease,
            config.janitor_settings(),
        ));
        Ok(Coffer {
            secrets,
            keys: key_admin,
            janitor,
            audit: Arc::new(audit),
            auth: Auth::new(store.clone()),
            transport: Arc::new(Transport::new(
                store,
                foundation.root.clone(),
                config.transport_settings(),
            )),
            storage: foundation.storage.clone(),
            metrics: Arc::new(crate::metrics::Metrics::new(
                foundation.live.as_ref().map(|live| live.call_metrics()),
                config.metrics.unauthenticated,
            )),
            foundation,
            config_source: std::sync::OnceLock::new(),
        })
    }

    /// The plugins serving now.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        match &self.foundation.live {
            Some(live) => live.infos(),
            None => self.foundation.plugins.clone(),
        }
    }

    /// Remembers where the config came from, for [`Coffer::reload_config`].
    pub fn set_config_source(&self, source: ConfigSource) {
        let _ = self.config_source.set(source);
    }

    /// Reads the config again from where it came from and reloads the
    /// plugins it names.
    pub async fn reload_config(
        &self,
    ) -> Result<Vec<plugins::reload::Reloaded>, plugins::reload::ReloadError> {
        let source = self.config_source.get().ok_or_else(|| {
            plugins::reload::ReloadError("this engine was not started from a config".to_owned())
        })?;
        let config = Config::load(
            source.file.as_deref(),
            std::env::vars(),
            source.data_dir.as_deref(),
        )
        .map_err(|e| plugins::reload::ReloadError(format!("the configuration: {e}")))?;
        self.reload_plugins(&config).await
    }

    /// Starts moving the records to storage section `to` of the config
    /// this server was started from (see [`plugins::migrate`]).
    pub fn start_migration(
        &self,
        to: String,
    ) -> crate::error::Result<plugins::migrate::MigrationStatus> {
        let live = self.foundation.live.as_ref().ok_or_else(|| {
            crate::error::Error::Invalid(
                "this engine's plugins were not loaded from a config".to_owned(),
            )
        })?;
        let source = self.config_source.get().ok_or_else(|| {
            crate::error::Error::Invalid("this engine was not started from a config".to_owned())
        })?;
        let config = Config::load(
            source.file.as_deref(),
            std::env::vars(),
            source.data_dir.as_deref(),
        )
        .map_err(|e| crate::error::Error::Invalid(format!("the configuration: {e}")))?;
        live.start_migration(config, to, self.keys.clone())
    }

    /// The last migration's status, if one ran.
    pub fn migration(&self) -> Option<plugins::migrate::MigrationStatus> {
        self.foundation
            .live
            .as_ref()
            .and_then(|live| live.migration())
    }

    /// Loads the plugin sections of `config` again and swaps in what
    /// passes every check (see [`plugins::reload`]); what fails leaves the
    /// running plugins serving.
    pub async fn reload_plugins(
        &self,
        config: &Config,
    ) -> Result<Vec<plugins::reload::Reloaded>, plugins::reload::ReloadError> {
        let live = self.foundation.live.as_ref().ok_or_else(|| {
            plugins::reload::ReloadError(
                "this engine's plugins were not loaded from a config".to_owned(),
            )
        })?;
        live.reload(config, &self.keys).await
    }

    /// For a KMS root, whether the KMS answers; none for a keyring.
    pub async fn kms_answers(&self) -> Option<bool> {
        self.foundation.root.kms_answers().await
    }

    /// Starts the background work (the key janitor, audit checkpoints and
    /// retention); call once serving.
    pub fn start_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        [
            self.janitor.clone().spawn(),
            self.audit.clone().spawn_maintenance(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Checkpoints the audit trail and closes database pools (so SQLite
    /// checkpoints its WAL).
    pub async fn close(&self) {
        if let Err(error) = self.audit.checkpoint().await {
            tracing::warn!(%error, "could not checkpoint the audit trail at shutdown");
        }
        if let Some(sql) = &self.foundation.sql {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An engine on in-memory storage and keyring, without an audit trail.
    async fn engine() -> Coffer {
        let config = Config::parse("[audit]\nenabled = false\n", "test", Vec::new(), None).unwrap();
        crate::memory::engine(&config).await.unwrap()
    }

    #[tokio::test]
    async fn the_first_write_in_a_namespace_creates_its_keys_without_waiting_on_itself() {
        // The first write of a namespace creates its key set while the
        // secret's record is being edited: whatever locks the two keys map
        // to, neither edit may wait on the other.
        let coffer = engine().await;
        let writes = async {
            for i in 0..2_000 {
                let namespace = format!("ns-{i}");
                coffer
                    .secrets
                    .put(&namespace, "first", b"v", None)
                    .await
                    .unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(120), writes)
            .await
            .expect("a write waited on itself");
        let value = coffer.secrets.get("ns-1999", "first", None).await.unwrap();
        assert_eq!(value.value.as_slice(), b"v");
    }

    #[tokio::test]
    async fn a_kms_that_drops_the_associated_data_is_refused_at_start() {
        use crate::memory::{MemoryKms, MemoryStorage};
        let config = Config::parse("[audit]\nenabled = false\n", "test", Vec::new(), None).unwrap();
        let kms = Arc::new(MemoryKms::ignoring_aad());
        let outcome = crate::memory::engine_on(
            &config,
            Arc::new(MemoryStorage::default()),
            RootSource::Kms(kms),
        )
        .await;
        let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("associated data"), "{error}");
    }

    #[tokio::test]
    async fn a_kms_root_wraps_data_keys_rotates_and_costs_no_call_per_read() {
        use crate::memory::{MemoryKms, MemoryStorage};
        let config = Config::parse(
            "[audit]\nenabled = false\n[keys]\ncache_ttl_ms = 20\n",
            "test",
            Vec::new(),
            None,
        )
        .unwrap();
        let storage = Arc::new(MemoryStorage::default());
        let kms = Arc::new(MemoryKms::default());
        let open =
            || crate::memory::engine_on(&config, storage.clone(), RootSource::Kms(kms.clone()));
        let coffer = open().await.unwrap();
        coffer.secrets.put("app", "db", b"v1", None).await.unwrap();
        let warm = kms.calls();
        for _ in 0..1_000 {
            coffer.secrets.get("app", "db", None).await.unwrap();
        }
        assert_eq!(
            kms.calls(),
            warm,
            "cached data keys: reads cost no KMS call"
        );
        // Past the cache's time to live the set is read again from storage,
        // but keys whose wrapped bytes did not change are not unwrapped
        // again: still no KMS call.
        tokio::time::sleep(Duration::from_millis(60)).await;
        coffer.secrets.get("app", "db", None).await.unwrap();
        assert_eq!(kms.calls(), warm, "a set read again is not unwrapped again");

        let status = coffer.keys.kek_status().await.unwrap();
        assert_eq!((status.root, status.primary_key_id), ("kms", 1));
        let report = coffer.keys.kek_rotate().await.unwrap();
        assert_eq!(report.primary_key_id, 2);
        assert_eq!(report.data_keys_rewrapped, 1);
        assert_eq!(report.system_keys_rewrapped, 2);
        let status = coffer.keys.kek_status().await.unwrap();
        assert_eq!(status.pending_rewrap, 0);

        // Another engine on the same storage and KMS reads it all back.
        drop(coffer);
        let coffer = open().await.unwrap();
        let value = coffer.secrets.get("app", "db", None).await.unwrap();
        assert_eq!(value.value.as_slice(), b"v1");
    }
}
