//! Lower-case hex for the strings the request path builds (token hashes,
//! chain values, pseudonyms, request ids): the same text as
//! `hex::encode`, written by table into one buffer rather than a
//! character at a time.

/// `bytes` as lower-case hex.
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut text = vec![0u8; bytes.len() * 2];
    // Fails only when the buffer's length is not twice the input's.
    if hex::encode_to_slice(bytes, &mut text).is_err() {
        return hex::encode(bytes);
    }
    String::from_utf8(text).unwrap_or_else(|_| hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::lower_hex;

    #[test]
    fn matches_hex_encode() {
        for bytes in [&b""[..], &[0x00, 0xff, 0x0a, 0xa0], &[7u8; 32]] {
            assert_eq!(lower_hex(bytes), hex::encode(bytes));
        }
    }
}
