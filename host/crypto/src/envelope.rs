//! The per-version envelope: a fresh AES-256-GCM key encrypts one value and
//! is itself wrapped by the namespace's data key.

use zeroize::Zeroizing;

use crate::aad::{secret_key_aad, value_aad};
use crate::aead;
use crate::error::Result;
use crate::key::{Algorithm, KeyMaterial};
use crate::prefix::tink_key_id;
use crate::wrap::WrappingKey;

/// One sealed secret version: its wrapped key and its ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedValue {
    /// `0x01 ‖ data key id ‖ nonce ‖ ciphertext ‖ tag` of the version key.
    pub wrapped_key: Vec<u8>,
    /// `nonce ‖ ciphertext ‖ tag` of the value.
    pub ciphertext: Vec<u8>,
}

/// Seals `plaintext` as `version` of `namespace/name` under `data_key`.
pub fn seal_value(data_key: &WrappingKey, namespace: &str, name: &str, version: u32, plaintext: &[u8]) -> SealedValue {
    let secret_key = KeyMaterial::generate(Algorithm::Aes256Gcm);
    let ciphertext = aead::seal(&secret_key, plaintext, &value_aad(namespace, name, version));
    let wrapped_key = data_key.wrap(
        secret_key.as_bytes(),
        &secret_key_aad(namespace, name, version, data_key.id),
    );
    SealedValue { wrapped_key, ciphertext }
}

/// Opens a value sealed by [`seal_value`].
pub fn open_value(
    data_key: &WrappingKey,
    namespace: &str,
    name: &str,
    version: u32,
    sealed: &SealedValue,
) -> Result<Zeroizing<Vec<u8>>> {
    let secret_key = unwrap_secret_key(data_key, namespace, name, version, sealed)?;
    aead::open(&secret_key, &sealed.ciphertext, &value_aad(namespace, name, version))
}

/// Moves a version's key from one data key to another without touching the
/// value's ciphertext (key rotation re-wraps, it does not re-encrypt).
pub fn rewrap_secret_key(
    from: &WrappingKey,
    to: &WrappingKey,
    namespace: &str,
    name: &str,
    version: u32,
    sealed: &SealedValue,
) -> Result<SealedValue> {
    let secret_key = unwrap_secret_key(from, namespace, name, version, sealed)?;
    let wrapped_key = to.wrap(secret_key.as_bytes(), &secret_key_aad(namespace, name, version, to.id));
    Ok(SealedValue {
        wrapped_key,
        ciphertext: sealed.ciphertext.clone(),
    })
}

/// The id of the data key a sealed version is wrapped under.
pub fn sealed_data_key_id(sealed: &SealedValue) -> Result<u32> {
    tink_key_id(&sealed.wrapped_key)
}

fn unwrap_secret_key(
    data_key: &WrappingKey,
    namespace: &str,
    name: &str,
    version: u32,
    sealed: &SealedValue,
) -> Result<KeyMaterial> {
    let bytes = data_key.unwrap(&sealed.wrapped_key, &secret_key_aad(namespace, name, version, data_key.id))?;
    KeyMaterial::from_zeroizing(Algorithm::Aes256Gcm, bytes).map_err(|_| crate::CryptoError::Integrity)
}
