//! Building plugin components for wasm32-wasip2 into the plugin directory.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{cargo, status, target_dir};

pub const TARGET: &str = "wasm32-wasip2";

/// A component crate and the file name it is installed under.
#[derive(Clone, Copy)]
pub struct Component {
    pub package: &'static str,
    artifact: &'static str,
}

/// The plugins coffer ships.
pub const PLUGINS: &[Component] = &[
    Component {
        package: "storage-sql",
        artifact: "storage_sql",
    },
    Component {
        package: "keyring-file",
        artifact: "keyring_file",
    },
    Component {
        package: "storage-vault",
        artifact: "storage_vault",
    },
    Component {
        package: "storage-dynamodb",
        artifact: "storage_dynamodb",
    },
    Component {
        package: "kms-vault-transit",
        artifact: "kms_vault_transit",
    },
    Component {
        package: "kms-aws",
        artifact: "kms_aws",
    },
];

/// Guests that only the tests use.
pub const TEST_GUESTS: &[Component] = &[
    Component {
        package: "hostile-guest",
        artifact: "hostile_guest",
    },
    Component {
        package: "hostile-keyring",
        artifact: "hostile_keyring",
    },
];

/// The plugins and the test guests.
pub fn all_components() -> Vec<Component> {
    [PLUGINS, TEST_GUESTS].concat()
}

/// Where built components are installed; `coffer` looks here by default.
pub fn plugin_dir() -> PathBuf {
    target_dir().join("plugins")
}

/// Installs the wasm32-wasip2 standard library when rustup lacks it.
pub fn ensure_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("cannot run rustup: install Rust with rustup (https://rustup.rs)")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == TARGET)
    {
        status(Command::new("rustup").args(["target", "add", TARGET]))?;
    }
    Ok(())
}

/// Builds `components` in one cargo run and copies them to [`plugin_dir`]
/// as `<package>.wasm`.
pub fn build_components(components: &[Component]) -> Result<()> {
    ensure_target()?;
    let mut build = cargo();
    build.args(["build", "--target", TARGET, "--profile", "wasm"]);
    for component in components {
        build.args(["--package", component.package]);
    }
    status(&mut build)?;
    let out = target_dir().join(TARGET).join("wasm");
    let dir = plugin_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for component in components {
        let from = out.join(format!("{}.wasm", component.artifact));
        let to = dir.join(format!("{}.wasm", component.package));
        std::fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}
