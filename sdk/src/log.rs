//! Logging into the host's log. Never log key material or secret values.

use crate::bindings::storage_world::coffer::plugin::log::{self as host, Level};

/// Logs at debug level.
pub fn debug(message: &str) {
    host::log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    host::log(Level::Info, message);
}

/// Logs a warning.
pub fn warn(message: &str) {
    host::log(Level::Warn, message);
}

/// Logs an error.
pub fn error(message: &str) {
    host::log(Level::Error, message);
}
