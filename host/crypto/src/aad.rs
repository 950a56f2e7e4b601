//! Canonical associated data (AAD) for every AES-GCM operation coffer performs.
//!
//! AAD binds a ciphertext to where it belongs, so a value copied to another
//! name, version or namespace — or a wrapped key copied to another scope — fails
//! authentication instead of decrypting.
//!
//! # Encoding
//!
//! Every encoding is a sequence of fields with no separators:
//!
//! * strings (the domain label first, then the arguments) are
//!   `length (u32, big endian) ‖ UTF-8 bytes`;
//! * integers are fixed width, big endian (`u32` = 4 bytes);
//! * an [`Algorithm`] is encoded as its Tink name string (`AES128_GCM` or
//!   `AES256_GCM`), length-prefixed like any other string.
//!
//! | function           | fields, in order                                                         |
//! |--------------------|--------------------------------------------------------------------------|
//! | [`data_key_aad`]   | `"coffer.data-key.v1"`, scope, data key id (u32), algorithm name          |
//! | [`secret_key_aad`] | `"coffer.secret-key.v1"`, namespace, name, version (u32), data key id (u32) |
//! | [`value_aad`]      | `"coffer.value.v1"`, namespace, name, version (u32)                       |
//!
//! Example: `value_aad("ns", "db", 3)` is (hex)
//! `0000000f 636f666665722e76616c75652e7631 00000002 6e73 00000002 6462 00000003`.
//!
//! In Python:
//!
//! ```text
//! def s(x): b = x.encode(); return len(b).to_bytes(4, "big") + b
//! def u32(n): return n.to_bytes(4, "big")
//! value_aad = s("coffer.value.v1") + s(ns) + s(name) + u32(version)
//! secret_key_aad = s("coffer.secret-key.v1") + s(ns) + s(name) + u32(version) + u32(data_key_id)
//! data_key_aad = s("coffer.data-key.v1") + s(scope) + u32(data_key_id) + s("AES256_GCM")
//! ```

use crate::key::Algorithm;

/// Label of [`data_key_aad`].
pub const DATA_KEY_LABEL: &str = "coffer.data-key.v1";
/// Label of [`secret_key_aad`].
pub const SECRET_KEY_LABEL: &str = "coffer.secret-key.v1";
/// Label of [`value_aad`].
pub const VALUE_LABEL: &str = "coffer.value.v1";

/// AAD for wrapping a scope's data key under a KEK.
pub fn data_key_aad(scope: &str, data_key_id: u32, algorithm: Algorithm) -> Vec<u8> {
    let mut out = Encoder::new(DATA_KEY_LABEL, scope.len() + algorithm.as_str().len() + 8);
    out.str(scope);
    out.u32(data_key_id);
    out.str(algorithm.as_str());
    out.0
}

/// AAD for wrapping a secret version's key under a data key.
pub fn secret_key_aad(namespace: &str, name: &str, version: u32, data_key_id: u32) -> Vec<u8> {
    let mut out = Encoder::new(SECRET_KEY_LABEL, namespace.len() + name.len() + 16);
    out.str(namespace);
    out.str(name);
    out.u32(version);
    out.u32(data_key_id);
    out.0
}

/// AAD for encrypting a secret version's value under its own key.
pub fn value_aad(namespace: &str, name: &str, version: u32) -> Vec<u8> {
    let mut out = Encoder::new(VALUE_LABEL, namespace.len() + name.len() + 12);
    out.str(namespace);
    out.str(name);
    out.u32(version);
    out.0
}

struct Encoder(Vec<u8>);

impl Encoder {
    fn new(label: &str, extra: usize) -> Encoder {
        let mut out = Encoder(Vec::with_capacity(4 + label.len() + extra));
        out.str(label);
        out
    }

    fn str(&mut self, s: &str) {
        // Names are bounded far below 4 GiB by every caller; saturating keeps
        // this total without a panic path.
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn u32(&mut self, n: u32) {
        self.0.extend_from_slice(&n.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn documented_example_holds() {
        assert_eq!(
            hex(&value_aad("ns", "db", 3)),
            "0000000f636f666665722e76616c75652e7631000000026e73000000026462 00000003"
                .replace(' ', "")
        );
    }

    #[test]
    fn layouts() {
        assert_eq!(
            secret_key_aad("a", "b", 1, 0x0102_0304),
            [
                &[0, 0, 0, 20][..],
                b"coffer.secret-key.v1",
                &[0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b', 0, 0, 0, 1, 1, 2, 3, 4],
            ]
            .concat()
        );
        assert_eq!(
            data_key_aad("s", 5, Algorithm::Aes128Gcm),
            [
                &[0, 0, 0, 18][..],
                b"coffer.data-key.v1",
                &[0, 0, 0, 1, b's', 0, 0, 0, 5, 0, 0, 0, 10],
                b"AES128_GCM",
            ]
            .concat()
        );
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        assert_ne!(value_aad("ab", "c", 1), value_aad("a", "bc", 1));
        assert_ne!(value_aad("a", "b", 1), value_aad("b", "a", 1));
    }
}
