//! keyring-file: coffer's root keys (KEKs) from one of two sources. The
//! host does every cryptographic operation; this plugin only hands it the
//! key material.
//!
//! **A Google Tink JSON keyset file**, read and written exactly as `tinkey`
//! does (cleartext JSON keysets), through the file the host grants as
//! `keyset` (`[keyring.files] keyset = { path = …, writable = … }`): the
//! plugin reaches that one file and nothing beside it. `create_if_missing`
//! answers "none" for an absent file so the host creates a keyset, which
//! needs a writable grant.
//!
//! **A raw base64 256-bit key** (config `key`, or `key_env` naming an
//! environment variable the host grants the plugin), standard or URL-safe
//! base64, padded or not. An optional `rotation_key` / `rotation_key_env`
//! is a second, unwrap-only key for a rotation: put the new key in `key`
//! and the old one in `rotation_key`, restart, re-wrap the data keys, then
//! drop `rotation_key`. Both are AES-256-GCM keys with the Tink output
//! prefix and ids derived from their bytes, so restarts agree on them. The
//! keys come from the configuration, so `store` is refused. This source
//! needs no file grant; `create_if_missing` and `key`/`key_env` are
//! mutually exclusive.

mod raw;
mod tink_file;

use coffer_sdk::Error;
use coffer_sdk::keyring::{Keyring, Keyset};

use raw::RawKek;
use tink_file::TinkFile;

/// The source the configuration picked.
enum FileKeyring {
    Tink(TinkFile),
    Raw(RawKek),
}

impl Keyring for FileKeyring {
    fn open() -> Result<Self, Error> {
        let get = coffer_sdk::config::get;
        let Some(raw_key) = raw::CONFIG_KEYS.iter().find(|key| get(key).is_some()) else {
            return Ok(FileKeyring::Tink(TinkFile::open()?));
        };
        for file_key in ["path", "create_if_missing"] {
            if get(file_key).is_some() {
                return Err(Error::Invalid(format!(
                    "config keys `{raw_key}` and `{file_key}` are mutually exclusive: the KEK comes \
                     either from a raw key (`key`/`key_env`) or from a Tink keyset file (granted \
                     as `keyset`)"
                )));
            }
        }
        Ok(FileKeyring::Raw(RawKek::open()?))
    }

    fn load(&self) -> Result<Option<Keyset>, Error> {
        match self {
            FileKeyring::Tink(file) => file.load(),
            FileKeyring::Raw(raw) => Ok(Some(raw.keyset())),
        }
    }

    fn store(&self, keyset: &Keyset) -> Result<(), Error> {
        match self {
            FileKeyring::Tink(file) => file.store(keyset),
            FileKeyring::Raw(_) => Err(raw::refuse_store()),
        }
    }
}

coffer_sdk::export_keyring!(FileKeyring);
