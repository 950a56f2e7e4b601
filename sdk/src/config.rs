//! The plugin's own configuration (its `config` table in `coffer.toml`).

use crate::Error;
use crate::bindings::storage_world::coffer::plugin::config as host;

/// The value of `key`, if the operator set it.
pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

/// Every key and value, sorted by key.
pub fn entries() -> Vec<(String, String)> {
    host::entries()
}

/// The value of `key`, or an `invalid` error naming it.
pub fn require(key: &str) -> Result<String, Error> {
    get(key).ok_or_else(|| Error::Invalid(format!("config key `{key}` is required")))
}

/// The value of `key` as a boolean (`true`/`false`), or `default` when unset.
pub fn flag(key: &str, default: bool) -> Result<bool, Error> {
    match get(key).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(Error::Invalid(format!(
            "config key `{key}` must be true or false, not `{other}`"
        ))),
    }
}

/// The value of `key` (or `default`) as a URL path of plain segments
/// (letters, digits, `-`, `_`, `.`, joined by `/`), such as a Vault mount.
/// With `empty_allowed`, the operator may also set `key = ""`.
pub fn path(key: &str, default: &str, empty_allowed: bool) -> Result<String, Error> {
    let value = get(key).unwrap_or_else(|| default.to_owned());
    if value.is_empty() && empty_allowed || plain_segments(&value) {
        Ok(value)
    } else {
        Err(Error::Invalid(format!(
            "config key `{key}` must be plain path segments (letters, digits, - _ .) joined by /"
        )))
    }
}

fn plain_segments(value: &str) -> bool {
    value.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    })
}
