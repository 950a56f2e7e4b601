//! The server's own tables of `coffer.toml`: `[http]`, `[tls]`,
//! `[metrics]`, `[keys]`, `[janitor]`, `[audit]` and `[transport]`. Each
//! table's defaults are its `Default`, and a key left out takes the
//! default's value.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[http]` table: what one client can make the server hold.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers; also how long an
    /// idle keep-alive connection stays open.
    pub header_timeout_ms: u64,
    /// Time a request may take, its body included.
    pub request_timeout_ms: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            max_connections: 1024,
            header_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
        }
    }
}

/// The `[tls]` table: serve HTTPS (TLS 1.2 or 1.3) with this certificate,
/// re-read when the files change, and with `client_ca_file`, ask every
/// client for a certificate that CA issued (mutual TLS).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM: the server's certificate, then its chain.
    pub cert_file: PathBuf,
    /// PEM: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM: the CAs whose client certificates are accepted; none asks for
    /// no client certificate.
    pub client_ca_file: Option<PathBuf>,
}

/// The `[metrics]` table.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve `/v1/sys/metrics` without a token (for a scraper on a trusted
    /// network); otherwise it needs the `sys` capability.
    pub unauthenticated: bool,
}

/// The `[keys]` table: data keys and key management.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysSection {
    /// Algorithm of new data keys: `AES256_GCM` (default) or `AES128_GCM`.
    pub algorithm: coffer_crypto::Algorithm,
    /// How long a node trusts its cached copy of a namespace's keys, and so
    /// how long a rotation made on another node takes to reach it.
    pub cache_ttl_ms: u64,
    /// How long a retired key must wait before it may be inactivated or
    /// destroyed; defaults to twice `cache_ttl_ms` plus the plugin timeout.
    pub grace_ms: Option<u64>,
    /// Lifetime of the key-management lease; renewed while work runs.
    pub lease_ttl_ms: u64,
    /// This node's name in the lease; defaults to `hostname:port`, so a
    /// restarted node takes its own lease back at once.
    pub node: Option<String>,
}

impl Default for KeysSection {
    fn default() -> Self {
        KeysSection {
            algorithm: coffer_crypto::Algorithm::Aes256Gcm,
            cache_ttl_ms: 30_000,
            grace_ms: None,
            lease_ttl_ms: 15_000,
            node: None,
        }
    }
}

/// The `[janitor]` table: background re-wrapping onto Active keys.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JanitorSection {
    pub enabled: bool,
    /// Time between cycles.
    pub interval_ms: u64,
    /// Most secrets one cycle looks at.
    pub limit: u32,
}

impl Default for JanitorSection {
    fn default() -> Self {
        JanitorSection {
            enabled: true,
            interval_ms: 60_000,
            limit: 1_000,
        }
    }
}

/// The `[audit]` table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Turning the audit trail off is possible, and loudly reported.
    pub enabled: bool,
    /// The JSON-lines file; defaults to `<data_dir>/audit/audit.log`, and
    /// an empty string means no file.
    pub file: Option<PathBuf>,
    /// Also write every record to standard output.
    pub stdout: bool,
    /// Size in bytes at which the file is rotated (the chain continues).
    pub rotate_bytes: u64,
    /// Rotated files kept; beyond, the oldest is deleted once it verifies.
    pub keep_files: Option<usize>,
    /// Bytes of rotated files kept; beyond, the oldest is deleted once it
    /// verifies.
    pub keep_bytes: Option<u64>,
    /// How often the chain's head is checkpointed in storage, so a log
    /// whose tail was cut shows.
    pub checkpoint_ms: u64,
    /// Actions not recorded, such as `sys.health`.
    pub exclude: Vec<String>,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            enabled: true,
            file: None,
            stdout: false,
            rotate_bytes: 64 << 20,
            keep_files: None,
            keep_bytes: None,
            checkpoint_ms: 1_000,
            exclude: vec!["sys.health".to_owned(), "sys.metrics".to_owned()],
        }
    }
}

/// The `[transport]` table: the sealed transport (HPKE to the server's
/// transport key, and back to a client's one-time key).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransportSection {
    /// How long a transport key is the one clients seal to; the first
    /// request for the key after that rotates it.
    pub key_lifetime_ms: u64,
    /// How long a replaced transport key still opens what was sealed to it.
    pub grace_ms: u64,
    /// How far a sealed request's timestamp may be from the server's clock.
    pub window_ms: u64,
    /// Namespaces (patterns, as in policies) whose values cross the wire
    /// only sealed: plaintext writes and reads there are refused, and so is
    /// the Vault-compatible API.
    pub require_sealed: Vec<crate::auth::Pattern>,
}

impl Default for TransportSection {
    fn default() -> Self {
        TransportSection {
            key_lifetime_ms: 30 * 24 * 3_600_000,
            grace_ms: 24 * 3_600_000,
            window_ms: 60_000,
            require_sealed: Vec::new(),
        }
    }
}
