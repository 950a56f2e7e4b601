//! The key hierarchy above secrets: the KEK keyset from the keyring plugin
//! and the data keys of every namespace, wrapped by the KEK and cached
//! unwrapped, plus the engine's own system keys and the transport format
//! that moves a data key between instances. Changing keys (rotation,
//! re-wrapping, retirement) is [`crate::maintenance`]'s work.

mod data_keys;
mod kek;
mod root;
pub mod system;
pub mod transport;

pub use data_keys::{DataKeySettings, DataKeys, ScopePage};
pub use kek::{Kek, KekKeyInfo, add_primary_key, fresh_tink_key};
pub use root::RootKeys;
pub use system::{SystemKeys, system_key};
