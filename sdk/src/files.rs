//! Files the operator grants this plugin by name (`[<section>.files]` in
//! `coffer.toml`). The host reads and writes them; the plugin sees no path
//! and no other file.

use crate::Error;
use crate::bindings::keyring_world::coffer::plugin::files as host;

/// The whole content of granted file `name`; none when it does not exist.
pub fn read(name: &str) -> Result<Option<Vec<u8>>, Error> {
    host::read(name)
}

/// Replaces granted file `name` with `content`, atomically.
pub fn write(name: &str, content: &[u8]) -> Result<(), Error> {
    host::write(name, content)
}
