//! coffer-runtime: runs coffer's backends as sandboxed WebAssembly components.
//!
//! One [`Runtime`] owns the wasmtime engine, the on-disk cache of compiled
//! components and the epoch ticker that bounds CPU time. Plugins loaded from it
//! are exposed as plain Rust traits ([`Storage`], [`Keyring`], [`Kms`]); nothing here
//! knows what a secret is.
//!
//! Every plugin runs in its own store with only the capabilities its
//! configuration grants, within a memory limit, a CPU budget and a wall-clock
//! deadline per call. A call that traps, loops or runs out of memory fails
//! with a [`PluginError`] and its instance is thrown away; the next call gets
//! a fresh one.

#![deny(unsafe_code)]

mod bindings;
mod cache;
mod capabilities;
pub mod conformance;
mod engine;
mod error;
pub mod keyring;
pub mod kms;
mod limits;
pub mod metrics;
mod plugin;
mod pool;
mod state;
pub mod storage;
mod text;

pub use cache::create_private_dir;
pub use capabilities::Grants;
pub use capabilities::files::{FileGrant, MAX_FILE_BYTES};
pub use capabilities::http::{HttpAuth, HttpClient, HttpGrant};
pub use capabilities::sql::{SqlDialect, SqlPool};
pub use engine::{Runtime, RuntimeOptions};
pub use error::{GuestError, LoadError, PluginError, PluginFailure};
pub use keyring::{Keyring, KeyringPlugin};
pub use kms::{Kms, KmsKey, KmsPlugin, KmsWrapped};
pub use limits::Limits;
pub use plugin::{PluginKind, PluginSpec};
pub use storage::{Entry, Expected, MAX_BATCH, Page, Storage, StoragePlugin, Write};
