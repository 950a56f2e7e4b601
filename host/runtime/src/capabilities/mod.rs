//! Host capabilities a plugin may import: `log`, `config`, `sql` and
//! `files`.
//!
//! Each is linked only into the plugin kinds that may have it; `sql` and
//! `files` further answer `denied` unless the plugin's configuration grants
//! a database or the named file.

pub mod config;
pub mod files;
pub(crate) mod log;
pub mod sql;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings;
use crate::state::PluginState;

/// Links the capabilities every plugin kind gets: `log` and `config`.
pub fn add_common(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    bindings::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::log::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::config::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// Links the `files` capability.
pub fn add_files(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    bindings::files::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

/// Links the `sql` capability.
pub fn add_sql(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    bindings::sql::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

impl bindings::types::Host for PluginState {}
