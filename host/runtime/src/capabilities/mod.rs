//! The host capabilities a plugin may import, one module each: `log`,
//! `config`, `sql`, `files` and `http`. Each module holds its grant (what
//! the operator's section lends), its host functions and their linking,
//! and declares itself in [`CAPABILITIES`] with the WIT interface it
//! provides, the plugin kinds that may import it and whether importing it
//! needs a grant. The import check and the linker are both derived from
//! that one table, so a grant, a linker entry and the allow-list cannot
//! disagree.
//!
//! A plugin that imports a capability its kind may not have, or one that
//! needs a grant its section does not give, is refused when it loads.
//! Everything is off by default: a plugin gets `log` and its own `config`,
//! and WASI's cli/io/random/clocks/filesystem/sockets interfaces (what
//! Rust's standard library links against), which grant nothing unless the
//! section grants environment variables or the clock.

pub mod config;
pub mod files;
pub mod http;
pub(crate) mod log;
pub mod sql;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};
use zeroize::Zeroizing;

use crate::bindings;
use crate::plugin::PluginKind;
use crate::state::PluginState;

/// What a plugin's section grants it beyond `log` and its own `config`.
#[derive(Clone, Default)]
pub struct Grants {
    /// A database the host opened (storage plugins).
    pub sql: Option<Arc<sql::SqlPool>>,
    /// Files lent by name (keyrings).
    pub files: Vec<files::FileGrant>,
    /// One origin the host talks to for the plugin (storage and KMS plugins).
    pub http: Option<Arc<http::HttpClient>>,
    /// Environment variables (name, value) the plugin sees; it sees no
    /// other. Values may be secrets: `Debug` shows the names only.
    pub env: Vec<(String, Zeroizing<String>)>,
    /// Whether the plugin may read the real time. Without it, its wall and
    /// monotonic clocks stand still at zero (timers still fire).
    pub clock: bool,
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grants")
            .field("sql", &self.sql)
            .field("files", &self.files)
            .field("http", &self.http)
            .field(
                "env_names",
                &self.env.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field("clock", &self.clock)
            .finish()
    }
}

/// How a capability is granted.
pub(crate) struct Grant {
    /// The section table that grants it (`sql` for `[storage.sql]`).
    pub table: &'static str,
    /// Whether `Grants` holds it.
    pub given: fn(&Grants) -> bool,
}

/// One host capability.
pub(crate) struct Capability {
    /// The WIT interface it provides, without a version.
    pub interface: &'static str,
    /// The plugin kinds that may import it.
    pub kinds: &'static [PluginKind],
    /// What grants it; none for capabilities every plugin of those kinds
    /// has.
    pub grant: Option<Grant>,
    /// Adds its host functions to a linker.
    pub link: fn(&mut Linker<PluginState>) -> wasmtime::Result<()>,
}

pub(crate) const ALL_KINDS: &[PluginKind] =
    &[PluginKind::Storage, PluginKind::Keyring, PluginKind::Kms];

/// Every capability the host provides.
pub(crate) const CAPABILITIES: &[Capability] = &[
    Capability {
        interface: "coffer:plugin/types",
        kinds: ALL_KINDS,
        grant: None,
        link: |linker| bindings::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s),
    },
    log::CAPABILITY,
    config::CAPABILITY,
    sql::CAPABILITY,
    files::CAPABILITY,
    http::CAPABILITY,
];

/// WASI interfaces Rust's standard library imports; they grant nothing by
/// themselves.
const WASI: &[&str] = &[
    "wasi:cli/",
    "wasi:io/",
    "wasi:random/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// Why a plugin may not import `import`, or none when it may.
pub(crate) fn refusal(import: &str, kind: PluginKind, grants: &Grants) -> Option<String> {
    if WASI.iter().any(|prefix| import.starts_with(prefix)) {
        return None;
    }
    let interface = import.split('@').next().unwrap_or(import);
    let Some(capability) = CAPABILITIES.iter().find(|c| c.interface == interface) else {
        return Some(format!("{import}, which coffer does not provide"));
    };
    if !capability.kinds.contains(&kind) {
        return Some(format!(
            "{import}, which {} plugins are not granted",
            kind.as_str()
        ));
    }
    match &capability.grant {
        Some(grant) if !(grant.given)(grants) => Some(format!(
            "{import}, which its section does not grant (add a [<section>.{}] table)",
            grant.table
        )),
        _ => None,
    }
}

/// A linker with WASI and every capability plugins of `kind` may import.
pub(crate) fn linker(
    engine: &wasmtime::Engine,
    kind: PluginKind,
) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    for capability in CAPABILITIES.iter().filter(|c| c.kinds.contains(&kind)) {
        (capability.link)(&mut linker)?;
    }
    Ok(linker)
}

impl bindings::types::Host for PluginState {}
