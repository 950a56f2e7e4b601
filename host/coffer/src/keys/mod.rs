//! The key hierarchy above secrets: the KEK keyset from the keyring plugin
//! and the data keys of every namespace, wrapped by the KEK and cached
//! unwrapped, plus the engine's own system keys; and their lifecycle —
//! rotation, re-wrapping, retirement, transport between instances — run
//! under a storage lease by one node at a time.

pub mod admin;
mod data_keys;
pub mod janitor;
mod kek;
mod lease;
mod root;
mod system;
pub mod transport;
pub mod usage;

pub use data_keys::{DataKeySettings, DataKeys, ScopePage};
pub use kek::{Kek, KekKeyInfo, add_primary_key, fresh_tink_key};
pub use lease::{Lease, LeaseGuard};
pub use root::RootKeys;
pub use system::system_key;
