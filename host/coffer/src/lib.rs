//! coffer: a secrets engine. Secrets are sealed with AES-GCM envelope
//! encryption (KEK → data key per namespace → fresh key per version) and kept
//! by storage plugins; root keys come from keyring plugins. Both kinds are
//! sandboxed WebAssembly components chosen in `coffer.toml`.
//!
//! The HTTP API ([`api`]) and the CLI ([`cli`]) are thin layers over the
//! services in [`service::Coffer`].

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod keys;
pub mod lower_hex;
pub mod maintenance;
pub mod memory;
pub mod metrics;
pub mod plugins;
pub mod pseudonyms;
pub mod sealing;
pub mod secrets;
pub mod service;
pub mod store;
