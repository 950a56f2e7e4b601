//! What coffer's records hold: a secret's versions ([`SecretRecord`]), a
//! scope's data keys ([`DataKeySet`]) and a KEK-wrapped system key
//! ([`SystemKeyRecord`]).
//!
//! Secret records and data key sets are stored inside the authenticated
//! envelope of [`crate::sealed`]; this module encodes what goes inside it
//! (the *body*). System keys are authenticated by the KEK that wraps them.
//! Records hold only ciphertext and metadata, so they can sit in any storage
//! plugin. Decoding is strict: it never panics, never allocates more than the
//! input could hold, and refuses truncated input, trailing bytes, any single
//! field over 16 MiB ([`MAX_FIELD_LEN`]) and more than 10,000 entries
//! ([`MAX_ENTRIES`]).
//!
//! # Layout
//!
//! All integers are big endian. `bytes` is `length (u32) ‖ bytes`; `string` is
//! the same with UTF-8 content.
//!
//! A **secret record** body (kind `'S'`):
//!
//! | field            | type  | notes                                      |
//! |------------------|-------|--------------------------------------------|
//! | version count    | u32   | ≤ 10,000; then that many entries:          |
//! | ↳ version        | u32   | entries are written in ascending order     |
//! | ↳ created_at_ms  | i64   | Unix epoch milliseconds                    |
//! | ↳ state flags    | u8    | bit 0 deleted, bit 1 destroyed, bit 2 the value is a JSON object (other bits are refused) |
//! | ↳ deleted_at_ms  | i64   | present only when bit 0 is set             |
//! | ↳ destroyed_at_ms| i64   | present only when bit 1 is set             |
//! | ↳ data_key_id    | u32   | data key the secret key is wrapped under   |
//! | ↳ wrapped_key    | bytes | output prefix ‖ nonce ‖ ciphertext ‖ tag; empty once destroyed |
//! | ↳ ciphertext     | bytes | nonce ‖ ciphertext ‖ tag; empty once destroyed |
//! | metadata         |       | optional, only when not all defaults:      |
//! | ↳ tag            | u8    | `'M'`                                      |
//! | ↳ max_versions   | u32   | `0`: the server's setting                  |
//! | ↳ cas_required   | u8    | `0` or `1`                                 |
//! | ↳ updated_at_ms  | i64   | when the metadata last changed             |
//! | ↳ custom count   | u32   | ≤ 10,000; then that many pairs:            |
//! | ↳ ↳ key, value   | string, string | ascending by key, keys unique     |
//!
//! Records written before versions could be destroyed and secrets carried
//! metadata have flags `0` or `1` and no metadata: they decode unchanged.
//!
//! A **data key set** body (kind `'D'`):
//!
//! | field           | type   | notes                                          |
//! |-----------------|--------|------------------------------------------------|
//! | scope           | string | the namespace the keys belong to               |
//! | key count       | u32    | ≤ 10,000; then that many entries:              |
//! | ↳ id            | u32    | data key id                                    |
//! | ↳ algorithm     | u8     | `1` AES128_GCM, `2` AES256_GCM                  |
//! | ↳ status        | u8     | `1` active, `2` deprecated, `3` inactive, `4` destroyed |
//! | ↳ created_at_ms | i64    |                                                |
//! | ↳ updated_at_ms | i64    |                                                |
//! | ↳ version       | u64    | bumped on every change, for optimistic writes  |
//! | ↳ kek_id        | u32    | KEK the data key is wrapped under              |
//! | ↳ wrapped       | bytes  | empty once destroyed                           |
//!
//! A **system key record** is `0x02 ‖ 'K' ‖ kek_id (u32) ‖ wrapped key`
//! (the wrapped key running to the end). Builds before format 2 stored the
//! wrapped key alone and found its KEK from a `TINK` or `LEGACY` output
//! prefix, which `RAW` keys do not have; such records still decode.
//!
//! Format 1, before records were sealed, was `0x01 ‖ kind ‖ body` with the
//! same bodies: [`SecretRecord::decode_legacy`] and
//! [`DataKeySet::decode_legacy`] read it, for `coffer upgrade` only.
//!
//! Encoding does not check the limits; writers must keep values below 16 MiB
//! and entry counts below 10,000 or the record will not decode.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{CryptoError, Result};
use crate::key::Algorithm;

