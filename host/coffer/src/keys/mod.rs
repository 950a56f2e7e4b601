//! The key hierarchy above secrets: the KEK keyset from the keyring plugin
//! and one data key per namespace, wrapped by the KEK and cached unwrapped.

mod data_keys;
mod kek;

pub use data_keys::DataKeys;
pub use kek::Kek;
