//! Google Tink JSON keysets holding `AesGcmKey`s: the format
//! `tinkey create-keyset --key-template AES256_GCM --out-format json` writes.
//!
//! ```json
//! {
//!   "primaryKeyId": 2911958584,
//!   "key": [
//!     {
//!       "keyData": {
//!         "typeUrl": "type.googleapis.com/google.crypto.tink.AesGcmKey",
//!         "value": "GiD…",
//!         "keyMaterialType": "SYMMETRIC"
//!       },
//!       "status": "ENABLED",
//!       "keyId": 2911958584,
//!       "outputPrefixType": "TINK"
//!     }
//!   ]
//! }
//! ```
//!
//! `keyData.value` is standard padded base64 of the `AesGcmKey` protobuf:
//! field 1 `version` (varint, tag `0x08`, must be 0 and is usually omitted) and
//! field 3 `key_value` (bytes, tag `0x1a`). Key ids are unsigned 32-bit; a
//! negative JSON number is read as its two's complement because some writers
//! print ids signed.
//!
//! Keys that are not `ENABLED` and carry no key material (what `tinkey
//! destroy-key` leaves behind) are dropped while parsing: they can decrypt
//! nothing, and [`TinkKey`] always holds material. Unknown JSON fields are
//! ignored. Base64 text and decoded bytes live only in wiping buffers.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::key::{Algorithm, KeyMaterial};
use crate::prefix::OutputPrefix;

/// The only key type this codec reads and writes.
pub const AES_GCM_TYPE_URL: &str = "type.googleapis.com/google.crypto.tink.AesGcmKey";

/// A parsed keyset. `primary_key_id` names an `ENABLED` key in `keys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TinkKeyset {
    pub primary_key_id: u32,
    pub keys: Vec<TinkKey>,
}

impl TinkKeyset {
    /// The key new ciphertexts are made with.
    pub fn primary(&self) -> Option<&TinkKey> {
        self.get(self.primary_key_id)
    }

    pub fn get(&self, id: u32) -> Option<&TinkKey> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// One AES-GCM key of a keyset.
#[derive(Clone, PartialEq, Eq)]
pub struct TinkKey {
    pub id: u32,
    pub algorithm: Algorithm,
    pub status: KeyStatus,
    pub output_prefix: OutputPrefix,
    pub material: KeyMaterial,
}

impl fmt::Debug for TinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TinkKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("status", &self.status)
            .field("output_prefix", &self.output_prefix)
            .finish_non_exhaustive()
    }
}

/// Tink's `KeyStatusType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Enabled,
    Disabled,
    Destroyed,
}