/// The format byte of system key records (sealed records share it).
pub const FORMAT_VERSION: u8 = crate::sealed::FORMAT;
/// Kind byte of a [`SecretRecord`].
pub const KIND_SECRET: u8 = b'S';
/// Kind byte of a [`DataKeySet`].
pub const KIND_DATA_KEYS: u8 = b'D';
/// Kind byte of a [`SystemKeyRecord`].
pub const KIND_SYSTEM_KEY: u8 = b'K';
/// Largest single variable-length field accepted when decoding.
pub const MAX_FIELD_LEN: usize = 16 * 1024 * 1024;
/// Largest number of versions or keys accepted when decoding.
pub const MAX_ENTRIES: usize = 10_000;

/// Tag of the optional metadata section of a secret record.
const SECRET_META_TAG: u8 = b'M';
/// State flag: the version is soft-deleted.
const FLAG_DELETED: u8 = 1;
/// State flag: the version's key and ciphertext are gone.
const FLAG_DESTROYED: u8 = 2;
/// State flag: the value is a JSON object's canonical text.
const FLAG_JSON: u8 = 4;

/// Smallest encoded size of one version entry, used to bound preallocation.
const MIN_VERSION_ENTRY: usize = 4 + 8 + 1 + 4 + 4 + 4;
/// Smallest encoded size of one data key entry.
const MIN_DATA_KEY_ENTRY: usize = 4 + 1 + 1 + 8 + 8 + 8 + 4 + 4;

/// All versions of one secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretRecord {
    /// Ascending by `version`.
    pub versions: Vec<VersionEntry>,
    pub meta: SecretMeta,
}

/// What a secret's owner set about it, beside its versions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretMeta {
    /// Versions to keep; `0` leaves it to the server's setting.
    pub max_versions: u32,
    /// Writes must say which version they replace.
    pub cas_required: bool,
    /// When this metadata last changed (`0`: never set).
    pub updated_at_ms: i64,
    /// The owner's own labels.
    pub custom: BTreeMap<String, String>,
}

/// One version of a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    pub version: u32,
    pub created_at_ms: i64,
    pub deleted_at_ms: Option<i64>,
    /// Set once the version's key and ciphertext were thrown away.
    pub destroyed_at_ms: Option<i64>,
    pub format: ValueFormat,
    pub data_key_id: u32,
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// What a version's value is, for APIs that show values other than as text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueFormat {
    /// Text, as written.
    #[default]
    Text,
    /// A JSON object's canonical text (keys sorted, no spaces), written as
    /// an object (the Vault KV v2 API's `data`).
    Json,
}

impl VersionEntry {
    /// Still holds a key and a ciphertext.
    pub fn is_destroyed(&self) -> bool {
        self.destroyed_at_ms.is_some()
    }

    /// Throws the version's key and ciphertext away, for good.
    pub fn destroy(&mut self, at_ms: i64) {
        self.wrapped_key = Vec::new();
        self.ciphertext = Vec::new();
        self.destroyed_at_ms.get_or_insert(at_ms);
    }
}

impl SecretRecord {
    /// The highest version, deleted or not.
    pub fn latest(&self) -> Option<&VersionEntry> {
        self.versions.iter().max_by_key(|v| v.version)
    }

    pub fn get(&self, version: u32) -> Option<&VersionEntry> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The record's body, for [`crate::sealed::seal`] with [`KIND_SECRET`].
    pub fn encode(&self) -> Vec<u8> {
        let body: usize = self
            .versions
            .iter()
            .map(|v| MIN_VERSION_ENTRY + 8 + v.wrapped_key.len() + v.ciphertext.len())
            .sum();
        let mut w = Writer::with_capacity(4 + body);
        w.count(self.versions.len());
        for v in &self.versions {
            w.u32(v.version);
            w.i64(v.created_at_ms);
            let deleted = v.deleted_at_ms.map_or(0, |_| FLAG_DELETED);
            let destroyed = v.destroyed_at_ms.map_or(0, |_| FLAG_DESTROYED);
            let json = match v.format {
                ValueFormat::Text => 0,
                ValueFormat::Json => FLAG_JSON,
            };
            w.u8(deleted | destroyed | json);
            for at in [v.deleted_at_ms, v.destroyed_at_ms].into_iter().flatten() {
                w.i64(at);
            }
            w.u32(v.data_key_id);
            w.bytes(&v.wrapped_key);
            w.bytes(&v.ciphertext);
        }
        if self.meta != SecretMeta::default() {
            w.u8(SECRET_META_TAG);
            w.u32(self.meta.max_versions);
            w.u8(u8::from(self.meta.cas_required));
            w.i64(self.meta.updated_at_ms);
            w.count(self.meta.custom.len());
            for (key, value) in &self.meta.custom {
                w.bytes(key.as_bytes());
                w.bytes(value.as_bytes());
            }
        }
        w.0
    }

