//! Google Tink's JSON keyset format, exactly as `tinkey create-keyset
//! --out-format json` writes it (cleartext keysets only), for AES-GCM keys.
//!
//! `keyData.value` is the base64 of an `AesGcmKey` protobuf: field 1
//! `version` (varint, 0) and field 3 `key_value` (bytes). Key ids are
//! unsigned 32-bit; a negative JSON id (some writers print signed) is read
//! as its two's complement.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::key::{Algorithm, KeyMaterial};
use crate::prefix::OutputPrefix;

const AES_GCM_TYPE_URL: &str = "type.googleapis.com/google.crypto.tink.AesGcmKey";

/// Whether a key may be used (Tink's `KeyStatusType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Enabled,
    Disabled,
    Destroyed,
}

/// A keyset: keys and the id of the primary one.
#[derive(Clone, Debug)]
pub struct TinkKeyset {
    pub primary_key_id: u32,
    pub keys: Vec<TinkKey>,
}

/// One AES-GCM key of a keyset.
#[derive(Clone)]
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

/// Why a keyset cannot be used; says where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum TinkError {
    #[error("the keyset is not valid JSON: {0}")]
    Json(String),
    #[error("encrypted keysets are not supported: decrypt it with tinkey first")]
    Encrypted,
    #[error("key {id}: {message}")]
    Key { id: u32, message: String },
    #[error("the keyset has no keys")]
    Empty,
    #[error("key id {0} appears twice")]
    DuplicateId(u32),
    #[error("primaryKeyId {0} is not in the keyset")]
    MissingPrimary(u32),
    #[error("the primary key {0} is not enabled")]
    PrimaryNotEnabled(u32),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonKeyset {
    primary_key_id: Option<i64>,
    #[serde(default)]
    key: Vec<JsonKey>,
    encrypted_keyset: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonKey {
    key_data: Option<JsonKeyData>,
    status: String,
    key_id: i64,
    output_prefix_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonKeyData {
    type_url: String,
    value: Zeroizing<String>,
    key_material_type: Option<String>,
}

fn key_id(raw: i64) -> Option<u32> {
    u32::try_from(raw).ok().or_else(|| i32::try_from(raw).ok().map(|v| v as u32))
}

/// Parses a cleartext JSON keyset of AES-GCM keys. Destroyed keys, which
/// carry no material, are left out.
pub fn parse_keyset_json(text: &str) -> Result<TinkKeyset, TinkError> {
    let raw: JsonKeyset = serde_json::from_str(text).map_err(|e| TinkError::Json(e.to_string()))?;
    if raw.encrypted_keyset.is_some() {
        return Err(TinkError::Encrypted);
    }
    let mut keys: Vec<TinkKey> = Vec::with_capacity(raw.key.len());
    for key in raw.key {
        let id = key_id(key.key_id).ok_or_else(|| TinkError::Json(format!("key id {} is not 32-bit", key.key_id)))?;
        let fail = |message: String| TinkError::Key { id, message };
        let status = match key.status.as_str() {
            "ENABLED" => KeyStatus::Enabled,
            "DISABLED" => KeyStatus::Disabled,
            "DESTROYED" => continue,
            other => return Err(fail(format!("unknown status {other}"))),
        };
        let output_prefix = match key.output_prefix_type.as_str() {
            "TINK" => OutputPrefix::Tink,
            "LEGACY" => OutputPrefix::Legacy,
            "CRUNCHY" => OutputPrefix::Crunchy,
            "RAW" => OutputPrefix::Raw,
            other => return Err(fail(format!("unknown outputPrefixType {other}"))),
        };
        let data = key.key_data.ok_or_else(|| fail("has no keyData".to_owned()))?;
        if data.type_url != AES_GCM_TYPE_URL {
            return Err(fail(format!("unsupported key type {}", data.type_url)));
        }
        if data.key_material_type.as_deref().is_some_and(|t| t != "SYMMETRIC") {
            return Err(fail("keyMaterialType must be SYMMETRIC".to_owned()));
        }
        let proto = Zeroizing::new(
            STANDARD
                .decode(data.value.as_bytes())
                .map_err(|e| fail(format!("keyData.value is not base64: {e}")))?,
        );
        let bytes = aes_gcm_key_value(&proto).map_err(|m| fail(m.to_owned()))?;
        let algorithm = Algorithm::for_key_len(bytes.len())
            .ok_or_else(|| fail(format!("AES key must be 16 or 32 bytes, not {}", bytes.len())))?;
        let material = KeyMaterial::from_zeroizing(algorithm, bytes).map_err(|e| fail(e.to_string()))?;
        if keys.iter().any(|k| k.id == id) {
            return Err(TinkError::DuplicateId(id));
        }
        keys.push(TinkKey {
            id,
            algorithm,
            status,
            output_prefix,
            material,
        });
    }
    if keys.is_empty() {
        return Err(TinkError::Empty);
    }
    let primary_key_id = raw
        .primary_key_id
        .and_then(key_id)
        .ok_or(TinkError::MissingPrimary(0))?;
    match keys.iter().find(|k| k.id == primary_key_id) {
        None => Err(TinkError::MissingPrimary(primary_key_id)),
        Some(k) if k.status != KeyStatus::Enabled => Err(TinkError::PrimaryNotEnabled(primary_key_id)),
        Some(_) => Ok(TinkKeyset { primary_key_id, keys }),
    }
}

/// The `key_value` of an `AesGcmKey` protobuf (version must be 0).
fn aes_gcm_key_value(proto: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let mut rest = proto;
    let mut value = None;
    while !rest.is_empty() {
        let (tag, after) = varint(rest)?;
        rest = after;
        match (tag >> 3, tag & 7) {
            (1, 0) => {
                let (version, after) = varint(rest)?;
                if version != 0 {
                    return Err("unsupported AesGcmKey version");
                }
                rest = after;
            }
            (field, 2) => {
                let (len, after) = varint(rest)?;
                let len = usize::try_from(len).map_err(|_| "length overflow")?;
                if after.len() < len {
                    return Err("truncated AesGcmKey");
                }
                if field == 3 {
                    value = Some(Zeroizing::new(after[..len].to_vec()));
                }
                rest = &after[len..];
            }
            (_, 0) => rest = varint(rest)?.1,
            (_, 1) => rest = rest.get(8..).ok_or("truncated AesGcmKey")?,
            (_, 5) => rest = rest.get(4..).ok_or("truncated AesGcmKey")?,
            _ => return Err("malformed AesGcmKey"),
        }
    }
    value.ok_or("AesGcmKey has no key_value")
}

fn varint(bytes: &[u8]) -> Result<(u64, &[u8]), &'static str> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, &bytes[i + 1..]));
        }
    }
    Err("malformed varint in AesGcmKey")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutKeyset<'a> {
    primary_key_id: u32,
    key: Vec<OutKey<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutKey<'a> {
    key_data: OutKeyData<'a>,
    status: &'static str,
    key_id: u32,
    output_prefix_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutKeyData<'a> {
    type_url: &'static str,
    value: &'a str,
    key_material_type: &'static str,
}

