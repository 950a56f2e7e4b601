//! `coffer plugin new`: a plugin crate outside any workspace, depending on
//! `coffer-sdk` alone, whose `src/lib.rs` is the SDK's example of its kind
//! (a complete plugin that passes `coffer plugin check`), with a README
//! saying how to build, check and configure it.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

/// The kinds of plugin a crate can be made for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    Storage,
    Keyring,
    Kms,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Storage => "storage",
            Kind::Keyring => "keyring",
            Kind::Kms => "kms",
        }
    }

    /// The SDK example the crate starts from.
    fn source(self) -> &'static str {
        match self {
            Kind::Storage => include_str!("../../../../sdk/examples/storage.rs"),
            Kind::Keyring => include_str!("../../../../sdk/examples/keyring.rs"),
            Kind::Kms => include_str!("../../../../sdk/examples/kms.rs"),
        }
    }

    /// The `coffer.toml` section that loads the plugin, with the grants
    /// its example uses.
    fn section(self, wasm: &str) -> String {
        match self {
            Kind::Storage => format!(
                "[storage]\nplugin = \"{wasm}\"\n[storage.sql]\nurl = \"sqlite:///var/lib/coffer/kv.db\"\n\
                 [storage.config]\ntable = \"kv\"\n"
            ),
            Kind::Keyring => format!(
                "[keyring]\nplugin = \"{wasm}\"\n[keyring.config]\n\
                 create_if_missing = false         # true once, to create the keyset\n\
                 [keyring.files]\n\
                 keyset = {{ path = \"/etc/coffer/keyset.json\", writable = true }}\n"
            ),
            Kind::Kms => format!(
                "[kms]\nplugin = \"{wasm}\"\n[kms.config]\nkey = \"coffer\"\n[kms.http]\n\
                 origin = \"https://vault.internal:8200\"\nauth = \"vault-token\"\n\
                 token_file = \"/run/secrets/coffer-kms-token\"\npaths = [\"/v1/transit/\"]\n"
            ),
        }
    }
}

/// Whether `name` can be a crate name: a letter, then letters, digits, `-`, `_`.
pub fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.len() <= 64
}

/// How the crate depends on the SDK: `sdk_path` when given (a checkout),
/// otherwise by version, with the other forms in comments.
fn dependency(sdk_path: Option<&Path>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match sdk_path {
        Some(path) => format!(
            "coffer-sdk = {{ path = {:?} }}\n# Or, from crates.io: coffer-sdk = \"{version}\"\n",
            path.display().to_string()
        ),
        None => format!(
            "coffer-sdk = \"{version}\"\n\
             # Or from a checkout of coffer: coffer-sdk = {{ path = \"../coffer/sdk\" }}\n\
             # Or from its repository: coffer-sdk = {{ git = \"https://example.invalid/coffer\", tag = \"v{version}\" }}\n"
        ),
    }
}

/// The files of crate `name`, by path relative to its directory.
pub fn files(name: &str, kind: Kind, sdk_path: Option<&Path>) -> Vec<(PathBuf, String)> {
    let wasm = format!("{}.wasm", name.replace('-', "_"));
    let cargo = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [lib]\n# A WebAssembly component: cargo build --target wasm32-wasip2 --release\n\
         crate-type = [\"cdylib\"]\n\n[dependencies]\n{}\n\
         [profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\n\n\
         # Its own workspace, wherever it is created.\n[workspace]\n",
        dependency(sdk_path)
    );
    let readme = format!(
        "# {name}\n\nA coffer {kind} plugin.\n\n\
         ```sh\nrustup target add wasm32-wasip2\n\
         cargo build --target wasm32-wasip2 --release\n\
         coffer plugin check target/wasm32-wasip2/release/{wasm}{check}\n```\n\n\
         `coffer plugin check` runs the contract's checks for its kind (each rule \
         of `{kind}.wit` in coffer-sdk's `wit/`, the concurrency ones included) and \
         exits 1 if one fails. \
         Then load it from `coffer.toml`:\n\n```toml\n{section}```\n\n\
         Pin the build you reviewed with `sha256 = \"…\"` (`sha256sum {wasm}`).\n",
        kind = kind.name(),
        check = match kind {
            Kind::Kms => " --config coffer.toml --section kms",
            _ => "",
        },
        section = kind.section(&format!("/usr/lib/coffer/plugins/{wasm}")),
    );
    vec![
        (PathBuf::from("Cargo.toml"), cargo),
        (PathBuf::from("src/lib.rs"), kind.source().to_owned()),
        (PathBuf::from("README.md"), readme),
        (PathBuf::from(".gitignore"), "/target\n".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_crates_depend_on_the_sdk_version_this_coffer_was_built_with() {
        let manifest = include_str!("../../../../sdk/Cargo.toml");
        let version = manifest
            .lines()
            .find_map(|line| line.strip_prefix("version = "))
            .map(|v| v.trim_matches('"'));
        assert_eq!(version, Some(env!("CARGO_PKG_VERSION")));
    }
}
