//! A coffer keyring: the root keyset in one file the operator grants
//! (`[keyring.files] keyset = { path = "…", writable = true }`), as JSON
//! with the key material in hex. The host makes every key and does every
//! wrap; a keyring only loads and stores.
//!
//! Adapt the format to where your keys live (a hardware token, a secrets
//! file your platform mounts); keep `store` atomic (the host's file write
//! is) and never log material.

use coffer_sdk::Error;
use coffer_sdk::files;
use coffer_sdk::json::{self, Value, json};
use coffer_sdk::keyring::{Algorithm, Key, KeyStatus, Keyring, Keyset, OutputPrefix};

/// The granted file's name.
const FILE: &str = "keyset";

struct FileKeyring;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One of `names` for `value`, by position in `values`.
fn name_of<T: PartialEq>(value: T, values: &[T], names: &[&'static str]) -> &'static str {
    values
        .iter()
        .position(|v| *v == value)
        .map_or("", |i| names[i])
}

fn value_of<T: Copy>(name: &str, values: &[T], names: &[&str]) -> Result<T, Error> {
    names
        .iter()
        .position(|n| *n == name)
        .map(|i| values[i])
        .ok_or_else(|| Error::Invalid(format!("the keyset names an unknown `{name}`")))
}

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Aes128Gcm, Algorithm::Aes256Gcm];
const ALGORITHM_NAMES: [&str; 2] = ["aes128-gcm", "aes256-gcm"];
const STATUSES: [KeyStatus; 3] = [
    KeyStatus::Enabled,
    KeyStatus::Disabled,
    KeyStatus::Destroyed,
];
const STATUS_NAMES: [&str; 3] = ["enabled", "disabled", "destroyed"];
const PREFIXES: [OutputPrefix; 4] = [
    OutputPrefix::Tink,
    OutputPrefix::Legacy,
    OutputPrefix::Crunchy,
    OutputPrefix::Raw,
];
const PREFIX_NAMES: [&str; 4] = ["tink", "legacy", "crunchy", "raw"];

fn key_of(entry: &Value) -> Result<Key, Error> {
    let text = |field: &str| entry[field].as_str().unwrap_or_default();
    Ok(Key {
        id: entry["id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| Error::Invalid("a key has no id".to_owned()))?,
        algorithm: value_of(text("algorithm"), &ALGORITHMS, &ALGORITHM_NAMES)?,
        status: value_of(text("status"), &STATUSES, &STATUS_NAMES)?,
        output_prefix: value_of(text("prefix"), &PREFIXES, &PREFIX_NAMES)?,
        material: unhex(text("material"))
            .ok_or_else(|| Error::Invalid("a key's material is not hex".to_owned()))?,
    })
}

impl Keyring for FileKeyring {
    fn open() -> Result<Self, Error> {
        Ok(FileKeyring)
    }

    fn load(&self) -> Result<Option<Keyset>, Error> {
        let Some(bytes) = files::read(FILE)? else {
            // None lets the host make a new root keyset: only when asked,
            // never because a path was mistyped.
            if coffer_sdk::config::flag("create_if_missing", false)? {
                return Ok(None);
            }
            coffer_sdk::log::error(
                "the keyset file does not exist: set create_if_missing = true to create one",
            );
            return Err(Error::NotFound);
        };
        let doc: Value = json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("the keyset is not JSON: {e}")))?;
        let keys = doc["keys"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(Some(Keyset {
            primary_key_id: doc["primary"]
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| Error::Invalid("the keyset names no primary key".to_owned()))?,
            keys: keys.iter().map(key_of).collect::<Result<_, _>>()?,
        }))
    }

    fn store(&self, keyset: &Keyset) -> Result<(), Error> {
        let keys: Vec<Value> = keyset
            .keys
            .iter()
            .map(|key| {
                json!({
                    "id": key.id,
                    "algorithm": name_of(key.algorithm, &ALGORITHMS, &ALGORITHM_NAMES),
                    "status": name_of(key.status, &STATUSES, &STATUS_NAMES),
                    "prefix": name_of(key.output_prefix, &PREFIXES, &PREFIX_NAMES),
                    "material": hex(&key.material),
                })
            })
            .collect();
        let doc = json!({ "primary": keyset.primary_key_id, "keys": keys });
        files::write(FILE, doc.to_string().as_bytes())
    }
}

coffer_sdk::export_keyring!(FileKeyring);
