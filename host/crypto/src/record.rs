//! The byte format of the records coffer stores. Storage plugins only ever
//! see these bytes, which hold ciphertext and wrapped keys, never plaintext.
//!
//! Every record starts with a format version byte (`0x01`) and a kind byte;
//! integers are big endian; variable-length fields are a `u32` length then
//! the bytes. Decoding is strict: unknown versions or kinds, lengths beyond
//! the data, more than 10,000 entries, fields over 16 MiB and trailing bytes
//! are all errors, and no input makes it panic.
//!
//! Secret record (kind `0x01`): `u32` version count, then per version in
//! ascending order:
//!
//! | field | type |
//! | --- | --- |
//! | version | u32 |
//! | created_at_ms | i64 |
//! | deleted flag, then deleted_at_ms if 1 | u8, i64 |
//! | data_key_id | u32 |
//! | wrapped_key | bytes |
//! | ciphertext | bytes |
//!
//! Data-key set (kind `0x02`): scope (bytes, UTF-8), `u32` key count, then per key:
//!
//! | field | type |
//! | --- | --- |
//! | id | u32 |
//! | algorithm | u8 (1 AES-128-GCM, 2 AES-256-GCM) |
//! | status | u8 (1 active, 2 deprecated, 3 inactive, 4 destroyed) |
//! | created_at_ms, updated_at_ms | i64, i64 |
//! | version | u64 |
//! | kek_id | u32 |
//! | wrapped | bytes |

use crate::error::{CryptoError, Result};
use crate::key::Algorithm;

const FORMAT_V1: u8 = 0x01;
const KIND_SECRET: u8 = 0x01;
const KIND_DATA_KEYS: u8 = 0x02;
const MAX_FIELD: usize = 16 << 20;
const MAX_ENTRIES: usize = 10_000;

/// One stored secret with its retained versions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretRecord {
    pub versions: Vec<VersionEntry>,
}

/// One sealed version of a secret.
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
    pub fn latest(&self) -> Option<&VersionEntry> {
        self.versions.last()
    }

    pub fn get(&self, version: u32) -> Option<&VersionEntry> {
        self.versions.iter().find(|v| v.version == version)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(KIND_SECRET);
        w.count(self.versions.len());
        for v in &self.versions {
            w.u32(v.version);
            w.i64(v.created_at_ms);
            match v.deleted_at_ms {
                Some(at) => {
                    w.u8(1);
                    w.i64(at);
                }
                None => w.u8(0),
            }
            w.u32(v.data_key_id);
            w.bytes(&v.wrapped_key);
            w.bytes(&v.ciphertext);
        }
        w.out
    }

    pub fn decode(data: &[u8]) -> Result<SecretRecord> {
        let mut r = Reader::new(data, KIND_SECRET)?;
        let count = r.count()?;
        let mut versions = Vec::with_capacity(count.min(64));
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

/// Lifecycle state of a data key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKeyStatus {
    Active,
    Deprecated,
    Inactive,
    Destroyed,
}

impl DataKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DataKeyStatus::Active => "active",
            DataKeyStatus::Deprecated => "deprecated",
            DataKeyStatus::Inactive => "inactive",
            DataKeyStatus::Destroyed => "destroyed",
        }
    }

    fn code(self) -> u8 {
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

/// The data keys of one scope (namespace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataKeySet {
    pub scope: String,
    pub keys: Vec<DataKeyEntry>,
}

/// One data key, wrapped by the KEK `kek_id`.
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
    pub fn active(&self) -> Option<&DataKeyEntry> {
        self.keys.iter().find(|k| k.status == DataKeyStatus::Active)
    }

    pub fn by_id(&self, id: u32) -> Option<&DataKeyEntry> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(KIND_DATA_KEYS);
        w.bytes(self.scope.as_bytes());
        w.count(self.keys.len());
        for k in &self.keys {
            w.u32(k.id);
            w.u8(match k.algorithm {
                Algorithm::Aes128Gcm => 1,
                Algorithm::Aes256Gcm => 2,
            });
            w.u8(k.status.code());
            w.i64(k.created_at_ms);
            w.i64(k.updated_at_ms);
            w.u64(k.version);
            w.u32(k.kek_id);
            w.bytes(&k.wrapped);
        }
        w.out
    }

    pub fn decode(data: &[u8]) -> Result<DataKeySet> {
        let mut r = Reader::new(data, KIND_DATA_KEYS)?;
        let scope = String::from_utf8(r.bytes()?).map_err(|_| CryptoError::Malformed("scope is not UTF-8"))?;
        let count = r.count()?;
        let mut keys = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let id = r.u32()?;
            let algorithm = match r.u8()? {
                1 => Algorithm::Aes128Gcm,
                2 => Algorithm::Aes256Gcm,
                _ => return Err(CryptoError::Malformed("unknown algorithm")),
            };
            keys.push(DataKeyEntry {
                id,
                algorithm,
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

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn new(kind: u8) -> Writer {
        Writer { out: vec![FORMAT_V1, kind] }
    }

    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn count(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    fn bytes(&mut self, b: &[u8]) {
        self.count(b.len());
        self.out.extend_from_slice(b);
    }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], kind: u8) -> Result<Reader<'a>> {
        match data {
            [FORMAT_V1, k, rest @ ..] if *k == kind => Ok(Reader { data: rest }),
            [FORMAT_V1, _, ..] => Err(CryptoError::Malformed("record of another kind")),
            [version, ..] => Err(CryptoError::UnsupportedFormat(*version)),
            [] => Err(CryptoError::Malformed("empty record")),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.data.len() < n {
            return Err(CryptoError::Malformed("record is truncated"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn count(&mut self) -> Result<usize> {
        let n = self.u32()? as usize;
        if n > MAX_ENTRIES {
            return Err(CryptoError::Malformed("too many entries"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>> {
        let n = self.u32()? as usize;
        if n > MAX_FIELD {
            return Err(CryptoError::Malformed("field too large"));
        }
        Ok(self.take(n)?.to_vec())
    }

    fn finish(self) -> Result<()> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(CryptoError::Malformed("trailing bytes after record"))
        }
    }
}
