//! Text that comes from inside a plugin — its error messages, log lines,
//! and trap messages that name its functions — made safe for the host's
//! log and errors: control characters escaped (no forged log lines, no
//! terminal escapes) and the length bounded.

/// Longest guest message kept in an error.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024;

/// `text` with control characters escaped, cut to about `max` bytes.
pub(crate) fn from_guest(text: &str, max: usize) -> String {
    let cut = truncate(text, max);
    let mut out = String::with_capacity(cut.len() + 8);
    for c in cut.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut.len() < text.len() {
        out.push('…');
    }
    out
}

/// The longest prefix of `text` of at most `max` bytes.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_log_lines() {
        assert_eq!(
            from_guest("a\nINFO fake\r\u{1b}[31m", 100),
            "a\\nINFO fake\\r\\u{1b}[31m"
        );
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(from_guest(&"x".repeat(10), 4), "xxxx…");
    }
}
