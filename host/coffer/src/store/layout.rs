//! The storage keys of every record coffer keeps. Nothing else in the host
//! spells a storage key.

/// The prefix of every namespace's secrets.
pub const SECRETS_PREFIX: &str = "secrets/";

/// A secret with its retained versions: `secrets/<namespace>/<name>`.
pub fn secret(namespace: &str, name: &str) -> String {
    format!("{}{name}", secrets_of(namespace))
}

/// The prefix of one namespace's secrets.
pub fn secrets_of(namespace: &str) -> String {
    format!("{SECRETS_PREFIX}{namespace}/")
}

/// The prefix of every scope's data key set.
pub const DATA_KEYS: &str = "datakeys/";

/// A scope's data key set: `datakeys/<scope>`.
pub fn data_keys(scope: &str) -> String {
    format!("{DATA_KEYS}{scope}")
}

/// The prefix of every token record.
pub const TOKENS: &str = "tokens/";

/// A token's record, filed under the hex SHA-256 of the token.
pub fn token(hash: &str) -> String {
    format!("{TOKENS}{hash}")
}

/// The prefix of the engine's own keys (wrapped by the KEK).
pub const SYSTEM_KEYS: &str = "sys/keys/";

/// A system key: `sys/keys/<name>`.
pub fn system_key(name: &str) -> String {
    format!("{SYSTEM_KEYS}{name}")
}

/// The ring of the sealed transport's keys.
pub const TRANSPORT_KEYS: &str = "sys/transport/keys";

/// The key-management lease.
pub const LEASE: &str = "sys/leases/keys";

/// The prefix of the re-encryption passes in progress.
pub const REENCRYPT_PASSES: &str = "sys/jobs/reencrypt/";

/// A namespace's re-encryption pass in progress.
pub fn reencrypt_pass(namespace: &str) -> String {
    format!("{REENCRYPT_PASSES}{namespace}")
}

/// The last audit checkpoint of node `node`.
pub fn audit_checkpoint(node: &str) -> String {
    format!("sys/audit/checkpoints/{node}")
}

/// The marker saying which record format the store holds.
pub const FORMAT_MARKER: &str = "sys/format";

/// What the health check reads (it need not exist).
pub const HEALTH_PROBE: &str = "sys/health";

/// Where `coffer migrate` notes, in the target store, the last key it
/// copied, to resume after a crash.
pub const MIGRATE_CURSOR: &str = "sys/migrate/cursor";

/// Written into a store `coffer migrate` moved away from: a server refuses
/// to start on it (its data lives on in the target).
pub const MIGRATED: &str = "sys/migrated";

/// A random value a plugin reload writes through the running storage and
/// reads through the new one, then deletes: proof both are one store.
pub const RELOAD_PROBE: &str = "sys/reload-probe";
