//! Turning the `[storage]`, `[keyring]` and `[kms]` sections into running
//! plugins: resolve the `.wasm`, make the grants its section gives
//! ([`grants`], [`http`]) and load it through the runtime. Every error
//! names the section at fault.

mod grants;
mod http;
mod live;
pub mod migrate;
pub mod reload;

pub use live::Live;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_runtime::{KeyringPlugin, KmsPlugin, PluginSpec, Runtime, SqlPool, StoragePlugin};

use crate::config::{Config, PluginSection, scalar_string};

/// What was loaded, for health and the plugin listing.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PluginInfo {
    pub kind: &'static str,
    pub name: String,
    pub sha256: String,
}

/// Why a plugin could not be started; the message is for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PluginStartError(pub String);

/// Loads the storage plugin of `config`. Returns the database it was
/// lent, if any, which key management also uses.
pub async fn load_storage(
    runtime: &Runtime,
    config: &Config,
) -> Result<(StoragePlugin, Option<Arc<SqlPool>>), PluginStartError> {
    let section = config.storage_section();
    let spec = spec(config, "storage", &section).await?;
    let sql = spec.grants.sql.clone();
    let plugin = StoragePlugin::load(runtime, spec)
        .await
        .map_err(|e| PluginStartError(format!("storage: {e}")))?;
    Ok((plugin, sql))
}

/// Loads the storage plugin of section `name` (such as `storage_next`).
pub async fn load_storage_section(
    runtime: &Runtime,
    config: &Config,
    name: &str,
    section: &PluginSection,
) -> Result<StoragePlugin, PluginStartError> {
    let spec = spec(config, name, section).await?;
    StoragePlugin::load(runtime, spec)
        .await
        .map_err(|e| PluginStartError(format!("{name}: {e}")))
}

/// Loads the keyring plugin of `config`, lending it exactly the files its
/// section grants.
pub async fn load_keyring(
    runtime: &Runtime,
    config: &Config,
) -> Result<KeyringPlugin, PluginStartError> {
    let section = config.keyring_section();
    let spec = spec(config, "keyring", &section).await?;
    KeyringPlugin::load(runtime, spec)
        .await
        .map_err(|e| PluginStartError(format!("keyring: {e}")))
}

/// Loads the KMS plugin of `config`'s `[kms]` section.
pub async fn load_kms(
    runtime: &Runtime,
    config: &Config,
    section: &PluginSection,
) -> Result<KmsPlugin, PluginStartError> {
    let spec = spec(config, "kms", section).await?;
    KmsPlugin::load(runtime, spec)
        .await
        .map_err(|e| PluginStartError(format!("kms: {e}")))
}

/// The runtime's spec for the plugin of section `name`, its grants made.
pub async fn spec(
    config: &Config,
    name: &str,
    section: &PluginSection,
) -> Result<PluginSpec, PluginStartError> {
    Ok(PluginSpec {
        name: plugin_name(&section.plugin),
        wasm_path: resolve(config, &section.plugin)?,
        sha256: section.sha256.clone(),
        config: section
            .config
            .iter()
            .filter_map(|(k, v)| scalar_string(v).map(|v| (k.clone(), v)))
            .collect(),
        limits: section.limits.to_limits(),
        grants: grants::make(name, section).await?,
    })
}

/// The name a plugin is shown under: its file stem for paths.
fn plugin_name(plugin: &str) -> String {
    if is_path(plugin) {
        Path::new(plugin)
            .file_stem()
            .map_or_else(|| plugin.to_owned(), |s| s.to_string_lossy().into_owned())
    } else {
        plugin.to_owned()
    }
}

fn is_path(plugin: &str) -> bool {
    plugin.contains('/') || plugin.ends_with(".wasm")
}

/// A path as given, or `<dir>/<name>.wasm` from the first plugin directory
/// that has it.
fn resolve(config: &Config, plugin: &str) -> Result<PathBuf, PluginStartError> {
    if is_path(plugin) {
        return Ok(PathBuf::from(plugin));
    }
    let dirs = plugin_dirs(config);
    let file = format!("{plugin}.wasm");
    dirs.iter()
        .map(|dir| dir.join(&file))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            PluginStartError(format!(
                "plugin {plugin}: no {file} in {} (build the plugins with `cargo xtask build`, or set plugin_dir)",
                searched.join(", ")
            ))
        })
}

fn plugin_dirs(config: &Config) -> Vec<PathBuf> {
    if let Some(dir) = &config.plugin_dir {
        return vec![dir.clone()];
    }
    let mut dirs = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.join("plugins"));
        if let Some(parent) = exe_dir.parent() {
            dirs.push(parent.join("plugins"));
        }
    }
    dirs.push(PathBuf::from("/usr/lib/coffer/plugins"));
    dirs
}
