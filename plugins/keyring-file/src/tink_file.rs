//! The Tink source: a Google Tink JSON keyset file, read and written
//! exactly as `tinkey` does (cleartext JSON keysets), through the file the
//! host grants as `keyset`.

use coffer_crypto::tink::{self, KeyStatus, TinkKey, TinkKeyset};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix};
use coffer_sdk::Error;
use coffer_sdk::keyring::{self as wit, Key, Keyset};
use zeroize::Zeroizing;

/// The name of the file grant holding the keyset.
pub const GRANT: &str = "keyset";

/// The keyset file the host grants as [`GRANT`].
pub struct TinkFile {
    create_if_missing: bool,
}

impl TinkFile {
    /// Reads `create_if_missing` from the configuration.
    pub fn open() -> Result<Self, Error> {
        if coffer_sdk::config::get("path").is_some() {
            return Err(Error::Invalid(
                "config key `path` is gone: grant the keyset file to the keyring instead, as \
                 `[keyring.files] keyset = { path = \"…\", writable = … }`"
                    .to_owned(),
            ));
        }
        Ok(TinkFile {
            create_if_missing: coffer_sdk::config::flag("create_if_missing", false)?,
        })
    }

    /// The keyset in the file; none when it is absent and may be created.
    pub fn load(&self) -> Result<Option<Keyset>, Error> {
        let text = match coffer_sdk::files::read(GRANT)? {
            Some(bytes) => Zeroizing::new(bytes),
            None if self.create_if_missing => return Ok(None),
            None => return Err(Error::NotFound),
        };
        let text = std::str::from_utf8(&text)
            .map_err(|_| Error::Invalid("the keyset file is not UTF-8 JSON".to_owned()))?;
        let keyset = tink::parse_keyset_json(text).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Some(to_wire(&keyset)))
    }

    /// Replaces the file (the host does it atomically).
    pub fn store(&self, keyset: &Keyset) -> Result<(), Error> {
        let keyset = from_wire(keyset)?;
        let json = Zeroizing::new(tink::keyset_to_json(&keyset));
        coffer_sdk::files::write(GRANT, json.as_bytes())
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

fn from_wire(keyset: &Keyset) -> Result<TinkKeyset, Error> {
    let mut keys = Vec::with_capacity(keyset.keys.len());
    for key in &keyset.keys {
        let algorithm = match key.algorithm {
            wit::Algorithm::Aes128Gcm => Algorithm::Aes128Gcm,
            wit::Algorithm::Aes256Gcm => Algorithm::Aes256Gcm,
        };
        let material = KeyMaterial::new(algorithm, key.material.clone())
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