    /// Reads a body written by [`SecretRecord::encode`].
    pub fn decode(input: &[u8]) -> Result<SecretRecord> {
        let mut r = Reader { input };
        let count = r.count()?;
        let mut versions = Vec::with_capacity(count.min(r.remaining() / MIN_VERSION_ENTRY));
        for _ in 0..count {
            let version = r.u32()?;
            let created_at_ms = r.i64()?;
            let flags = r.u8()?;
            if flags & !(FLAG_DELETED | FLAG_DESTROYED | FLAG_JSON) != 0 {
                return Err(CryptoError::Malformed("bad version state flags"));
            }
            let mut at = |flag: u8| -> Result<Option<i64>> {
                if flags & flag == 0 {
                    Ok(None)
                } else {
                    r.i64().map(Some)
                }
            };
            let deleted_at_ms = at(FLAG_DELETED)?;
            let destroyed_at_ms = at(FLAG_DESTROYED)?;
            let format = if flags & FLAG_JSON == 0 {
                ValueFormat::Text
            } else {
                ValueFormat::Json
            };
            versions.push(VersionEntry {
                version,
                created_at_ms,
                deleted_at_ms,
                destroyed_at_ms,
                format,
                data_key_id: r.u32()?,
                wrapped_key: r.bytes()?,
                ciphertext: r.bytes()?,
            });
        }
        let meta = if r.remaining() == 0 {
            SecretMeta::default()
        } else {
            decode_secret_meta(&mut r)?
        };
        r.finish()?;
        Ok(SecretRecord { versions, meta })
    }

    /// Reads a format 1 record (`0x01 ‖ 'S' ‖ body`), which carried no tag.
    pub fn decode_legacy(input: &[u8]) -> Result<SecretRecord> {
        SecretRecord::decode(legacy_body(input, KIND_SECRET, "not a secret record")?)
    }
}

/// The metadata section of a secret record, after its versions.
fn decode_secret_meta(r: &mut Reader<'_>) -> Result<SecretMeta> {
    if r.u8()? != SECRET_META_TAG {
        return Err(CryptoError::Malformed("trailing bytes after the versions"));
    }
    let max_versions = r.u32()?;
    let cas_required = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(CryptoError::Malformed("bad cas_required flag")),
    };
    let updated_at_ms = r.i64()?;
    let count = r.count()?;
    let mut custom = BTreeMap::new();
    for _ in 0..count {
        let key = r.string()?;
        let value = r.string()?;
        if custom
            .last_key_value()
            .is_some_and(|(last, _)| *last >= key)
        {
            return Err(CryptoError::Malformed("custom metadata keys out of order"));
        }
        custom.insert(key, value);
    }
    Ok(SecretMeta {
        max_versions,
        cas_required,
        updated_at_ms,
        custom,
    })
}

/// Lifecycle of a data key. Only `Active` encrypts; `Deprecated` and `Inactive`
/// still decrypt; `Destroyed` keys are gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKeyStatus {
    Active,
    Deprecated,
    Inactive,
    Destroyed,
}

impl DataKeyStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DataKeyStatus::Active => "active",
            DataKeyStatus::Deprecated => "deprecated",
            DataKeyStatus::Inactive => "inactive",
            DataKeyStatus::Destroyed => "destroyed",
        }
    }

    const fn code(self) -> u8 {
        match self {
            DataKeyStatus::Active => 1,
            DataKeyStatus::Deprecated => 2,
            DataKeyStatus::Inactive => 3,
            DataKeyStatus::Destroyed => 4,
        }
    }

    fn from_code(code: u8) -> Result<DataKeyStatus> {
        match code {
            1 => Ok(DataKeyStatus::Active),
            2 => Ok(DataKeyStatus::Deprecated),
            3 => Ok(DataKeyStatus::Inactive),
            4 => Ok(DataKeyStatus::Destroyed),
            _ => Err(CryptoError::Malformed("unknown data key status")),
        }
    }
}

