//! coffer-crypto: the cryptography of coffer, with no runtime attached.
//!
//! Three tiers of keys protect every secret:
//!
//! 1. a KEK (root key) from the keyring, held as a Tink keyset;
//! 2. a data key per namespace, wrapped by the KEK ([`WrappingKey`]);
//! 3. a fresh key per secret version, wrapped by the data key, which
//!    encrypts exactly one value ([`envelope`]).
//!
//! All encryption is AES-GCM with random 96-bit nonces; associated data
//! ([`aad`]) binds each ciphertext to its namespace, name, version and key
//! ids. Wrapped keys carry Tink's output prefix, so Tink reads them too.
//!
//! Without the default `envelope` feature only the parts that need no
//! randomness remain (key types, [`tink`] keyset codec, [`record`] format),
//! which is what a keyring plugin compiled to WebAssembly needs.

#![forbid(unsafe_code)]

pub mod aad;
#[cfg(feature = "envelope")]
pub mod aead;
#[cfg(feature = "envelope")]
pub mod envelope;
mod error;
mod key;
mod prefix;
pub mod record;
pub mod tink;
#[cfg(feature = "envelope")]
mod wrap;

pub use error::{CryptoError, Result};
#[cfg(feature = "envelope")]
pub use key::random_key_id;
pub use key::{Algorithm, KeyMaterial};
pub use prefix::{OutputPrefix, PREFIX_LEN, tink_key_id};
#[cfg(feature = "envelope")]
pub use wrap::WrappingKey;
