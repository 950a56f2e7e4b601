//! The keyring trait a backend implements, and its export macro.

use std::marker::PhantomData;

use crate::Error;
use crate::bindings::keyring_world::exports::coffer::plugin::keyring as wit;
use crate::instance;

pub use wit::{Algorithm, Key, KeyStatus, Keyset, OutputPrefix};

/// Loads and persists root key material; the host does all cryptography.
/// See the WIT contract (`coffer:plugin/keyring`).
pub trait Keyring: Sized + 'static {
    /// Opens the keyring from [`crate::config`].
    fn open() -> Result<Self, Error>;
    /// The keyset, or none when there is none yet and one may be created.
    fn load(&self) -> Result<Option<Keyset>, Error>;
    /// Replaces the stored keyset atomically.
    /// The keyset is the SDK's: its key material is zeroized when this
    /// returns (copy what must outlive the call into zeroizing memory).
    fn store(&self, keyset: &Keyset) -> Result<(), Error>;
}

/// Connects a [`Keyring`] type to the generated export. Used by [`export_keyring!`].
#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Keyring> wit::Guest for Adapter<T> {
    fn load() -> Result<Option<Keyset>, Error> {
        instance::with(T::open, |k: &T| k.load())
    }

    fn store(mut keyset: Keyset) -> Result<(), Error> {
        let stored = instance::with(T::open, |k: &T| k.store(&keyset));
        for key in &mut keyset.keys {
            zeroize::Zeroize::zeroize(&mut key.material);
        }
        stored
    }
}

/// Exports a [`Keyring`] implementation as this component's keyring.
#[macro_export]
macro_rules! export_keyring {
    ($plugin:ty) => {
        type __CofferKeyringExport = $crate::keyring::Adapter<$plugin>;
        $crate::bindings::keyring_world::export!(
            __CofferKeyringExport with_types_in $crate::bindings::keyring_world
        );
    };
}
