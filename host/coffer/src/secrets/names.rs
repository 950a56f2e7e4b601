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

/// What a path under a secret addresses: the secret's value, or, when its
/// last segment is one of these words, an operation on the secret the rest
/// of the path names (`/v1/secrets/ns/db/password/metadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretOperation {
    Value,
    Metadata,
    Undelete,
    Destroy,
}

impl SecretOperation {
    /// The last segments that address an operation, never a name.
    pub const RESERVED: [(&'static str, SecretOperation); 3] = [
        ("metadata", SecretOperation::Metadata),
        ("undelete", SecretOperation::Undelete),
        ("destroy", SecretOperation::Destroy),
    ];
}

/// Splits a path under a namespace into the secret's name and what it
/// addresses. A reserved word alone leaves an empty name, which
/// [`check_name`] refuses.
pub fn split_operation(path: &str) -> (&str, SecretOperation) {
    let (name, last) = path.rsplit_once('/').unwrap_or(("", path));
    SecretOperation::RESERVED
        .iter()
        .find(|(word, _)| *word == last)
        .map_or((path, SecretOperation::Value), |(_, operation)| {
            (name, *operation)
        })
}

/// A secret name: 1–512 bytes of `/`-separated segments, none empty, `.`
/// or `..`, and no control or invisible formatting characters.
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

/// A name a new secret may take: [`check_name`], and its last segment not a
/// word that addresses an operation ([`SecretOperation::RESERVED`]), so
/// the native API can always reach it. (Names stored before the words
/// were reserved stay readable, and reachable through the KV v2 API.)
pub fn check_new_name(name: &str) -> Result<()> {
    check_name(name)?;
    let last = name.rsplit('/').next().unwrap_or(name);
    if SecretOperation::RESERVED
        .iter()
        .any(|(word, _)| *word == last)
    {
        return Err(Error::Invalid(format!(
            "a name's last segment may not be `{last}`: metadata, undelete and destroy address \
             operations on the secret before them"
        )));
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
    if text.chars().any(is_invisible_format) {
        return Err(Error::Invalid(
            "names must not contain invisible formatting characters (bidirectional controls, \
             zero-width characters, line separators)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Unicode format characters (category Cf: bidirectional overrides and
/// isolates, zero-width spaces and joiners, the BOM, …) and the line and
/// paragraph separators: they make two different names look the same, or
/// a name read differently from how it is stored.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
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
            "admin\u{202E}txt.exe",
            "pass\u{200B}word",
            "\u{FEFF}db",
            "a\u{2028}b",
            &"x".repeat(513),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_reserved_last_segment_addresses_an_operation_not_a_name() {
        assert_eq!(
            split_operation("db/pass"),
            ("db/pass", SecretOperation::Value)
        );
        assert_eq!(
            split_operation("db/pass/metadata"),
            ("db/pass", SecretOperation::Metadata)
        );
        assert_eq!(
            split_operation("a/undelete"),
            ("a", SecretOperation::Undelete)
        );
        assert_eq!(split_operation("destroy"), ("", SecretOperation::Destroy));
        assert_eq!(
            split_operation("metadata/x"),
            ("metadata/x", SecretOperation::Value)
        );
        assert!(check_new_name("app/metadata").is_err());
        assert!(check_new_name("destroy").is_err());
        assert!(
            check_name("app/metadata").is_ok(),
            "an older secret stays reachable"
        );
        assert!(check_new_name("metadata/app").is_ok());
        assert!(check_new_name("app/destroyed").is_ok());
    }
}
