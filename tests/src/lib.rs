//! Test support for coffer's end-to-end tests: start the real `coffer`
//! binary on a private data directory and a free port, talk to it over
//! HTTP, run the CLI, call real Google Tink and botocore through Python,
//! and run the remote backends' real servers (OpenBao, moto) behind a
//! proxy a test can cut.

#![allow(clippy::unwrap_used)]

pub mod aws;
pub mod openbao;
pub mod plugins;
pub mod proxy;
pub mod python;
pub mod records;
pub mod server;

pub use server::{Server, TlsClient};

/// A `[keyring]` section on keyring-file with its Tink keyset at `keyset`,
/// granted writable when `writable`, created when missing if `create`.
pub fn keyring_file(keyset: &std::path::Path, writable: bool, create: bool) -> String {
    format!(
        "[keyring]\nplugin = \"keyring-file\"\n[keyring.files]\nkeyset = {{ path = {:?}, writable = {writable} }}\n\
         [keyring.config]\ncreate_if_missing = {create}\n",
        keyset.display().to_string()
    )
}

/// Secret versions the data key `id` protects, in a `GET /v1/keys/{ns}`
/// answer.
pub fn key_usage(shown: &serde_json::Value, id: &serde_json::Value) -> u64 {
    shown["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| &k["id"] == id)
        .unwrap()["usage"]["versions"]
        .as_u64()
        .unwrap()
}