impl KeyStatus {
    /// Tink's JSON name: `ENABLED`, `DISABLED` or `DESTROYED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Enabled => "ENABLED",
            KeyStatus::Disabled => "DISABLED",
            KeyStatus::Destroyed => "DESTROYED",
        }
    }

    fn parse(s: &str) -> Option<KeyStatus> {
        match s {
            "ENABLED" => Some(KeyStatus::Enabled),
            "DISABLED" => Some(KeyStatus::Disabled),
            "DESTROYED" => Some(KeyStatus::Destroyed),
            _ => None,
        }
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a keyset was refused. Messages name the key and field at fault and
/// never include key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TinkError {
    #[error("not a Tink JSON keyset: {0}")]
    Json(String),
    #[error("encrypted keysets are not supported: decrypt it with tinkey first")]
    Encrypted,
    #[error("keyset has no primaryKeyId")]
    MissingPrimary,
    #[error("primaryKeyId {0} is not in the keyset")]
    UnknownPrimary(u32),
    #[error("primary key {id} is {status}, not ENABLED")]
    PrimaryNotEnabled { id: u32, status: KeyStatus },
    #[error("key number {index} has no keyId")]
    MissingKeyId { index: usize },
    #[error("keyId {0} does not fit in 32 bits")]
    KeyIdRange(i64),
    #[error("key {0} appears more than once")]
    DuplicateKeyId(u32),
    #[error("key {id}: missing {field}")]
    MissingField { id: u32, field: &'static str },
    #[error("key {id}: unknown status {status}")]
    UnknownStatus { id: u32, status: String },
    #[error("key {id}: unknown outputPrefixType {prefix}")]
    UnknownOutputPrefix { id: u32, prefix: String },
    #[error("key {id}: unsupported key type {type_url}")]
    UnsupportedKeyType { id: u32, type_url: String },
    #[error("key {id}: keyMaterialType {material_type} is not SYMMETRIC")]
    KeyMaterialType { id: u32, material_type: String },
    #[error("key {id}: ENABLED key has no key material")]
    MissingKeyMaterial { id: u32 },
    #[error("key {id}: keyData.value is not valid base64")]
    Base64 { id: u32 },
    #[error("key {id}: keyData.value is not an AesGcmKey protobuf: {reason}")]
    Protobuf { id: u32, reason: &'static str },
    #[error("key {id}: AesGcmKey version {version} is not supported (only 0)")]
    KeyVersion { id: u32, version: u32 },
    #[error("key {id}: AES key must be 16 or 32 bytes, got {len}")]
    KeyLength { id: u32, len: usize },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonKeyset {
    primary_key_id: Option<i64>,
    #[serde(default)]
    key: Vec<JsonKey>,
    encrypted_keyset: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonKey {
    key_data: Option<JsonKeyData>,
    status: Option<String>,
    key_id: Option<i64>,
    output_prefix_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonKeyData {
    type_url: Option<String>,
    // Decoded straight into a wiping buffer: this is the key in base64.
    value: Option<Zeroizing<String>>,
    key_material_type: Option<String>,
}

/// Parses a cleartext Tink JSON keyset of AES-GCM keys.
pub fn parse_keyset_json(text: &str) -> Result<TinkKeyset, TinkError> {
    let json: JsonKeyset =
        serde_json::from_str(text).map_err(|e| TinkError::Json(e.to_string()))?;
    if json.encrypted_keyset.is_some() {
        return Err(TinkError::Encrypted);
    }

    // Every id seen, with its status, including dropped material-less keys, so
    // duplicate and primary checks see the whole keyset.
    let mut seen: Vec<(u32, KeyStatus)> = Vec::with_capacity(json.key.len());
    let mut keys = Vec::with_capacity(json.key.len());
    for (index, key) in json.key.into_iter().enumerate() {
        let id = key_id(key.key_id.ok_or(TinkError::MissingKeyId { index })?)?;
        if seen.iter().any(|(seen_id, _)| *seen_id == id) {
            return Err(TinkError::DuplicateKeyId(id));
        }
        let status_text = key.status.ok_or(TinkError::MissingField {
            id,
            field: "status",
        })?;
        let status = KeyStatus::parse(&status_text).ok_or(TinkError::UnknownStatus {
            id,
            status: status_text,
        })?;
        seen.push((id, status));
        let prefix_text = key.output_prefix_type.ok_or(TinkError::MissingField {
            id,
            field: "outputPrefixType",
        })?;
        let output_prefix =
            prefix_text
                .parse::<OutputPrefix>()
                .map_err(|_| TinkError::UnknownOutputPrefix {
                    id,
                    prefix: prefix_text,
                })?;

        match key_material(id, key.key_data)? {
            Some(material) => keys.push(TinkKey {
                id,
                algorithm: material.algorithm(),
                status,
                output_prefix,
                material,
            }),
            None if status == KeyStatus::Enabled => {
                return Err(TinkError::MissingKeyMaterial { id });
            }
            None => {}
        }
    }

    let primary_key_id = key_id(json.primary_key_id.ok_or(TinkError::MissingPrimary)?)?;
    match seen.iter().find(|(id, _)| *id == primary_key_id) {
        None => Err(TinkError::UnknownPrimary(primary_key_id)),
        Some((_, status)) if *status != KeyStatus::Enabled => Err(TinkError::PrimaryNotEnabled {
            id: primary_key_id,
            status: *status,
        }),
        Some(_) => Ok(TinkKeyset {
            primary_key_id,
            keys,
        }),
    }
}

/// Writes a keyset as pretty JSON with tinkey's field names and order.
pub fn keyset_to_json(keyset: &TinkKeyset) -> String {
    let values: Vec<Zeroizing<String>> = keyset
        .keys
        .iter()
        .map(|k| encode_key_value(&k.material))
        .collect();
    // Reserve everything up front: growing the String would leave copies of
    // the base64 key material in freed memory.
    let capacity = 64 + values.iter().map(|v| 320 + v.len()).sum::<usize>();
    let mut out = String::with_capacity(capacity);
    out.push_str("{\n  \"primaryKeyId\": ");
    out.push_str(&keyset.primary_key_id.to_string());
    out.push_str(",\n  \"key\": [");
    for (i, (key, value)) in keyset.keys.iter().zip(&values).enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        out.push_str("    {\n      \"keyData\": {\n        \"typeUrl\": \"");
        out.push_str(AES_GCM_TYPE_URL);
        out.push_str("\",\n        \"value\": \"");
        out.push_str(value);
        out.push_str(
            "\",\n        \"keyMaterialType\": \"SYMMETRIC\"\n      },\n      \"status\": \"",
        );
        out.push_str(key.status.as_str());
        out.push_str("\",\n      \"keyId\": ");
        out.push_str(&key.id.to_string());
        out.push_str(",\n      \"outputPrefixType\": \"");
        out.push_str(key.output_prefix.as_str());
        out.push_str("\"\n    }");
    }
    if !keyset.keys.is_empty() {
        out.push_str("\n  ");
    }
    out.push_str("]\n}\n");
    out
}

fn key_id(raw: i64) -> Result<u32, TinkError> {
    if let Ok(id) = u32::try_from(raw) {
        Ok(id)
    } else if let Ok(signed) = i32::try_from(raw) {
        // Written by a tool that prints ids as signed 32-bit integers.
        Ok(signed as u32)
    } else {
        Err(TinkError::KeyIdRange(raw))
    }
}

/// `Ok(None)` when the key carries no material at all.
fn key_material(id: u32, key_data: Option<JsonKeyData>) -> Result<Option<KeyMaterial>, TinkError> {
    let Some(data) = key_data else {
        return Ok(None);
    };
    let type_url = data.type_url.ok_or(TinkError::MissingField {
        id,
        field: "keyData.typeUrl",
    })?;
    if type_url != AES_GCM_TYPE_URL {
        return Err(TinkError::UnsupportedKeyType { id, type_url });
    }
    if let Some(material_type) = data.key_material_type
        && material_type != "SYMMETRIC"
    {
        return Err(TinkError::KeyMaterialType { id, material_type });
    }
    let Some(value) = data.value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };

    let mut proto = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(value.len())]);
    let len = STANDARD
        .decode_slice(value.as_bytes(), &mut proto)
        .map_err(|_| TinkError::Base64 { id })?;
    proto.truncate(len);

    let (version, key_value) =
        parse_aes_gcm_key(&proto).map_err(|reason| TinkError::Protobuf { id, reason })?;
    if version != 0 {
        return Err(TinkError::KeyVersion { id, version });
    }
    let algorithm = Algorithm::from_key_len(key_value.len()).ok_or(TinkError::KeyLength {
        id,
        len: key_value.len(),
    })?;
    KeyMaterial::from_zeroizing(algorithm, Zeroizing::new(key_value.to_vec()))
        .map(Some)
        .map_err(|e| match e {
            CryptoError::KeyLength { len, .. } => TinkError::KeyLength { id, len },
            _ => TinkError::Protobuf {
                id,
                reason: "bad key_value",
            },
        })
}

/// Base64 of the `AesGcmKey` protobuf `{ version: 0, key_value }`.
fn encode_key_value(material: &KeyMaterial) -> Zeroizing<String> {
    let key = material.as_bytes();
    let mut proto = Zeroizing::new(Vec::with_capacity(key.len() + 11));
    proto.push(0x1a);
    put_varint(&mut proto, key.len() as u64);
    proto.extend_from_slice(key);
    let capacity = base64::encoded_len(proto.len(), true).unwrap_or(0);
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    STANDARD.encode_string(proto.as_slice(), &mut out);
    out
}

/// Returns `(version, key_value)`. Unknown fields are skipped, as protobuf
/// requires; a repeated field keeps its last value.
fn parse_aes_gcm_key(mut input: &[u8]) -> Result<(u32, &[u8]), &'static str> {
    let mut version = 0u32;
    let mut key_value: &[u8] = &[];
    while !input.is_empty() {
        let tag = take_varint(&mut input)?;
        let field = tag >> 3;
        let wire_type = tag & 7;
        if field == 0 {
            return Err("field number 0");
        }
        match (field, wire_type) {
            (1, 0) => {
                version = u32::try_from(take_varint(&mut input)?)
                    .map_err(|_| "version does not fit in 32 bits")?;
            }
            (3, 2) => key_value = take_len_delimited(&mut input)?,
            (1 | 3, _) => return Err("wrong wire type for a known field"),
            (_, 0) => {
                take_varint(&mut input)?;
            }
            (_, 1) => take_bytes(&mut input, 8).map(drop)?,
            (_, 2) => take_len_delimited(&mut input).map(drop)?,
            (_, 5) => take_bytes(&mut input, 4).map(drop)?,
            _ => return Err("unsupported wire type"),
        }
    }
    Ok((version, key_value))
}

