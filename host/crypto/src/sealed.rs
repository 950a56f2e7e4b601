//! The authenticated envelope every record coffer stores travels in.
//!
//! Storage is not trusted: a DBA, a restored backup or a hostile storage
//! plugin can write any bytes under any key. A sealed record carries an
//! HMAC-SHA256 tag under the record key (a system key the KEK wraps), over
//! the storage key it is filed under and every byte before the tag, so a
//! record that was forged, edited, or copied or moved to another key fails
//! to open. Each record also carries a generation, bumped on every write,
//! so a reader that remembers the highest generation it saw can tell a
//! record rolled back to an older copy.
//!
//! # Layout
//!
//! | field      | type     | notes                                              |
//! |------------|----------|----------------------------------------------------|
//! | format     | u8       | `0x02` (format `0x01` records carried no tag)      |
//! | kind       | u8       | what the body holds, e.g. `'S'` a secret           |
//! | generation | u64 (BE) | `1` for a new record, then one more on every write |
//! | body       | bytes    | the kind's own encoding, to the tag                |
//! | tag        | 32 bytes | see below                                          |
//!
//! `tag = HMAC-SHA256(record key, "coffer.record.v2" ‖ len(storage key) (u32 BE) ‖
//! storage key ‖ format ‖ kind ‖ generation ‖ body)`.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};

/// The format byte of a sealed record.
pub const FORMAT: u8 = 0x02;
/// The format byte of the unauthenticated records older builds wrote.
pub const LEGACY_FORMAT: u8 = 0x01;
/// Length of the tag at the end of a sealed record.
pub const TAG_LEN: usize = 32;
/// Bytes before the body: format, kind and generation.
pub const HEADER_LEN: usize = 2 + 8;
/// The label the tag's input starts with.
const LABEL: &[u8] = b"coffer.record.v2";

/// The key records are authenticated with. `Debug` never shows it.
#[derive(Clone)]
pub struct RecordKey(Zeroizing<[u8; 32]>);

impl RecordKey {
    /// A record key from 32 bytes of key material.
    pub fn new(bytes: &[u8]) -> Result<RecordKey> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::Malformed("a record key is 32 bytes"))?;
        Ok(RecordKey(Zeroizing::new(bytes)))
    }

    fn tag(&self, storage_key: &str, sealed_part: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes keys of any length");
        mac.update(LABEL);
        let len = u32::try_from(storage_key.len()).unwrap_or(u32::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(storage_key.as_bytes());
        mac.update(sealed_part);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordKey(..)")
    }
}

/// An opened record: authentic, and filed under the key it was sealed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    pub kind: u8,
    pub generation: u64,
    pub body: &'a [u8],
    /// The record's tag: two authentic records of one generation with
    /// different tags are a fork, not the same record.
    pub tag: [u8; TAG_LEN],
}

/// Seals `body` as a record of `kind` at `generation`, to be stored under
/// `storage_key`.
pub fn seal(key: &RecordKey, storage_key: &str, kind: u8, generation: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + TAG_LEN);
    out.push(FORMAT);
    out.push(kind);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(body);
    let tag = key.tag(storage_key, &out);
    out.extend_from_slice(&tag);
    out
}

/// Opens a record read from `storage_key`, which must be of `kind`.
///
/// A record whose tag does not verify — forged, edited, or filed under
/// another key — is [`CryptoError::Integrity`]; a record of the older,
/// unauthenticated format is [`CryptoError::UnsupportedFormat`] with
/// [`LEGACY_FORMAT`].
pub fn open<'a>(
    key: &RecordKey,
    storage_key: &str,
    kind: u8,
    bytes: &'a [u8],
) -> Result<Opened<'a>> {
    let parts = split(bytes)?;
    let (sealed_part, _) = bytes.split_at(bytes.len() - TAG_LEN);
    let expected = key.tag(storage_key, sealed_part);
    if !bool::from(expected.ct_eq(&parts.tag)) {
        return Err(CryptoError::Integrity);
    }
    if parts.kind != kind {
        return Err(CryptoError::Malformed("record is of another kind"));
    }
    Ok(parts)
}

/// Splits a sealed record into its parts **without checking its tag**, for
/// tools and tests that look at stored bytes. Nothing read this way may be
/// trusted.
pub fn danger_parse_unverified(bytes: &[u8]) -> Result<Opened<'_>> {
    split(bytes)
}

fn split(bytes: &[u8]) -> Result<Opened<'_>> {
    match bytes.first() {
        None => return Err(CryptoError::Malformed("empty record")),
        Some(&FORMAT) => {}
        Some(&other) => return Err(CryptoError::UnsupportedFormat(other)),
    }
    if bytes.len() < HEADER_LEN + TAG_LEN {
        return Err(CryptoError::Malformed("record is truncated"));
    }
    let (rest, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    let (header, body) = rest.split_at(HEADER_LEN);
    let mut generation = [0u8; 8];
    generation.copy_from_slice(&header[2..]);
    let mut tag_bytes = [0u8; TAG_LEN];
    tag_bytes.copy_from_slice(tag);
    Ok(Opened {
        kind: header[1],
        generation: u64::from_be_bytes(generation),
        body,
        tag: tag_bytes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(byte: u8) -> RecordKey {
        RecordKey::new(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_sealed_record_opens_under_its_key_only() {
        let sealed = seal(&key(1), "secrets/ns/db", b'S', 7, b"body");
        let opened = open(&key(1), "secrets/ns/db", b'S', &sealed).unwrap();
        assert_eq!(
            (opened.kind, opened.generation, opened.body),
            (b'S', 7, &b"body"[..])
        );
        assert_eq!(
            open(&key(2), "secrets/ns/db", b'S', &sealed),
            Err(CryptoError::Integrity)
        );
        assert_eq!(
            open(&key(1), "secrets/ns/other", b'S', &sealed),
            Err(CryptoError::Integrity)
        );
        assert!(matches!(
            open(&key(1), "secrets/ns/db", b'D', &sealed),
            Err(CryptoError::Malformed(_))
        ));
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        let sealed = seal(&key(1), "k", b'T', 1, b"{\"a\":1}");
        for index in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[index] ^= 1 << bit;
                assert!(open(&key(1), "k", b'T', &bad).is_err(), "{index}/{bit}");
            }
        }
        for len in 0..sealed.len() {
            assert!(open(&key(1), "k", b'T', &sealed[..len]).is_err(), "{len}");
        }
    }

    #[test]
    fn legacy_records_are_named_as_such() {
        assert_eq!(
            open(&key(1), "k", b'S', &[1, b'S', 0, 0, 0, 0]),
            Err(CryptoError::UnsupportedFormat(LEGACY_FORMAT))
        );
    }

    #[test]
    fn the_key_is_never_shown() {
        assert_eq!(format!("{:?}", key(0xAB)), "RecordKey(..)");
    }
}
