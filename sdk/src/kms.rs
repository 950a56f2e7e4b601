//! The KMS trait a backend implements, and its export macro.
//!
//! A KMS plugin keeps no key: it asks a remote KMS, through
//! [`crate::http`], to wrap and unwrap the data keys the host gives it,
//! and reports the key version each wrap used (the host records it, to
//! know which data keys a rotation left to re-wrap).

use std::marker::PhantomData;

use crate::Error;
use crate::bindings::kms_world::exports::coffer::plugin::kms as wit;
use crate::instance;

pub use wit::{Description, Wrapped};

/// A remote key-management service. See the WIT contract
/// (`coffer:plugin/kms`): above all, `unwrap` fails with `invalid` when a
/// blob fails authentication or was wrapped under another `aad`.
pub trait Kms: Sized + 'static {
    /// Opens the KMS client from [`crate::config`].
    fn open() -> Result<Self, Error>;
    /// The key new wraps use, and its current version.
    fn describe(&self) -> Result<Description, Error>;
    /// Encrypts `plaintext` bound to `aad`.
    fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Wrapped, Error>;
    /// Decrypts a blob `wrap` made under the same `aad`.
    fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error>;
    /// Starts a new key version; older blobs still unwrap.
    fn rotate(&self) -> Result<Description, Error>;
}

/// Connects a [`Kms`] type to the generated export. Used by [`export_kms!`].
#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Kms> wit::Guest for Adapter<T> {
    fn describe() -> Result<Description, Error> {
        instance::with(T::open, |k: &T| k.describe())
    }

    fn wrap(plaintext: Vec<u8>, aad: Vec<u8>) -> Result<Wrapped, Error> {
        // The data key is wiped from this instance's memory once wrapped.
        let plaintext = zeroize::Zeroizing::new(plaintext);
        instance::with(T::open, |k: &T| k.wrap(&plaintext, &aad))
    }

    fn unwrap(blob: Vec<u8>, aad: Vec<u8>) -> Result<Vec<u8>, Error> {
        instance::with(T::open, |k: &T| k.unwrap(&blob, &aad))
    }

    fn rotate() -> Result<Description, Error> {
        instance::with(T::open, |k: &T| k.rotate())
    }
}

/// Exports a [`Kms`] implementation as this component's KMS.
#[macro_export]
macro_rules! export_kms {
    ($plugin:ty) => {
        type __CofferKmsExport = $crate::kms::Adapter<$plugin>;
        $crate::bindings::kms_world::export!(
            __CofferKmsExport with_types_in $crate::bindings::kms_world
        );
    };
}
