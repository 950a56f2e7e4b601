//! coffer-sdk: write a coffer backend as a WebAssembly component.
//!
//! A backend is one type implementing [`storage::Storage`] (or
//! [`keyring::Keyring`]) and one macro call that exports it:
//!
//! ```ignore
//! use coffer_sdk::storage::{Entry, Expected, Page, Storage};
//! use coffer_sdk::Error;
//!
//! struct MyStore;
//!
//! impl Storage for MyStore {
//!     fn open() -> Result<Self, Error> { Ok(MyStore) }
//!     fn get(&self, key: &str) -> Result<Option<Entry>, Error> { todo() }
//!     // put, delete, list …
//! }
//!
//! coffer_sdk::export_storage!(MyStore);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` and point a
//! `plugin` key in `coffer.toml` at the `.wasm`. The host capabilities a
//! plugin may call are in [`config`], [`log`] and [`sql`].

extern crate self as coffer_sdk;

#[doc(hidden)]
pub use wit_bindgen;

#[doc(hidden)]
pub mod bindings;
pub mod config;
mod instance;
pub mod keyring;
pub mod log;
pub mod sql;
pub mod storage;

/// The error a plugin returns; see the WIT contract for which case fits.
pub use bindings::storage_world::coffer::plugin::types::Error;
