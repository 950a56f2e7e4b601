//! coffer-crypto: envelope encryption, key material, the stored record format
//! and the Tink keyset codec for the coffer secrets engine.
//!
//! # Key hierarchy
//!
//! coffer encrypts in three tiers:
//!
//! 1. **KEK** (key-encryption key, the root): held by a keyring plugin as a Tink
//!    keyset ([`tink`]) or kept inside a remote KMS. It wraps data keys with
//!    [`aad::data_key_aad`], which binds the scope, data key id and algorithm.
//! 2. **Data key**: one active key per scope (namespace), stored wrapped in a
//!    [`record::DataKeySet`]. It wraps secret keys ([`wrap::WrappingKey`]).
//! 3. **Secret key**: a fresh AES-256-GCM key per secret version that encrypts
//!    exactly one value ([`envelope`]); stored wrapped next to the value in a
//!    [`record::SecretRecord`].
//!
//! Every wrapped key starts with a Tink output prefix naming the key that wrapped
//! it ([`prefix`]), so decryption picks the right key and rotation only re-wraps.
//!
//! Storage is not trusted with anything but availability: every record is
//! stored in the authenticated envelope of [`sealed`], bound to the key it
//! is filed under and numbered so a rollback shows.
//!
//! # Features
//!
//! * `envelope` (default): the AES-GCM parts — [`aead`], [`wrap`], [`envelope`],
//!   the sealed transport's HPKE ([`sealing`]), [`KeyMaterial::generate`] and
//!   [`random_key_id`]. These need OS randomness.
//! * Without it the crate offers only [`error`], [`key`], [`prefix`], [`aad`],
//!   [`record`], [`sealed`], [`lifecycle`] and [`tink`], needs no randomness and builds for
//!   `wasm32-wasip2`, so plugins can parse keysets and records.
#![forbid(unsafe_code)]

pub mod aad;
#[cfg(feature = "envelope")]
pub mod aead;
#[cfg(feature = "envelope")]
pub mod envelope;
pub mod error;
pub mod key;
pub mod lifecycle;
pub mod prefix;
pub mod record;
pub mod sealed;
#[cfg(feature = "envelope")]
pub mod sealing;
pub mod sigv4;
pub mod tink;
#[cfg(feature = "envelope")]
pub mod wrap;

#[cfg(feature = "envelope")]
pub use envelope::{SealedValue, open_value, rewrap_secret_key, seal_value, sealed_data_key_id};
pub use error::{CryptoError, Result};
#[cfg(feature = "envelope")]
pub use key::random_key_id;
pub use key::{Algorithm, KeyMaterial};
pub use prefix::{OutputPrefix, PREFIX_LEN, tink_key_id};
pub use record::{
    DataKeyEntry, DataKeySet, DataKeyStatus, SecretRecord, SystemKeyRecord, VersionEntry,
};
pub use sealed::RecordKey;
pub use tink::{KeyStatus, TinkError, TinkKey, TinkKeyset, keyset_to_json, parse_keyset_json};
#[cfg(feature = "envelope")]
pub use wrap::WrappingKey;
