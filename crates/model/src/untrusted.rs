//! Text that came from outside (a request, a peer, a file), made safe for a log line.
//!
//! The operational log is one event per line. A resource name holding `\n` would start a
//! forged line, a NUL or an escape sequence would corrupt the file or the terminal that shows
//! it, and a bidirectional control could make a line read differently from what it holds.
//! Every untrusted string reaches a log line through [`Untrusted`], which escapes all of
//! these and cuts very long text, so one request is one line with its bytes visible.

use std::fmt;

/// Longest untrusted text written whole; longer text is cut and the rest counted.
pub const MAX_LOGGED_CHARS: usize = 512;

/// Untrusted text for a log line: control characters, backslashes, line and paragraph
/// separators and bidirectional controls are written as escapes (`\n`, `\0`, `\u{202e}`),
/// and text beyond [`MAX_LOGGED_CHARS`] characters is cut.
#[derive(Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, MAX_LOGGED_CHARS)
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        write_escaped(f, self.0, MAX_LOGGED_CHARS)?;
        f.write_str("\"")
    }
}

/// Whether a character must be escaped in a log line.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || c == '"'
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || c == '\u{feff}'
}

/// Writes `text` escaped (see [`Untrusted`]), cut after `limit` characters with a note of
/// how many bytes were left out.
pub fn write_escaped(f: &mut impl fmt::Write, text: &str, limit: usize) -> fmt::Result {
    for (i, (at, c)) in text.char_indices().enumerate() {
        if i == limit {
            return write!(f, "...[{} more bytes]", text.len() - at);
        }
        match c {
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\0' => f.write_str("\\0")?,
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            c if needs_escape(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_nul_and_controls_are_escaped() {
        let s = Untrusted("a\nINFO forged\r\0\u{1b}[31m\\\"").to_string();
        assert_eq!(s, "a\\nINFO forged\\r\\0\\u{1b}[31m\\\\\\\"");
        assert!(!s.contains('\n') && !s.contains('\0'));
    }

    #[test]
    fn unicode_separators_and_bidi_controls_are_escaped_but_letters_stay() {
        assert_eq!(
            Untrusted("é\u{2028}x\u{202e}y").to_string(),
            "é\\u{2028}x\\u{202e}y"
        );
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(MAX_LOGGED_CHARS + 10);
        let s = Untrusted(&long).to_string();
        assert!(s.ends_with("...[10 more bytes]"), "{s}");
        assert_eq!(format!("{:?}", Untrusted("a\nb")), "\"a\\nb\"");
    }
}