/// Writes a keyset as tinkey's JSON. The result holds key material:
/// callers keep it in a zeroizing buffer.
pub fn keyset_to_json(keyset: &TinkKeyset) -> String {
    let values: Vec<Zeroizing<String>> = keyset
        .keys
        .iter()
        .map(|k| {
            let material = k.material.as_bytes();
            let mut proto = Zeroizing::new(Vec::with_capacity(material.len() + 2));
            proto.push(0x1a);
            proto.push(material.len() as u8);
            proto.extend_from_slice(material);
            Zeroizing::new(STANDARD.encode(proto.as_slice()))
        })
        .collect();
    let out = OutKeyset {
        primary_key_id: keyset.primary_key_id,
        key: keyset
            .keys
            .iter()
            .zip(&values)
            .map(|(k, value)| OutKey {
                key_data: OutKeyData {
                    type_url: AES_GCM_TYPE_URL,
                    value: value.as_str(),
                    key_material_type: "SYMMETRIC",
                },
                status: match k.status {
                    KeyStatus::Enabled => "ENABLED",
                    KeyStatus::Disabled => "DISABLED",
                    KeyStatus::Destroyed => "DESTROYED",
                },
                key_id: k.id,
                output_prefix_type: match k.output_prefix {
                    OutputPrefix::Tink => "TINK",
                    OutputPrefix::Legacy => "LEGACY",
                    OutputPrefix::Crunchy => "CRUNCHY",
                    OutputPrefix::Raw => "RAW",
                },
            })
            .collect(),
    };
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string_pretty(&out).unwrap_or_default()
}
