//! The versioned byte format of records coffer stores: a secret's versions
//! ([`SecretRecord`]) and a scope's data keys ([`DataKeySet`]).
//!
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
//! Both kinds start with the same header:
//!
//! | field          | type | value                                         |
//! |----------------|------|-----------------------------------------------|
//! | format version | u8   | `0x01`                                        |
//! | kind           | u8   | `0x53` (`'S'`) secret, `0x44` (`'D'`) data keys |
//!
//! A **secret record** continues with:
//!
//! | field            | type  | notes                                      |
//! |------------------|-------|--------------------------------------------|
//! | version count    | u32   | ≤ 10,000; then that many entries:          |
//! | ↳ version        | u32   | entries are written in ascending order     |
//! | ↳ created_at_ms  | i64   | Unix epoch milliseconds                    |
//! | ↳ deleted flag   | u8    | `0` live, `1` deleted (anything else is refused) |
//! | ↳ deleted_at_ms  | i64   | present only when the flag is `1`          |
//! | ↳ data_key_id    | u32   | data key the secret key is wrapped under   |
//! | ↳ wrapped_key    | bytes | output prefix ‖ nonce ‖ ciphertext ‖ tag   |
//! | ↳ ciphertext     | bytes | nonce ‖ ciphertext ‖ tag                   |
//!
//! A **data key set** continues with:
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
//! Encoding does not check the limits; writers must keep values below 16 MiB
//! and entry counts below 10,000 or the record will not decode.

use std::fmt;
use std::str::FromStr;

use crate::error::{CryptoError, Result};
use crate::key::Algorithm;

/// The only record format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 0x01;
/// Kind byte of a [`SecretRecord`].
pub const KIND_SECRET: u8 = b'S';
/// Kind byte of a [`DataKeySet`].
pub const KIND_DATA_KEYS: u8 = b'D';
/// Largest single variable-length field accepted when decoding.
pub const MAX_FIELD_LEN: usize = 16 * 1024 * 1024;
/// Largest number of versions or keys accepted when decoding.
pub const MAX_ENTRIES: usize = 10_000;

/// Smallest encoded size of one version entry, used to bound preallocation.
const MIN_VERSION_ENTRY: usize = 4 + 8 + 1 + 4 + 4 + 4;
/// Smallest encoded size of one data key entry.
const MIN_DATA_KEY_ENTRY: usize = 4 + 1 + 1 + 8 + 8 + 8 + 4 + 4;

/// All versions of one secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretRecord {
    /// Ascending by `version`.
    pub versions: Vec<VersionEntry>,
}

