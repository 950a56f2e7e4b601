//! The key hierarchy above secrets: the KEK — a keyring plugin's keyset or
//! a KMS plugin's key — and the data keys of every namespace, wrapped by
//! the KEK and cached unwrapped, plus the engine's own system keys and the
//! transport format that moves a data key between instances. Changing keys (rotation,
//! re-wrapping, retirement) is [`crate::maintenance`]'s work.

mod data_keys;
mod kek;
mod keyset;
mod kms;
mod root;
pub mod system;
pub mod transport;

pub use data_keys::{DataKeySettings, DataKeys, ScopePage};
pub use kek::{Kek, KekKeyInfo};
pub use keyset::{KeysetKek, add_primary_key, fresh_tink_key};
pub use root::{RootKeys, RootSource};
pub use system::{SystemKeys, system_key};