fn take_varint(input: &mut &[u8]) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for (i, byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return Err("varint overflows 64 bits");
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(value);
        }
    }
    Err("truncated or overlong varint")
}

fn take_bytes<'a>(input: &mut &'a [u8], len: usize) -> Result<&'a [u8], &'static str> {
    if len > input.len() {
        return Err("truncated field");
    }
    let (head, rest) = input.split_at(len);
    *input = rest;
    Ok(head)
}

fn take_len_delimited<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], &'static str> {
    let len = take_varint(input)?;
    let len = usize::try_from(len).map_err(|_| "truncated field")?;
    take_bytes(input, len)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_round_trip_and_unknown_fields() {
        let material = KeyMaterial::new(Algorithm::Aes128Gcm, (0..16).collect()).unwrap();
        let b64 = encode_key_value(&material);
        let proto = STANDARD.decode(b64.as_bytes()).unwrap();
        assert_eq!(proto[..2], [0x1a, 16]);
        let (version, key) = parse_aes_gcm_key(&proto).unwrap();
        assert_eq!((version, key), (0, material.as_bytes()));

        // version 0 written explicitly, an unknown varint field 9, then the key.
        let mut explicit = vec![0x08, 0x00, 0x48, 0x96, 0x01];
        explicit.extend_from_slice(&proto);
        assert_eq!(
            parse_aes_gcm_key(&explicit).unwrap(),
            (0, material.as_bytes())
        );
    }

    #[test]
    fn protobuf_garbage_is_refused() {
        for bad in [
            &[0x1a, 0x05, 1][..],
            &[0x1a],
            &[0x00, 0x00],
            &[0x08, 0x80],
            &[0x0b],
            &[0x18, 0x01],
        ] {
            assert!(parse_aes_gcm_key(bad).is_err(), "{bad:?}");
        }
        let overlong = [0xffu8; 11];
        assert!(take_varint(&mut &overlong[..]).is_err());
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut slice = &buf[..];
            assert_eq!(take_varint(&mut slice), Ok(v));
            assert!(slice.is_empty());
        }
    }

    #[test]
    fn key_ids_accept_signed_writers() {
        assert_eq!(key_id(2_911_958_584).unwrap(), 2_911_958_584);
        assert_eq!(key_id(-1).unwrap(), u32::MAX);
        assert_eq!(key_id(-1_383_008_712).unwrap(), 2_911_958_584);
        assert!(key_id(1 << 32).is_err());
        assert!(key_id(-(1 << 31) - 1).is_err());
    }
}