/// One version of a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    pub version: u32,
    pub created_at_ms: i64,
    pub deleted_at_ms: Option<i64>,
    pub data_key_id: u32,
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl SecretRecord {
    /// The highest version, deleted or not.
    pub fn latest(&self) -> Option<&VersionEntry> {
        self.versions.iter().max_by_key(|v| v.version)
    }

    pub fn get(&self, version: u32) -> Option<&VersionEntry> {
        self.versions.iter().find(|v| v.version == version)
    }

    pub fn encode(&self) -> Vec<u8> {
        let body: usize = self
            .versions
            .iter()
            .map(|v| MIN_VERSION_ENTRY + 8 + v.wrapped_key.len() + v.ciphertext.len())
            .sum();
        let mut w = Writer::new(KIND_SECRET, 4 + body);
        w.count(self.versions.len());
        for v in &self.versions {
            w.u32(v.version);
            w.i64(v.created_at_ms);
            match v.deleted_at_ms {
                None => w.u8(0),
                Some(at) => {
                    w.u8(1);
                    w.i64(at);
                }
            }
            w.u32(v.data_key_id);
            w.bytes(&v.wrapped_key);
            w.bytes(&v.ciphertext);
        }
        w.0
    }

    pub fn decode(input: &[u8]) -> Result<SecretRecord> {
        let mut r = Reader::new(input, KIND_SECRET, "not a secret record")?;
        let count = r.count()?;
        let mut versions = Vec::with_capacity(count.min(r.remaining() / MIN_VERSION_ENTRY));
        for _ in 0..count {
            let version = r.u32()?;
            let created_at_ms = r.i64()?;
            let deleted_at_ms = match r.u8()? {
                0 => None,
                1 => Some(r.i64()?),
                _ => return Err(CryptoError::Malformed("bad deleted flag")),
            };
            versions.push(VersionEntry {
                version,
                created_at_ms,
                deleted_at_ms,
                data_key_id: r.u32()?,
                wrapped_key: r.bytes()?,
                ciphertext: r.bytes()?,
            });
        }
        r.finish()?;
        Ok(SecretRecord { versions })
    }
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

    pub fn encode(&self) -> Vec<u8> {
        let body: usize = self
            .keys
            .iter()
            .map(|k| MIN_DATA_KEY_ENTRY + k.wrapped.len())
            .sum();
        let mut w = Writer::new(KIND_DATA_KEYS, 8 + self.scope.len() + body);
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

    pub fn decode(input: &[u8]) -> Result<DataKeySet> {
        let mut r = Reader::new(input, KIND_DATA_KEYS, "not a data key set")?;
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
    fn new(kind: u8, capacity: usize) -> Writer {
        let mut out = Vec::with_capacity(2 + capacity);
        out.push(FORMAT_VERSION);
        out.push(kind);
        Writer(out)
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
    fn new(input: &'a [u8], kind: u8, wrong_kind: &'static str) -> Result<Reader<'a>> {
        let mut r = Reader { input };
        let version = r.u8().map_err(|_| CryptoError::Malformed("empty record"))?;
        if version != FORMAT_VERSION {
            return Err(CryptoError::UnsupportedFormat(version));
        }
        if r.u8()? != kind {
            return Err(CryptoError::Malformed(wrong_kind));
        }
        Ok(r)
    }

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
        assert_eq!(SecretRecord::default().encode(), [1, b'S', 0, 0, 0, 0]);
    }

    #[test]
    fn one_version_layout() {
        let record = SecretRecord {
            versions: vec![VersionEntry {
                version: 1,
                created_at_ms: 2,
                deleted_at_ms: Some(3),
                data_key_id: 4,
                wrapped_key: vec![5],
                ciphertext: vec![6, 7],
            }],
        };
        let expected: Vec<u8> = [
            &[1, b'S', 0, 0, 0, 1][..],
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
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let set = DataKeySet::default().encode();
        assert_eq!(
            SecretRecord::decode(&set),
            Err(CryptoError::Malformed("not a secret record"))
        );
        let rec = SecretRecord::default().encode();
        assert_eq!(
            DataKeySet::decode(&rec),
            Err(CryptoError::Malformed("not a data key set"))
        );
    }

    #[test]
    fn unknown_format_version() {
        assert_eq!(
            SecretRecord::decode(&[2, b'S']),
            Err(CryptoError::UnsupportedFormat(2))
        );
        assert_eq!(
            SecretRecord::decode(&[]),
            Err(CryptoError::Malformed("empty record"))
        );
    }

    #[test]
    fn huge_counts_and_lengths_are_refused_without_allocating() {
        assert_eq!(
            SecretRecord::decode(&[1, b'S', 0xff, 0xff, 0xff, 0xff]),
            Err(CryptoError::Malformed("more than 10,000 entries"))
        );
        // 10,000 claimed entries in 6 bytes: rejected as truncated.
        assert_eq!(
            SecretRecord::decode(&[1, b'S', 0, 0, 0x27, 0x10]),
            Err(CryptoError::Malformed("record is truncated"))
        );
        assert_eq!(
            DataKeySet::decode(&[1, b'D', 0x01, 0, 0, 1]),
            Err(CryptoError::Malformed("field longer than 16 MiB"))
        );
    }
}
