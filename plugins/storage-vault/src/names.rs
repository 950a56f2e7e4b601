//! coffer keys as Vault path names. A key is base64-encoded with an
//! alphabet in ASCII order (`-0-9A-Z_a-z`), which keeps byte order (so a
//! listing in Vault's order is a listing in coffer's) and leaves no `/`,
//! and the result is cut into segments of at most [`SEGMENT`] characters,
//! so no path segment outgrows what Vault's storage backends accept.

/// Longest path segment written.
pub const SEGMENT: usize = 240;

const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// Whether `name` could be one segment of an encoded name: what a listing
/// may be walked into.
pub fn is_segment(name: &str) -> bool {
    !name.is_empty() && name.len() <= SEGMENT && name.bytes().all(|b| ALPHABET.contains(&b))
}

/// The encoded name of `key`, before cutting into segments.
pub fn encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len().div_ceil(3) * 4);
    for chunk in key.as_bytes().chunks(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        // n bytes carry 8n bits: 2, 3 or 4 characters of 6 bits.
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// The key an encoded name stands for; none for a name this plugin did not
/// write.
pub fn decode(name: &str) -> Option<String> {
    if name.len() % 4 == 1 {
        return None;
    }
    let mut bytes = Vec::with_capacity(name.len() / 4 * 3 + 2);
    for chunk in name.as_bytes().chunks(4) {
        let mut bits = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let value = ALPHABET.iter().position(|a| a == c)? as u32;
            bits |= value << (18 - 6 * i);
        }
        let carried = chunk.len() - 1;
        // The bits past the last byte are zero in an encoding this wrote.
        if bits & (0x00ff_ffff >> (8 * carried)) != 0 {
            return None;
        }
        bytes.extend((0..carried).map(|i| (bits >> (16 - 8 * i)) as u8));
    }
    String::from_utf8(bytes).ok()
}

/// The path of an encoded name: its segments joined by `/`.
pub fn path(encoded: &str) -> String {
    let mut path = String::with_capacity(encoded.len() + encoded.len() / SEGMENT);
    for (i, c) in encoded.char_indices() {
        if i > 0 && i % SEGMENT == 0 {
            path.push('/');
        }
        path.push(c);
    }
    path
}

/// A name every encoding of a key starting with `prefix` sorts after.
pub fn before(prefix: &str) -> String {
    let mut encoded = encode(prefix);
    // The last character may hold bits of the bytes that follow.
    encoded.pop();
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_keep_byte_order() {
        let keys = [
            "",
            "a",
            "a\u{1}",
            "a/",
            "a/b",
            "a0",
            "ab",
            "abc",
            "abcd",
            "secrets/ns/é",
            "ü",
            "~",
        ];
        for key in keys {
            assert_eq!(decode(&encode(key)).as_deref(), Some(key), "{key:?}");
        }
        let mut by_key = keys.to_vec();
        by_key.sort();
        let mut by_name = keys.to_vec();
        by_name.sort_by_key(|k| encode(k));
        assert_eq!(by_key, by_name);
    }

    #[test]
    fn a_prefix_bounds_the_names_of_its_keys() {
        for (prefix, key) in [("sec", "secrets/a"), ("a", "a"), ("ab", "abz"), ("", "x")] {
            assert!(before(prefix) < encode(key), "{prefix} {key}");
        }
    }

    #[test]
    fn names_this_plugin_did_not_write_are_refused() {
        for name in ["a", "a/b", "==", "AB"] {
            assert_eq!(decode(name), None, "{name}");
        }
    }

    #[test]
    fn long_names_are_cut_into_segments() {
        let encoded = "x".repeat(2 * SEGMENT + 5);
        let path = path(&encoded);
        let segments: Vec<&str> = path.split('/').collect();
        assert_eq!(
            segments.iter().map(|s| s.len()).collect::<Vec<_>>(),
            [SEGMENT, SEGMENT, 5]
        );
    }
}
