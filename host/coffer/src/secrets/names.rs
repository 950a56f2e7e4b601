//! What namespaces and secret names may look like, checked before anything
//! touches storage.

use crate::error::{Error, Result};

/// Longest namespace, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 64;
/// Longest secret name, in bytes.
pub const MAX_NAME_BYTES: usize = 512;

/// A namespace: 1–64 of `A–Z a–z 0–9 _ . -`, not `.` or `..`.
pub fn check_namespace(namespace: &str) -> Result<()> {
    if namespace.is_empty() || namespace.len() > MAX_NAMESPACE_BYTES {
        return Err(Error::Invalid(format!(
            "namespace must be 1 to {MAX_NAMESPACE_BYTES} bytes"
        )));
    }
    if namespace == "." || namespace == ".." {
        return Err(Error::Invalid("namespace must not be . or ..".to_owned()));
    }
    if !namespace
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(Error::Invalid(
            "namespace may contain only letters, digits, _ . and -".to_owned(),
        ));
    }
    Ok(())
}

/// A secret name: 1–512 bytes of `/`-separated segments, none empty, `.`
/// or `..`, and no control characters.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(Error::Invalid(format!(
            "name must be 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    check_characters(name)?;
    if name
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(Error::Invalid(
            "name segments must not be empty, . or .. (no leading, trailing or double /)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// A listing prefix: like a name, but may be empty or end with `/`.
pub fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.len() > MAX_NAME_BYTES {
        return Err(Error::Invalid(format!(
            "prefix must be at most {MAX_NAME_BYTES} bytes"
        )));
    }
    check_characters(prefix)
}

fn check_characters(text: &str) -> Result<()> {
    if text.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "names must not contain control characters".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert!(check_namespace("payments-prod").is_ok());
        assert!(check_namespace("a.b_c").is_ok());
        for bad in ["", ".", "..", "a/b", "sp ace", &"x".repeat(65)] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_may_hold_slashes_but_not_empty_segments() {
        assert!(check_name("db/password").is_ok());
        assert!(check_name("ünïcode/ok").is_ok());
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/../b",
            "./a",
            "a\0b",
            "a\nb",
            &"x".repeat(513),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
