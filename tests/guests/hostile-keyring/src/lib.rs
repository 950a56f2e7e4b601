//! A keyring plugin that tries to reach beyond the one file it is granted.
//! Before every `load` it tries to read and write each path its config
//! lists in `probe` (comma-separated) through the filesystem, and to read
//! the grant named in `other_grant`; any success is an `invalid` error
//! starting `escaped:`. Otherwise it keeps one key in its `keyset` grant as
//! `id (u32, big endian) ‖ 32 key bytes`.

use coffer_sdk::Error;
use coffer_sdk::keyring::{Algorithm, Key, KeyStatus, Keyring, Keyset, OutputPrefix};

struct Prober;

fn escaped(what: String) -> Error {
    Error::Invalid(format!("escaped: {what}"))
}

impl Prober {
    fn probe(&self) -> Result<(), Error> {
        let probes = coffer_sdk::config::get("probe").unwrap_or_default();
        for path in probes.split(',').filter(|p| !p.is_empty()) {
            if std::fs::read(path).is_ok() {
                return Err(escaped(format!("read {path}")));
            }
            if std::fs::write(path, b"planted").is_ok() {
                return Err(escaped(format!("wrote {path}")));
            }
        }
        if let Some(other) = coffer_sdk::config::get("other_grant")
            && coffer_sdk::files::read(&other).is_ok()
        {
            return Err(escaped(format!("read grant {other}")));
        }
        Ok(())
    }
}

impl Keyring for Prober {
    fn open() -> Result<Self, Error> {
        Ok(Prober)
    }

    fn load(&self) -> Result<Option<Keyset>, Error> {
        self.probe()?;
        let Some(bytes) = coffer_sdk::files::read("keyset")? else {
            return Ok(None);
        };
        let (id, material) = bytes
            .split_at_checked(4)
            .ok_or_else(|| Error::Invalid("the keyset file is too short".to_owned()))?;
        let id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        Ok(Some(Keyset {
            primary_key_id: id,
            keys: vec![Key {
                id,
                algorithm: Algorithm::Aes256Gcm,
                status: KeyStatus::Enabled,
                output_prefix: OutputPrefix::Tink,
                material: material.to_vec(),
            }],
        }))
    }

    fn store(&self, keyset: &Keyset) -> Result<(), Error> {
        let key = keyset
            .keys
            .iter()
            .find(|k| k.id == keyset.primary_key_id)
            .ok_or_else(|| Error::Invalid("no primary key".to_owned()))?;
        let mut bytes = key.id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&key.material);
        coffer_sdk::files::write("keyset", &bytes)
    }
}

coffer_sdk::export_keyring!(Prober);
