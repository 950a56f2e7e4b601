//! Associated data that binds each ciphertext to where it belongs, so a
//! ciphertext copied to another namespace, name, version or key fails to
//! decrypt.
//!
//! Layout: the label's bytes, then each field in order. Strings are
//! `u32 length (big endian) ‖ UTF-8 bytes`; integers are big endian of their
//! width; an algorithm is its Tink template name as a string.
//!
//! | function | label | fields |
//! | --- | --- | --- |
//! | [`data_key_aad`] | `coffer.data-key.v1` | scope, data key id (u32), algorithm |
//! | [`secret_key_aad`] | `coffer.secret-key.v1` | namespace, name, version (u32), data key id (u32) |
//! | [`value_aad`] | `coffer.value.v1` | namespace, name, version (u32) |
//!
//! The label is written without a length: labels are fixed and distinct.

use crate::key::Algorithm;

fn string(out: &mut Vec<u8>, text: &str) {
    // Names are bounded far below 4 GiB by every caller.
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Binds a wrapped data key to its scope, id and algorithm.
pub fn data_key_aad(scope: &str, data_key_id: u32, algorithm: Algorithm) -> Vec<u8> {
    let mut out = b"coffer.data-key.v1".to_vec();
    string(&mut out, scope);
    out.extend_from_slice(&data_key_id.to_be_bytes());
    string(&mut out, algorithm.as_str());
    out
}

/// Binds a wrapped per-version secret key to its secret, version and data key.
pub fn secret_key_aad(namespace: &str, name: &str, version: u32, data_key_id: u32) -> Vec<u8> {
    let mut out = b"coffer.secret-key.v1".to_vec();
    string(&mut out, namespace);
    string(&mut out, name);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&data_key_id.to_be_bytes());
    out
}

/// Binds a value's ciphertext to its secret and version.
pub fn value_aad(namespace: &str, name: &str, version: u32) -> Vec<u8> {
    let mut out = b"coffer.value.v1".to_vec();
    string(&mut out, namespace);
    string(&mut out, name);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixes_keep_fields_apart() {
        // Without length prefixes these two would encode identically.
        assert_ne!(value_aad("ab", "c", 1), value_aad("a", "bc", 1));
        assert_eq!(
            value_aad("n", "x", 2),
            [b"coffer.value.v1".as_slice(), &[0, 0, 0, 1], b"n", &[0, 0, 0, 1], b"x", &[0, 0, 0, 2]].concat()
        );
    }
}