impl fmt::Display for DataKeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataKeyStatus {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(DataKeyStatus::Active),
            "deprecated" => Ok(DataKeyStatus::Deprecated),
            "inactive" => Ok(DataKeyStatus::Inactive),
            "destroyed" => Ok(DataKeyStatus::Destroyed),
            _ => Err(CryptoError::Malformed("unknown data key status")),
        }
    }
}

/// All data keys of one scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataKeySet {
    pub scope: String,
    pub keys: Vec<DataKeyEntry>,
}

/// One data key, wrapped under a KEK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataKeyEntry {
    pub id: u32,
    pub algorithm: Algorithm,
    pub status: DataKeyStatus,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub version: u64,
    pub kek_id: u32,
    pub wrapped: Vec<u8>,
}

impl DataKeySet {
    /// The key new secrets are sealed with.
    pub fn active(&self) -> Option<&DataKeyEntry> {
        self.keys.iter().find(|k| k.status == DataKeyStatus::Active)
    }

    pub fn by_id(&self, id: u32) -> Option<&DataKeyEntry> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The set's body, for [`crate::sealed::seal`] with [`KIND_DATA_KEYS`].
    pub fn encode(&self) -> Vec<u8> {
        let body: usize = self
            .keys
            .iter()
            .map(|k| MIN_DATA_KEY_ENTRY + k.wrapped.len())
            .sum();
        let mut w = Writer::with_capacity(8 + self.scope.len() + body);
        w.bytes(self.scope.as_bytes());
        w.count(self.keys.len());
        for k in &self.keys {
            w.u32(k.id);
            w.u8(algorithm_code(k.algorithm));
            w.u8(k.status.code());
            w.i64(k.created_at_ms);
            w.i64(k.updated_at_ms);
            w.u64(k.version);
            w.u32(k.kek_id);
            w.bytes(&k.wrapped);
        }
        w.0
    }

    /// Reads a body written by [`DataKeySet::encode`].
    pub fn decode(input: &[u8]) -> Result<DataKeySet> {
        let mut r = Reader { input };
        let scope = String::from_utf8(r.bytes()?)
            .map_err(|_| CryptoError::Malformed("scope is not UTF-8"))?;
        let count = r.count()?;
        let mut keys = Vec::with_capacity(count.min(r.remaining() / MIN_DATA_KEY_ENTRY));
        for _ in 0..count {
            keys.push(DataKeyEntry {
                id: r.u32()?,
                algorithm: algorithm_from_code(r.u8()?)?,
                status: DataKeyStatus::from_code(r.u8()?)?,
                created_at_ms: r.i64()?,
                updated_at_ms: r.i64()?,
                version: r.u64()?,
                kek_id: r.u32()?,
                wrapped: r.bytes()?,
            });
        }
        r.finish()?;
        Ok(DataKeySet { scope, keys })
    }

    /// Reads a format 1 set (`0x01 ‖ 'D' ‖ body`), which carried no tag.
    pub fn decode_legacy(input: &[u8]) -> Result<DataKeySet> {
        DataKeySet::decode(legacy_body(input, KIND_DATA_KEYS, "not a data key set")?)
    }
}

/// A system key as stored: wrapped by the KEK `kek_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemKeyRecord {
    pub kek_id: u32,
    /// The KEK's output prefix ‖ nonce ‖ ciphertext ‖ tag.
    pub wrapped: Vec<u8>,
}

