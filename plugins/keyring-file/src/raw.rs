//! The raw source: a base64 256-bit key from the configuration (`key`) or
//! from an environment variable granted to the plugin (`key_env`), plus an
//! optional second key (`rotation_key` / `rotation_key_env`) that stays
//! enabled to unwrap what the previous key wrapped while a rotation runs.
//!
//! Key ids are derived from the key bytes, so every start (and every node
//! given the same key) agrees on them: the first four bytes, big endian, of
//! SHA-256(`coffer.raw-kek.v1` ‖ key). Values never appear in errors or
//! logs; only the config key or variable name does.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use coffer_sdk::Error;
use coffer_sdk::keyring::{Algorithm, Key, KeyStatus, Keyset, OutputPrefix};

/// A 256-bit key (AES-256-GCM).
const KEY_LEN: usize = 32;

/// Domain separation for key ids.
const KEY_ID_DOMAIN: &[u8] = b"coffer.raw-kek.v1";

/// The config keys of this source; any of them selects it.
pub const CONFIG_KEYS: &[&str] = &["key", "key_env", "rotation_key", "rotation_key_env"];

/// Base64 with padding optional, one engine per alphabet.
const ANY_PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, ANY_PADDING);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, ANY_PADDING);

/// One key and its derived id.
struct RawKey {
    id: u32,
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

/// The configured keys: `primary` wraps, `rotation` only unwraps.
pub struct RawKek {
    primary: RawKey,
    rotation: Option<RawKey>,
}

impl RawKek {
    /// Reads and decodes the keys the configuration names.
    pub fn open() -> Result<Self, Error> {
        warn_if_inline();
        let primary = configured("key")?.ok_or_else(|| {
            Error::Invalid("a rotation key needs a primary key: set `key` or `key_env`".to_owned())
        })?;
        let rotation = match configured("rotation_key")? {
            Some(rotation) if bool::from(rotation.bytes.ct_eq(&*primary.bytes)) => None,
            Some(rotation) if rotation.id == primary.id => {
                return Err(Error::Invalid(format!(
                    "`key` and `rotation_key` are different keys with the same key id {}: generate another key",
                    primary.id
                )));
            }
            rotation => rotation,
        };
        Ok(RawKek { primary, rotation })
    }

    /// The keyset: the primary key, then the rotation key, both enabled.
    pub fn keyset(&self) -> Keyset {
        Keyset {
            primary_key_id: self.primary.id,
            keys: std::iter::once(&self.primary)
                .chain(&self.rotation)
                .map(RawKey::to_wire)
                .collect(),
        }
    }
}

/// A root key written into the configuration is readable by whoever reads
/// the configuration: say so (never the key itself).
fn warn_if_inline() {
    let inline: Vec<&str> = ["key", "rotation_key"]
        .into_iter()
        .filter(|key| coffer_sdk::config::get(key).is_some())
        .collect();
    if !inline.is_empty() {
        coffer_sdk::log::warn(&format!(
            "the root key sits in the configuration (keyring.config.{}): whoever can read the \
             config file can read every secret; prefer key_env with the variable granted in \
             keyring.env",
            inline.join(", keyring.config.")
        ));
    }
}

/// Refuses to persist a keyset (wiping the material it was handed): the
/// keys come from the configuration, which coffer does not write.
/// Why a raw key cannot be stored (the SDK zeroizes what was offered).
pub fn refuse_store() -> Error {
    Error::Denied(
        "the KEK is a raw key from the configuration (`key`/`key_env`) and cannot be rewritten by \
         coffer: rotate it by setting a new `key` and moving the old one to `rotation_key`"
            .to_owned(),
    )
}

impl RawKey {
    /// Decodes `text` (base64, either alphabet, padded or not); `origin`
    /// names where it came from for errors, which never echo the value.
    fn decode(text: &[u8], origin: &str) -> Result<RawKey, Error> {
        let text = text.trim_ascii();
        let mut decoded = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(text.len())]);
        let len = [STANDARD, URL_SAFE]
            .iter()
            .find_map(|engine| engine.decode_slice(text, &mut decoded[..]).ok())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{origin} is not valid base64 (standard or URL-safe)"
                ))
            })?;
        if len != KEY_LEN {
            return Err(Error::Invalid(format!(
                "{origin} decodes to {len} bytes; a 256-bit key is {KEY_LEN} bytes \
                 (make one with `openssl rand -base64 32`)"
            )));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&decoded[..KEY_LEN]);
        Ok(RawKey {
            id: key_id(&bytes),
            bytes,
        })
    }

    fn to_wire(&self) -> Key {
        Key {
            id: self.id,
            algorithm: Algorithm::Aes256Gcm,
            status: KeyStatus::Enabled,
            output_prefix: OutputPrefix::Tink,
            material: self.bytes.to_vec(),
        }
    }
}

