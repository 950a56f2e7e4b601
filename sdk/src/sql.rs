//! SQL on the pool the host grants this plugin. Parameters are written
//! `$1`, `$2`, … in both dialects; the host never shows the plugin the
//! database URL.

pub use crate::bindings::storage_world::coffer::plugin::sql::{
    Dialect, Row, Value, database, execute, query,
};