impl SystemKeyRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(2 + 4 + self.wrapped.len());
        w.u8(FORMAT_VERSION);
        w.u8(KIND_SYSTEM_KEY);
        w.u32(self.kek_id);
        w.0.extend_from_slice(&self.wrapped);
        w.0
    }

    /// Reads a record written by [`SystemKeyRecord::encode`], or a bare
    /// wrapped key an older build stored, whose `TINK` or `LEGACY` output
    /// prefix names its KEK.
    pub fn decode(input: &[u8]) -> Result<SystemKeyRecord> {
        match input {
            [FORMAT_VERSION, KIND_SYSTEM_KEY, a, b, c, d, wrapped @ ..] => Ok(SystemKeyRecord {
                kek_id: u32::from_be_bytes([*a, *b, *c, *d]),
                wrapped: wrapped.to_vec(),
            }),
            [
                crate::prefix::TINK_START_BYTE | crate::prefix::LEGACY_START_BYTE,
                a,
                b,
                c,
                d,
                _,
                ..,
            ] => Ok(SystemKeyRecord {
                kek_id: u32::from_be_bytes([*a, *b, *c, *d]),
                wrapped: input.to_vec(),
            }),
            _ => Err(CryptoError::Malformed("not a system key record")),
        }
    }
}

/// The body of a format 1 record of `kind`.
fn legacy_body<'a>(input: &'a [u8], kind: u8, wrong_kind: &'static str) -> Result<&'a [u8]> {
    match input {
        [] => Err(CryptoError::Malformed("empty record")),
        [crate::sealed::LEGACY_FORMAT, found, body @ ..] if *found == kind => Ok(body),
        [crate::sealed::LEGACY_FORMAT, ..] => Err(CryptoError::Malformed(wrong_kind)),
        [format, ..] => Err(CryptoError::UnsupportedFormat(*format)),
    }
}

const fn algorithm_code(algorithm: Algorithm) -> u8 {
    match algorithm {
        Algorithm::Aes128Gcm => 1,
        Algorithm::Aes256Gcm => 2,
    }
}

