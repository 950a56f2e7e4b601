//! The checks a configuration passes before anything starts: ranges,
//! sinks, sections that exclude each other, and what each plugin section
//! grants. A failure names the key at fault.

use super::{Config, ConfigError, LimitsSection};

/// Largest `max_value_bytes` accepted.
const MAX_VALUE_BYTES_LIMIT: usize = 1 << 20;
/// Largest secret record (all retained versions) accepted.
const MAX_RECORD_BYTES: usize = 32 << 20;
/// Bytes a record spends per version besides the value (keys, nonces, tags).
const RECORD_OVERHEAD: usize = 256;

impl Config {
    /// Checks what deserialising alone cannot.
    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, message: &str| ConfigError::Key {
            origin: origin.to_owned(),
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if !(1..=1000).contains(&self.max_versions) {
            return Err(fail("max_versions", "must be between 1 and 1000"));
        }
        if !(1..=MAX_VALUE_BYTES_LIMIT).contains(&self.max_value_bytes) {
            return Err(fail(
                "max_value_bytes",
                &format!("must be between 1 and {MAX_VALUE_BYTES_LIMIT}"),
            ));
        }
        // A secret and its retained versions are one record, which the storage
        // plugin holds several copies of in its memory: it must fit.
        let storage_memory = self
            .storage
            .as_ref()
            .map_or(LimitsSection::default().memory_mb, |s| s.limits.memory_mb)
            .saturating_mul(1 << 20);
        let record = (self.max_versions as usize)
            .saturating_mul(self.max_value_bytes.saturating_add(RECORD_OVERHEAD));
        let record_limit = (storage_memory / 4).min(MAX_RECORD_BYTES);
        if record > record_limit {
            return Err(fail(
                "max_value_bytes",
                &format!(
                    "max_versions × max_value_bytes makes records of up to {record} bytes, more than the \
                     {record_limit} the storage plugin's memory allows: lower either, or raise storage.limits.memory_mb"
                ),
            ));
        }
        let audit = self.audit_settings();
        if audit.enabled && audit.file.is_none() && !audit.stdout {
            return Err(fail(
                "audit",
                "is enabled with no sink: set audit.file or audit.stdout (or enabled = false)",
            ));
        }
        if self.audit.rotate_bytes < 4096 {
            return Err(fail("audit.rotate_bytes", "must be at least 4096"));
        }
        if self.audit.checkpoint_ms < 10 {
            return Err(fail("audit.checkpoint_ms", "must be at least 10"));
        }
        if self.keys.lease_ttl_ms < 1000 {
            return Err(fail("keys.lease_ttl_ms", "must be at least 1000"));
        }
        if self.janitor.interval_ms < 10 {
            return Err(fail("janitor.interval_ms", "must be at least 10"));
        }
        if self.janitor.limit == 0 {
            return Err(fail("janitor.limit", "must be at least 1"));
        }
        if !(1..=100_000).contains(&self.http.max_connections) {
            return Err(fail("http.max_connections", "must be between 1 and 100000"));
        }
        if self.http.header_timeout_ms < 100 {
            return Err(fail("http.header_timeout_ms", "must be at least 100"));
        }
        if self.http.request_timeout_ms < 100 {
            return Err(fail("http.request_timeout_ms", "must be at least 100"));
        }
        if self.transport.key_lifetime_ms < 60_000 {
            return Err(fail("transport.key_lifetime_ms", "must be at least 60000"));
        }
        // The replay memory spans twice the window: a long one never turns
        // over, a short one refuses honest clients whose clocks drift.
        if !(1_000..=600_000).contains(&self.transport.window_ms) {
            return Err(fail(
                "transport.window_ms",
                "must be between 1000 and 600000",
            ));
        }
        if self.keyring.is_some() && self.kms.is_some() {
            return Err(fail(
                "kms",
                "is the root of the key hierarchy in place of [keyring]: configure one of them",
            ));
        }
        let sections = [
            ("storage", &self.storage),
            ("keyring", &self.keyring),
            ("kms", &self.kms),
            ("storage_next", &self.storage_next),
        ];
        for (name, section) in sections {
            if let Some(section) = section {
                section
                    .validate(name)
                    .map_err(|(key, message)| fail(&key, &message))?;
            }
        }
        if let (Some(storage), Some(kms)) = (
            self.storage.as_ref().and_then(|s| s.http.as_ref()),
            self.kms.as_ref().and_then(|s| s.http.as_ref()),
        ) {
            storage
                .apart_from(kms, "storage.http", "kms.http")
                .map_err(|(key, message)| fail(&key, &message))?;
        }
        Ok(())
    }
}
