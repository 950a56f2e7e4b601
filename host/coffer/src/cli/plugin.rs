//! `coffer plugin check`: runs the plugin contract's checks (the suite in
//! `coffer_runtime::conformance`, the one the project's own tests run)
//! against a component, with the grants of a config section, or on scratch
//! grants made for the run. `coffer plugin new`: a crate to start from
//! ([`super::scaffold`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Subcommand};
use coffer_runtime::conformance::{self, KmsChecks, Report, Scope};
use coffer_runtime::{
    KeyringPlugin, KmsPlugin, PluginKind, Runtime, RuntimeOptions, StoragePlugin,
};

use super::client::{Connection, Failure, exit, request};
use super::scaffold;
use crate::config::{Config, PluginSection};
use crate::plugins;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Check a plugin against the contract of its kind (storage, keyring,
    /// kms); exits 1 if any check fails.
    Check(CheckArgs),
    /// Have a running server load its plugin sections again and swap in
    /// what passes every check (as SIGHUP does); needs `sys`.
    Reload {
        #[command(flatten)]
        connection: Connection,
    },
    /// Make a plugin crate (outside any workspace) that depends on
    /// coffer-sdk alone and passes `coffer plugin check` as it is.
    New {
        /// The crate's name.
        name: String,
        #[arg(long, value_enum)]
        kind: scaffold::Kind,
        /// Where to make it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Depend on the SDK in this checkout instead of by version.
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct CheckArgs {
    /// The component (.wasm) to check.
    file: PathBuf,
    /// Take the grants (database, files, origin, credentials) and plugin
    /// config from this coffer.toml's section…
    #[arg(long, requires = "section")]
    config: Option<PathBuf>,
    /// …named here: storage, keyring or kms.
    #[arg(long, requires = "config")]
    section: Option<String>,
    /// Also rotate the KMS key (it stays rotated).
    #[arg(long)]
    rotate: bool,
    /// Set a key of the plugin's config table (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub async fn run(command: PluginCommand) -> ExitCode {
    match command {
        PluginCommand::Check(args) => match check(args).await {
            Ok(report) => {
                print!("{report}");
                if report.passed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(error) => {
                eprintln!("coffer: {error}");
                ExitCode::from(2)
            }
        },
        PluginCommand::Reload { connection } => exit(reload(&connection).await),
        PluginCommand::New {
            name,
            kind,
            dir,
            sdk_path,
        } => match new(&name, kind, dir, sdk_path) {
            Ok(dir) => {
                println!("made {} in {}", name, dir.display());
                println!(
                    "next: cd {} && cargo build --target wasm32-wasip2 --release",
                    dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("coffer: {error}");
                ExitCode::from(2)
            }
        },
    }
}

/// Asks the server to reload; prints what runs now.
async fn reload(connection: &Connection) -> Result<(), Failure> {
    let url = format!(
        "{}/v1/sys/plugins/reload",
        connection.addr.trim_end_matches('/')
    );
    let answer = request(reqwest::Method::POST, &url, None).await?;
    for plugin in answer["reloaded"].as_array().into_iter().flatten() {
        let (before, now) = (
            plugin["sha256_before"].as_str().unwrap_or_default(),
            plugin["sha256"].as_str().unwrap_or_default(),
        );
        println!(
            "{:<8} {:<20} {}",
            plugin["kind"].as_str().unwrap_or_default(),
            plugin["name"].as_str().unwrap_or_default(),
            if before == now {
                format!("sha256 {now} (unchanged)")
            } else {
                format!("sha256 {before} -> {now}")
            }
        );
    }
    Ok(())
}

/// Writes the crate; refuses to touch a directory that is not empty.
fn new(
    name: &str,
    kind: scaffold::Kind,
    dir: Option<PathBuf>,
    sdk_path: Option<PathBuf>,
) -> Result<PathBuf, String> {
    if !scaffold::valid_name(name) {
        return Err(format!(
            "`{name}` is not a crate name: a lowercase letter, then letters, digits, - or _"
        ));
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let sdk_path = sdk_path
        .map(|path| std::path::absolute(&path).map_err(|e| format!("{}: {e}", path.display())))
        .transpose()?;
    for (path, text) in scaffold::files(name, kind, sdk_path.as_deref()) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(dir)
}

/// Loads the plugin with the grants asked for and runs its kind's checks.
async fn check(args: CheckArgs) -> Result<Report, String> {
    // Scratch grants (a SQLite database, a keyset file) live in here.
    let scratch =
        tempfile::tempdir().map_err(|e| format!("cannot make a scratch directory: {e}"))?;
    let runtime = Runtime::new(RuntimeOptions { cache_dir: None }).map_err(|e| e.to_string())?;
    let kind = runtime.kind_of(&args.file).map_err(|e| e.to_string())?;
    let file = args.file.display().to_string();
    let (config, mut section, scratch_grants) = match (&args.config, &args.section) {
        (Some(path), Some(name)) => {
            let config =
                Config::load(Some(path), std::env::vars(), None).map_err(|e| e.to_string())?;
            let section = section_of(&config, name, kind)?;
            (config, section, false)
        }
        _ => {
            // Not the environment: COFFER_* variables could name a real
            // database or keyset, which the checks would write over.
            let config = Config::load(None, std::iter::empty(), Some(scratch.path()))
                .map_err(|e| e.to_string())?;
            let section = match kind {
                PluginKind::Storage => config.storage_section(),
                PluginKind::Keyring => config.keyring_section(),
                PluginKind::Kms => {
                    return Err(
                        "a KMS plugin needs its KMS: give --config and --section kms".to_owned(),
                    );
                }
            };
            (config, section, true)
        }
    };
    // The file under check stands in for the section's plugin, unpinned.
    section.plugin = absolute(&args.file)?;
    section.sha256 = None;
    for pair in &args.set {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--set {pair}: expected KEY=VALUE"))?;
        section
            .config
            .insert(key.to_owned(), toml::Value::String(value.to_owned()));
    }
    let spec = plugins::spec(&config, kind.as_str(), &section)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("checking {file} as a {} plugin", kind.as_str());
    let started = Instant::now();
    let report = match kind {
        PluginKind::Storage => {
            let plugin = StoragePlugin::load(&runtime, spec)
                .await
                .map_err(|e| e.to_string())?;
            let scope = if scratch_grants {
                Scope::scratch()
            } else {
                Scope::under("coffer-plugin-check/")
            };
            conformance::storage(Arc::new(plugin), scope).await
        }
        PluginKind::Keyring => {
            let plugin = KeyringPlugin::load(&runtime, spec)
                .await
                .map_err(|e| e.to_string())?;
            // Store checks replace the keyset: only on a scratch file.
            conformance::keyring(Arc::new(plugin), scratch_grants).await
        }
        PluginKind::Kms => {
            let plugin = KmsPlugin::load(&runtime, spec)
                .await
                .map_err(|e| e.to_string())?;
            conformance::kms(
                Arc::new(plugin),
                KmsChecks {
                    rotate: args.rotate,
                },
            )
            .await
        }
    };
    eprintln!("checked in {} ms", started.elapsed().as_millis());
    Ok(report)
}

/// The section `name` of `config`, which must hold a plugin of `kind`.
fn section_of(config: &Config, name: &str, kind: PluginKind) -> Result<PluginSection, String> {
    let (section, section_kind) = match name {
        "storage" => (config.storage.clone(), PluginKind::Storage),
        "keyring" => (config.keyring.clone(), PluginKind::Keyring),
        "kms" => (config.kms.clone(), PluginKind::Kms),
        other => {
            return Err(format!(
                "--section {other}: expected storage, keyring or kms"
            ));
        }
    };
    if section_kind != kind {
        return Err(format!(
            "the plugin is a {} plugin, but [{name}] is for {} plugins",
            kind.as_str(),
            section_kind.as_str()
        ));
    }
    section.ok_or_else(|| format!("the configuration has no [{name}] section"))
}

fn absolute(path: &Path) -> Result<String, String> {
    let path = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.display().to_string())
}
