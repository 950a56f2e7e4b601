//! coffer-sdk: write a coffer backend as a WebAssembly component.
//!
//! A backend is one type implementing [`storage::Storage`] (or
//! [`keyring::Keyring`], or [`kms::Kms`]) and one macro call that exports
//! it:
//!
//! ```ignore
//! use coffer_sdk::Error;
//! use coffer_sdk::storage::{Entry, Expected, Page, Storage};
//!
//! struct Memory;
//!
//! impl Storage for Memory {
//!     fn open() -> Result<Self, Error> {
//!         let _table = coffer_sdk::config::get("table");
//!         Ok(Memory)
//!     }
//!     fn get(&self, key: &str) -> Result<Option<Entry>, Error> { Ok(None) }
//!     fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64, Error> {
//!         Err(Error::Denied("read-only".into()))
//!     }
//!     fn delete(&self, key: &str, expected: Expected) -> Result<(), Error> { Err(Error::NotFound) }
//!     fn list(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Error> {
//!         Ok(Page { keys: vec![], next: None })
//!     }
//! }
//!
//! coffer_sdk::export_storage!(Memory);
//! ```
//!
//! Give the crate `crate-type = ["cdylib"]`, build it with `cargo build
//! --target wasm32-wasip2 --release` and point a `plugin` key in
//! `coffer.toml` at the `.wasm`. The host capabilities a
//! plugin may call are in [`config`], [`log`], [`sql`] (storage),
//! [`http`] (storage and KMS) and [`files`] (keyrings); each but `config`
//! and `log` works only when the plugin's section grants it.

extern crate self as coffer_sdk;

#[doc(hidden)]
pub use wit_bindgen;

pub mod aws;
/// JSON (`serde_json`), for plugins that keep or exchange it.
pub use serde_json as json;
#[doc(hidden)]
pub mod bindings;
pub mod config;
pub mod files;
pub mod http;
mod instance;
pub mod keyring;
pub mod kms;
pub mod log;
pub mod random;
pub mod sql;
pub mod storage;

/// The error a plugin returns; see the WIT contract for which case fits.
pub use bindings::storage_world::coffer::plugin::types::Error;
