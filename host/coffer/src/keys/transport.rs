//! Moving a data key between instances: exported wrapped under a transport
//! keyset the operator supplies (a Tink keyset both instances are given),
//! never in plaintext, and imported as Deprecated so it only decrypts.
//!
//! The wrap is AES-GCM under the transport keyset's primary, with Tink's
//! output prefix naming that key, and AAD binding the namespace, key id and
//! algorithm (the data-key AAD behind a label of its own, so an exported
//! blob is never mistaken for a stored one).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_crypto::aad::data_key_aad;
use coffer_crypto::{Algorithm, KeyMaterial, parse_keyset_json, tink_key_id};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::KeysetKek;
use crate::error::{Error, Result};

/// The `format` of an exported data key.
pub const FORMAT: &str = "coffer-data-key/v1";
const LABEL: &[u8] = b"coffer.export.v1\0";

/// A data key as it travels between instances.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportedKey {
    pub format: String,
    pub namespace: String,
    pub id: u32,
    pub algorithm: String,
    pub created_at_ms: i64,
    /// The transport keyset key that wrapped it.
    pub transport_key_id: u32,
    /// Base64 of output prefix ‖ nonce ‖ ciphertext ‖ tag.
    pub wrapped: String,
}

/// The transport keyset, given as Tink JSON text.
pub fn transport_keys(keyset_json: &str) -> Result<KeysetKek> {
    let keyset = parse_keyset_json(keyset_json)
        .map_err(|e| Error::Invalid(format!("transport keyset: {e}")))?;
    KeysetKek::from_keyset(&keyset).map_err(|e| Error::Invalid(format!("transport keyset: {e}")))
}

fn aad(namespace: &str, id: u32, algorithm: Algorithm) -> Vec<u8> {
    [LABEL, &data_key_aad(namespace, id, algorithm)].concat()
}

/// Wraps `material` (key `id` of `namespace`) for transport.
pub fn export(
    transport: &KeysetKek,
    namespace: &str,
    id: u32,
    created_at_ms: i64,
    material: &KeyMaterial,
) -> ExportedKey {
    let algorithm = material.algorithm();
    let primary = transport.primary();
    let wrapped = primary.wrap(material.as_bytes(), &aad(namespace, id, algorithm));
    ExportedKey {
        format: FORMAT.to_owned(),
        namespace: namespace.to_owned(),
        id,
        algorithm: algorithm.as_str().to_owned(),
        created_at_ms,
        transport_key_id: primary.id,
        wrapped: STANDARD.encode(wrapped),
    }
}

/// Opens an exported key for `namespace`. Refuses a key exported from
/// another namespace: secret keys are bound to their namespace, so it could
/// open nothing here.
pub fn import(
    transport: &KeysetKek,
    namespace: &str,
    exported: &ExportedKey,
) -> Result<KeyMaterial> {
    if exported.format != FORMAT {
        return Err(Error::Invalid(format!(
            "exported key format {} is not {FORMAT}",
            exported.format
        )));
    }
    if exported.namespace != namespace {
        return Err(Error::Invalid(format!(
            "the key was exported from namespace {}, not {namespace}: secrets are bound to their namespace",
            exported.namespace
        )));
    }
    let algorithm: Algorithm = exported
        .algorithm
        .parse()
        .map_err(|_| Error::Invalid(format!("unknown algorithm {}", exported.algorithm)))?;
    let wrapped = Zeroizing::new(
        STANDARD
            .decode(&exported.wrapped)
            .map_err(|_| Error::Invalid("wrapped: not base64".to_owned()))?,
    );
    let key_id =
        tink_key_id(&wrapped).map_err(|_| Error::Invalid("wrapped: too short".to_owned()))?;
    let wrapping = transport.get(key_id).ok_or_else(|| {
        Error::Invalid(format!(
            "the key was wrapped by transport key {key_id}, which the given transport keyset does not hold"
        ))
    })?;
    let raw = wrapping
        .unwrap(&wrapped, &aad(namespace, exported.id, algorithm))
        .map_err(|_| {
            Error::Invalid(
                "the exported key failed its integrity check (wrong transport keyset, or altered)"
                    .to_owned(),
            )
        })?;
    KeyMaterial::from_zeroizing(algorithm, raw).map_err(|_| {
        Error::Invalid("the exported key has the wrong length for its algorithm".to_owned())
    })
}