/// The key `name` or, through `<name>_env`, the variable holding it; none
/// when neither is set.
fn configured(name: &str) -> Result<Option<RawKey>, Error> {
    let env_key = format!("{name}_env");
    let inline = coffer_sdk::config::get(name).map(|value| Zeroizing::new(value.into_bytes()));
    match (inline, coffer_sdk::config::get(&env_key)) {
        (Some(_), Some(_)) => Err(Error::Invalid(format!(
            "set either `{name}` or `{env_key}`, not both"
        ))),
        (Some(value), None) => RawKey::decode(&value, &format!("config key `{name}`")).map(Some),
        (None, Some(var)) => {
            let value = read_env(&var, &env_key)?;
            RawKey::decode(&value, &format!("environment variable {var} (`{env_key}`)")).map(Some)
        }
        (None, None) => Ok(None),
    }
}

/// The value of environment variable `var`, which the host passes only
/// when the operator granted it.
fn read_env(var: &str, env_key: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    std::env::var_os(var)
        .map(|value| Zeroizing::new(value.into_encoded_bytes()))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "environment variable {var} (named by `{env_key}`) is not visible to the plugin: \
                 grant it in the keyring section with `env = [\"{var}\"]`"
            ))
        })
}

/// The first four bytes, big endian, of SHA-256(domain ‖ key).
fn key_id(key: &[u8; KEY_LEN]) -> u32 {
    let digest = Sha256::new()
        .chain_update(KEY_ID_DOMAIN)
        .chain_update(key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const STANDARD_PADDED: &str = "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=";
    const URL_SAFE_PADDED: &str = "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s=";

    fn message(error: Error) -> String {
        match error {
            Error::Invalid(message) => message,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn either_alphabet_padded_or_not_decodes_to_the_same_key_and_id() {
        let inputs = [
            STANDARD_PADDED,
            STANDARD_PADDED.trim_end_matches('='),
            URL_SAFE_PADDED,
            URL_SAFE_PADDED.trim_end_matches('='),
            &format!(" {STANDARD_PADDED}\n"),
        ];
        for input in inputs {
            let key = RawKey::decode(input.as_bytes(), "test").unwrap();
            assert_eq!(*key.bytes, [0xfb; KEY_LEN], "{input:?}");
            // SHA-256("coffer.raw-kek.v1" ‖ key)[0..4], big endian.
            assert_eq!(key.id, 3_454_332_571, "{input:?}");
        }
    }

    #[test]
    fn bad_base64_and_wrong_lengths_are_refused_without_the_value() {
        let bad = "not*base64!";
        let error = message(
            RawKey::decode(bad.as_bytes(), "config key `key`")
                .err()
                .unwrap(),
        );
        assert!(
            error.contains("config key `key` is not valid base64"),
            "{error}"
        );
        assert!(!error.contains(bad), "{error}");
        for short in ["AAECAwQFBgcICQoLDA0ODw==", ""] {
            let error = message(RawKey::decode(short.as_bytes(), "x").err().unwrap());
            assert!(error.contains("a 256-bit key is 32 bytes"), "{error}");
            assert!(short.is_empty() || !error.contains(short), "{error}");
        }
        let long = format!("{}AAAA", STANDARD_PADDED.trim_end_matches('='));
        let error = message(RawKey::decode(long.as_bytes(), "x").err().unwrap());
        assert!(!error.contains(&long), "{error}");
    }

    #[test]
    fn the_keyset_holds_the_primary_first_and_the_rotation_key_enabled() {
        let primary = RawKey::decode(STANDARD_PADDED.as_bytes(), "key").unwrap();
        let rotation = RawKey::decode(&[b'A'; 43], "rotation_key").unwrap();
        let (primary_id, rotation_id) = (primary.id, rotation.id);
        let kek = RawKek {
            primary,
            rotation: Some(rotation),
        };
        let keyset = kek.keyset();
        assert_eq!(keyset.primary_key_id, primary_id);
        let ids: Vec<u32> = keyset.keys.iter().map(|k| k.id).collect();
        assert_eq!(ids, [primary_id, rotation_id]);
        for key in &keyset.keys {
            assert!(matches!(key.status, KeyStatus::Enabled));
            assert!(matches!(key.algorithm, Algorithm::Aes256Gcm));
            assert!(matches!(key.output_prefix, OutputPrefix::Tink));
            assert_eq!(key.material.len(), KEY_LEN);
        }
    }
}
