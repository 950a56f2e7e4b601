//! The Tink source: a Google Tink JSON keyset file, read and written
//! exactly as `tinkey` does (cleartext JSON keysets).

use std::io::{ErrorKind, Write};
use std::path::PathBuf;

use coffer_crypto::tink::{self, KeyStatus, TinkKey, TinkKeyset};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix};
use coffer_sdk::Error;
use coffer_sdk::keyring::{self as wit, Key, Keyset};
use zeroize::Zeroizing;

/// A keyset file at `path`, as the host preopened it.
pub struct TinkFile {
    path: PathBuf,
    create_if_missing: bool,
}

impl TinkFile {
    /// Reads `path` and `create_if_missing` from the configuration.
    pub fn open() -> Result<Self, Error> {
        Ok(TinkFile {
            path: PathBuf::from(coffer_sdk::config::require("path")?),
            create_if_missing: coffer_sdk::config::flag("create_if_missing", false)?,
        })
    }

    /// The keyset in the file; none when it is absent and may be created.
    pub fn load(&self) -> Result<Option<Keyset>, Error> {
        let text = match std::fs::read(&self.path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound && self.create_if_missing => return Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::NotFound),
            Err(e) => return Err(io_error("read", &e)),
        };
        let text = std::str::from_utf8(&text)
            .map_err(|_| Error::Invalid("the keyset file is not UTF-8 JSON".to_owned()))?;
        let keyset = tink::parse_keyset_json(text).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Some(to_wire(&keyset)))
    }

    /// Replaces the file atomically (write a sibling, then rename).
    pub fn store(&self, keyset: Keyset) -> Result<(), Error> {
        let keyset = from_wire(keyset)?;
        let json = Zeroizing::new(tink::keyset_to_json(&keyset));
        let tmp = self.path.with_extension("json.tmp");
        let written = std::fs::File::create(&tmp).and_then(|mut file| {
            file.write_all(json.as_bytes())?;
            file.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &self.path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error("write", &e));
        }
        Ok(())
    }
}

fn io_error(action: &str, error: &std::io::Error) -> Error {
    match error.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => Error::Denied(format!(
            "cannot {action} the keyset file: {error} (is the keyring granted write access?)"
        )),
        _ => Error::Unavailable(format!("cannot {action} the keyset file: {error}")),
    }
}

fn to_wire(keyset: &TinkKeyset) -> Keyset {
    Keyset {
        primary_key_id: keyset.primary_key_id,
        keys: keyset
            .keys
            .iter()
            .map(|key| Key {
                id: key.id,
                algorithm: match key.algorithm {
                    Algorithm::Aes128Gcm => wit::Algorithm::Aes128Gcm,
                    Algorithm::Aes256Gcm => wit::Algorithm::Aes256Gcm,
                },
                status: match key.status {
                    KeyStatus::Enabled => wit::KeyStatus::Enabled,
                    KeyStatus::Disabled => wit::KeyStatus::Disabled,
                    KeyStatus::Destroyed => wit::KeyStatus::Destroyed,
                },
                output_prefix: match key.output_prefix {
                    OutputPrefix::Tink => wit::OutputPrefix::Tink,
                    OutputPrefix::Legacy => wit::OutputPrefix::Legacy,
                    OutputPrefix::Crunchy => wit::OutputPrefix::Crunchy,
                    OutputPrefix::Raw => wit::OutputPrefix::Raw,
                },
                material: key.material.as_bytes().to_vec(),
            })
            .collect(),
    }
}

fn from_wire(keyset: Keyset) -> Result<TinkKeyset, Error> {
    let mut keys = Vec::with_capacity(keyset.keys.len());
    for key in keyset.keys {
        let algorithm = match key.algorithm {
            wit::Algorithm::Aes128Gcm => Algorithm::Aes128Gcm,
            wit::Algorithm::Aes256Gcm => Algorithm::Aes256Gcm,
        };
        let material = KeyMaterial::new(algorithm, key.material)
            .map_err(|e| Error::Invalid(format!("key {}: {e}", key.id)))?;
        keys.push(TinkKey {
            id: key.id,
            algorithm,
            status: match key.status {
                wit::KeyStatus::Enabled => KeyStatus::Enabled,
                wit::KeyStatus::Disabled => KeyStatus::Disabled,
                wit::KeyStatus::Destroyed => KeyStatus::Destroyed,
            },
            output_prefix: match key.output_prefix {
                wit::OutputPrefix::Tink => OutputPrefix::Tink,
                wit::OutputPrefix::Legacy => OutputPrefix::Legacy,
                wit::OutputPrefix::Crunchy => OutputPrefix::Crunchy,
                wit::OutputPrefix::Raw => OutputPrefix::Raw,
            },
            material,
        });
    }
    Ok(TinkKeyset {
        primary_key_id: keyset.primary_key_id,
        keys,
    })
}