fn algorithm_from_code(code: u8) -> Result<Algorithm> {
    match code {
        1 => Ok(Algorithm::Aes128Gcm),
        2 => Ok(Algorithm::Aes256Gcm),
        _ => Err(CryptoError::Malformed("unknown algorithm code")),
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn with_capacity(capacity: usize) -> Writer {
        Writer(Vec::with_capacity(capacity))
    }

    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn count(&mut self, n: usize) {
        // Past u32::MAX the record is undecodable anyway (MAX_ENTRIES); saturate
        // rather than panic.
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.input.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.input.len() {
            return Err(CryptoError::Malformed("record is truncated"));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let Some((head, rest)) = self.input.split_first_chunk::<N>() else {
            return Err(CryptoError::Malformed("record is truncated"));
        };
        self.input = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn count(&mut self) -> Result<usize> {
        let n = self.u32()? as usize;
        if n > MAX_ENTRIES {
            return Err(CryptoError::Malformed("more than 10,000 entries"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>> {
        let len = self.u32()? as usize;
        if len > MAX_FIELD_LEN {
            return Err(CryptoError::Malformed("field longer than 16 MiB"));
        }
        Ok(self.take(len)?.to_vec())
    }

    fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| CryptoError::Malformed("text is not UTF-8"))
    }

    fn finish(self) -> Result<()> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(CryptoError::Malformed("trailing bytes after record"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_secret_record_layout() {
        assert_eq!(SecretRecord::default().encode(), [0, 0, 0, 0]);
    }

    #[test]
    fn one_version_layout() {
        let record = SecretRecord {
            versions: vec![VersionEntry {
                version: 1,
                created_at_ms: 2,
                deleted_at_ms: Some(3),
                destroyed_at_ms: None,
                format: ValueFormat::Text,
                data_key_id: 4,
                wrapped_key: vec![5],
                ciphertext: vec![6, 7],
            }],
            meta: SecretMeta::default(),
        };
        let expected: Vec<u8> = [
            &[0, 0, 0, 1][..],
            &[0, 0, 0, 1],
            &[0, 0, 0, 0, 0, 0, 0, 2],
            &[1, 0, 0, 0, 0, 0, 0, 0, 3],
            &[0, 0, 0, 4],
            &[0, 0, 0, 1, 5],
            &[0, 0, 0, 2, 6, 7],
        ]
        .concat();
        assert_eq!(record.encode(), expected);
        assert_eq!(SecretRecord::decode(&expected).unwrap(), record);
        let legacy = [&[1, b'S'][..], &expected].concat();
        assert_eq!(SecretRecord::decode_legacy(&legacy).unwrap(), record);
    }

    #[test]
    fn destroyed_versions_and_metadata_layout() {
        let record = SecretRecord {
            versions: vec![VersionEntry {
                version: 1,
                created_at_ms: 2,
                deleted_at_ms: Some(3),
                destroyed_at_ms: Some(4),
                format: ValueFormat::Json,
                data_key_id: 5,
                wrapped_key: vec![],
                ciphertext: vec![],
            }],
            meta: SecretMeta {
                max_versions: 6,
                cas_required: true,
                updated_at_ms: 7,
                custom: BTreeMap::from([("a".to_owned(), "b".to_owned())]),
            },
        };
        let expected: Vec<u8> = [
            &[0, 0, 0, 1][..],
            &[0, 0, 0, 1],
            &[0, 0, 0, 0, 0, 0, 0, 2],
            &[7, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4],
            &[0, 0, 0, 5],
            &[0, 0, 0, 0],
            &[0, 0, 0, 0],
            &[b'M', 0, 0, 0, 6, 1, 0, 0, 0, 0, 0, 0, 0, 7],
            &[0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b'],
        ]
        .concat();
        assert_eq!(record.encode(), expected);
        assert_eq!(SecretRecord::decode(&expected).unwrap(), record);
    }

    #[test]
    fn unknown_state_flags_and_unordered_metadata_are_refused() {
        let flags = [&[0, 0, 0, 1, 0, 0, 0, 1][..], &[0; 8], &[8]].concat();
        assert_eq!(
            SecretRecord::decode(&flags),
            Err(CryptoError::Malformed("bad version state flags"))
        );
        let meta = |pairs: &[u8]| [&[0, 0, 0, 0, b'M', 0, 0, 0, 0, 0][..], &[0; 8], pairs].concat();
        let twice = [
            &[0, 0, 0, 2][..],
            &[0, 0, 0, 1, b'a', 0, 0, 0, 0],
            &[0, 0, 0, 1, b'a', 0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(
            SecretRecord::decode(&meta(&twice)),
            Err(CryptoError::Malformed("custom metadata keys out of order"))
        );
        assert_eq!(
            SecretRecord::decode(&[0, 0, 0, 0, b'X']),
            Err(CryptoError::Malformed("trailing bytes after the versions"))
        );
    }

    #[test]
    fn legacy_kinds_are_not_interchangeable() {
        let set = [&[1, b'D'][..], &DataKeySet::default().encode()].concat();
        assert_eq!(
            SecretRecord::decode_legacy(&set),
            Err(CryptoError::Malformed("not a secret record"))
        );
        let rec = [&[1, b'S'][..], &SecretRecord::default().encode()].concat();
        assert_eq!(
            DataKeySet::decode_legacy(&rec),
            Err(CryptoError::Malformed("not a data key set"))
        );
        assert_eq!(
            SecretRecord::decode_legacy(&[2, b'S']),
            Err(CryptoError::UnsupportedFormat(2))
        );
        assert_eq!(
            SecretRecord::decode_legacy(&[]),
            Err(CryptoError::Malformed("empty record"))
        );
    }

    #[test]
    fn huge_counts_and_lengths_are_refused_without_allocating() {
        assert_eq!(
            SecretRecord::decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(CryptoError::Malformed("more than 10,000 entries"))
        );
        // 10,000 claimed entries in 4 bytes: rejected as truncated.
        assert_eq!(
            SecretRecord::decode(&[0, 0, 0x27, 0x10]),
            Err(CryptoError::Malformed("record is truncated"))
        );
        assert_eq!(
            DataKeySet::decode(&[0x01, 0, 0, 1]),
            Err(CryptoError::Malformed("field longer than 16 MiB"))
        );
    }

    #[test]
    fn system_key_records_name_their_kek_in_every_form() {
        let record = SystemKeyRecord {
            kek_id: 0x0102_0304,
            wrapped: vec![9; 40],
        };
        assert_eq!(SystemKeyRecord::decode(&record.encode()).unwrap(), record);
        // What older builds stored: the wrapped key alone, TINK or LEGACY prefixed.
        for start in [1u8, 0] {
            let bare = [&[start, 0, 0, 0, 7][..], &[5; 40]].concat();
            let decoded = SystemKeyRecord::decode(&bare).unwrap();
            assert_eq!((decoded.kek_id, decoded.wrapped), (7, bare));
        }
        assert!(SystemKeyRecord::decode(&[2, b'K', 0]).is_err());
        assert!(SystemKeyRecord::decode(&[7; 40]).is_err());
    }
}
