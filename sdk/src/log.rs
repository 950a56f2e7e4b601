//! Logging into the host's log. Never log key material or secret values.

use crate::bindings::storage_world::coffer::plugin::log::{self as host, Level};

pub fn debug(message: &str) {
    host::log(Level::Debug, message);
}

pub fn info(message: &str) {
    host::log(Level::Info, message);
}

pub fn warn(message: &str) {
    host::log(Level::Warn, message);
}

pub fn error(message: &str) {
    host::log(Level::Error, message);
}
