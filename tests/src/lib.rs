//! Test support for coffer's end-to-end tests: start the real `coffer`
//! binary on a private data directory and a free port, talk to it over
//! HTTP, run the CLI, and call real Google Tink through Python.

#![allow(clippy::unwrap_used)]

pub mod python;
pub mod server;

pub use server::Server;
