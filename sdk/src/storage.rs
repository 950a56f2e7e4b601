//! The storage trait a backend implements, and its export macro.

use std::marker::PhantomData;

use crate::Error;
use crate::bindings::storage_world::exports::coffer::plugin::storage as wit;
use crate::bindings::storage_world::exports::coffer::plugin::storage_batch as batch;
use crate::instance;

pub use batch::Write;
pub use wit::{Entry, Expected, Page};

/// Most keys or writes one batch call may carry.
pub const MAX_BATCH: usize = 1000;

/// A revisioned key-value store of opaque bytes. See the WIT contract
/// (`coffer:plugin/storage`) for what each method must guarantee: above all,
/// `put` and `delete` check `expected` atomically with the write.
pub trait Storage: Sized + 'static {
    /// Opens the backend from [`crate::config`]; called once per instance
    /// before its first call, and again after a failed open.
    fn open() -> Result<Self, Error>;
    /// The value of `key` and its revision; none when it does not exist.
    fn get(&self, key: &str) -> Result<Option<Entry>, Error>;
    /// Writes `key` if `expected` holds (checked atomically with the
    /// write); returns the new revision, one `key` never had before.
    fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64, Error>;
    /// Deletes `key` if `expected` holds: `not-found` when it does not
    /// exist, `conflict` when it is at another revision.
    fn delete(&self, key: &str, expected: Expected) -> Result<(), Error>;
    /// At most `limit` keys starting with `prefix` and sorting after
    /// `after`, in byte order, with the cursor of the next page.
    fn list(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Error>;

    /// One answer per key, in order, each as [`Storage::get`] gives it.
    /// The default asks `get` key by key; a backend that can read many keys
    /// in one round trip should do so.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, Error> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// One answer per write, in order, each as [`Storage::put`] gives it
    /// had the writes run one by one; an `Err` of the whole call only when
    /// no answer can be given. The default calls `put` write by write; a
    /// backend that can share one commit among many writes should do so.
    fn put_many(&self, writes: Vec<Write>) -> Result<Vec<Result<u64, Error>>, Error> {
        Ok(writes
            .into_iter()
            .map(|write| self.put(&write.key, write.value, write.expected))
            .collect())
    }
}

/// Connects a [`Storage`] type to the generated export. Used by [`export_storage!`].
#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Storage> wit::Guest for Adapter<T> {
    fn get(key: String) -> Result<Option<Entry>, Error> {
        instance::with(T::open, |s: &T| s.get(&key))
    }

    fn put(key: String, value: Vec<u8>, expected: Expected) -> Result<u64, Error> {
        instance::with(T::open, |s: &T| s.put(&key, value, expected))
    }

    fn delete(key: String, expected: Expected) -> Result<(), Error> {
        instance::with(T::open, |s: &T| s.delete(&key, expected))
    }

    fn list(prefix: String, after: Option<String>, limit: u32) -> Result<Page, Error> {
        instance::with(T::open, |s: &T| s.list(&prefix, after.as_deref(), limit))
    }
}

impl<T: Storage> batch::Guest for Adapter<T> {
    fn get_many(keys: Vec<String>) -> Result<Vec<Option<Entry>>, Error> {
        too_many(keys.len())?;
        instance::with(T::open, |s: &T| s.get_many(&keys))
    }

    fn put_many(writes: Vec<Write>) -> Result<Vec<Result<u64, Error>>, Error> {
        too_many(writes.len())?;
        instance::with(T::open, |s: &T| s.put_many(writes))
    }
}

fn too_many(count: usize) -> Result<(), Error> {
    if count > MAX_BATCH {
        return Err(Error::Invalid(format!(
            "{count} items in one batch; at most {MAX_BATCH}"
        )));
    }
    Ok(())
}

/// Exports a [`Storage`] implementation as this component's storage backend.
#[macro_export]
macro_rules! export_storage {
    ($plugin:ty) => {
        type __CofferStorageExport = $crate::storage::Adapter<$plugin>;
        $crate::bindings::storage_world::export!(
            __CofferStorageExport with_types_in $crate::bindings::storage_world
        );
    };
}
