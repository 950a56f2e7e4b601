//! Turning the `[storage]` and `[keyring]` sections into running plugins:
//! resolve the `.wasm`, open granted databases, list the granted files,
//! read the granted environment variables, and load each through the
//! runtime.

use std::collections::BTreeMap;
use std::env::VarError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_runtime::{
    FileGrant, KeyringPlugin, PluginSpec, Runtime, SqlPool, StoragePlugin, create_private_dir,
};

use zeroize::Zeroizing;

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

/// Loads the storage plugin of `config`, opening its database grant.
pub async fn load_storage(
    runtime: &Runtime,
    config: &Config,
) -> Result<(StoragePlugin, Option<Arc<SqlPool>>), PluginStartError> {
    let section = config.storage_section();
    let sql = match &section.sql {
        Some(grant) => {
            if let Some(path) = grant.url.strip_prefix("sqlite://")
                && let Some(parent) = Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    PluginStartError(format!(
                        "storage.sql.url: cannot create {}: {e}",
                        parent.display()
                    ))
                })?;
            }
            let statement_timeout = section.limits.to_limits().call_timeout;
            let pool = SqlPool::connect(&grant.url, grant.max_connections, statement_timeout)
                .await
                .map_err(|e| PluginStartError(format!("storage.sql.url: {e}")))?;
            Some(Arc::new(pool))
        }
        None => None,
    };
    let spec = spec(
        config,
        "storage",
        &section,
        plugin_config(&section),
        Vec::new(),
    )?;
    let plugin = StoragePlugin::load(runtime, spec, sql.clone())
        .await
        .map_err(|e| PluginStartError(e.to_string()))?;
    Ok((plugin, sql))
}

/// Loads the keyring plugin of `config`, lending it exactly the files its
/// section grants.
pub async fn load_keyring(
    runtime: &Runtime,
    config: &Config,
) -> Result<KeyringPlugin, PluginStartError> {
    let section = config.keyring_section();
    let plugin_config = plugin_config(&section);
    warn_if_key_inline(&plugin_config);
    let files = file_grants(&section)?;
    let spec = spec(config, "keyring", &section, plugin_config, files)?;
    KeyringPlugin::load(runtime, spec)
        .await
        .map_err(|e| PluginStartError(e.to_string()))
}

/// A root key written into the configuration is readable by whoever reads
/// the configuration: say so once (never the key itself).
fn warn_if_key_inline(plugin_config: &BTreeMap<String, String>) {
    let inline: Vec<String> = ["key", "rotation_key"]
        .iter()
        .filter(|key| plugin_config.contains_key(**key))
        .map(|key| format!("keyring.config.{key}"))
        .collect();
    if !inline.is_empty() {
        tracing::warn!(
            keys = %inline.join(", "),
            "the root key sits in the configuration: whoever can read the config file can read every \
             secret (prefer key_env with the variable granted in keyring.env)"
        );
    }
}

/// The section's file grants. The directory of a writable file is created
/// (owner-only) when missing, so a keyset can be created in it.
fn file_grants(section: &PluginSection) -> Result<Vec<FileGrant>, PluginStartError> {
    let mut grants = Vec::with_capacity(section.files.len());
    for (name, grant) in &section.files {
        if grant.writable
            && let Some(dir) = grant.path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            create_private_dir(dir).map_err(|e| {
                PluginStartError(format!(
                    "keyring.files.{name}: cannot create {}: {e}",
                    dir.display()
                ))
            })?;
        }
        grants.push(FileGrant {
            name: name.clone(),
            path: grant.path.clone(),
            writable: grant.writable,
        });
    }
    Ok(grants)
}

fn plugin_config(section: &PluginSection) -> BTreeMap<String, String> {
    section
        .config
        .iter()
        .filter_map(|(k, v)| scalar_string(v).map(|v| (k.clone(), v)))
        .collect()
}

/// The runtime's spec for the plugin of section `section_name`.
fn spec(
    config: &Config,
    section_name: &str,
    section: &PluginSection,
    plugin_config: BTreeMap<String, String>,
    files: Vec<FileGrant>,
) -> Result<PluginSpec, PluginStartError> {
    Ok(PluginSpec {
        name: plugin_name(&section.plugin),
        wasm_path: resolve(config, &section.plugin)?,
        sha256: section.sha256.clone(),
        config: plugin_config,
        limits: section.limits.to_limits(),
        files,
        clock: section.clock,
        env: granted_env(section_name, &section.env)?,
    })
}

/// The host's values of the variables `<section_name>.env` grants; each
/// must be set (a grant of nothing is a mistake worth stopping for).
fn granted_env(
    section_name: &str,
    names: &[String],
) -> Result<Vec<(String, Zeroizing<String>)>, PluginStartError> {
    let mut env: Vec<(String, Zeroizing<String>)> = Vec::with_capacity(names.len());
    for name in names {
        let fail = |what: &str| PluginStartError(format!("{section_name}.env: {name} {what}"));
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(PluginStartError(format!(
                "{section_name}.env: `{name}` is not an environment variable name"
            )));
        }
        if env.iter().any(|(granted, _)| granted == name) {
            continue;
        }
        match std::env::var(name) {
            Ok(value) => env.push((name.clone(), Zeroizing::new(value))),
            Err(VarError::NotPresent) => return Err(fail("is not set")),
            Err(VarError::NotUnicode(_)) => return Err(fail("is not valid UTF-8")),
        }
    }
    Ok(env)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn granted_variables_are_read_from_the_host() {
        let (name, value) = std::env::vars().next().unwrap();
        let env = granted_env("keyring", &[name.clone(), name.clone()]).unwrap();
        assert_eq!(
            env,
            [(name, Zeroizing::new(value))],
            "read once, duplicates dropped"
        );
    }

    #[test]
    fn a_granted_variable_that_is_not_set_stops_the_start() {
        let error = granted_env("keyring", &names(&["COFFER_TEST_NEVER_SET_4F1C"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "keyring.env: COFFER_TEST_NEVER_SET_4F1C is not set"
        );
        let error = granted_env("storage", &names(&["A=B"])).unwrap_err();
        assert!(error.to_string().starts_with("storage.env:"), "{error}");
    }
}
