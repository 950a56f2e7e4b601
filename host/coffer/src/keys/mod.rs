//! The key hierarchy above secrets: the KEK keyset from the keyring plugin
//! and one data key per namespace, wrapped by the KEK and cached unwrapped,
//! plus the engine's own system keys.

mod data_keys;
mod kek;
mod system;

pub use data_keys::DataKeys;
pub use kek::Kek;
pub use system::system_key;
