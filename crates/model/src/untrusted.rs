//! Text that came from outside (a request, a peer, a file), made safe for a log line.
//!
//! The operational log is one event per line. A resource name holding `\n` would start a
//! forged line, a NUL or an escape sequence would corrupt the file or the terminal that shows
//! it, and a bidirectional control could make a line read differently from what it holds.
//! Every untrusted string reaches a log line through [`Untrusted`], which escapes all of
//! these and cuts very long text, so one request is one line with its bytes visible.

use std::fmt::{self, Write as _};

/// Longest untrusted text written whole; longer text is cut and the rest counted.
pub const MAX_LOGGED_CHARS: usize = 512;

/// Untrusted text for a log line: anything that displays (a string, an error whose message
/// quotes a request), written with control characters, backslashes, quotes, line and
/// paragraph separators and bidirectional controls as escapes (`\n`, `\0`, `\u{202e}`), and
/// cut after [`MAX_LOGGED_CHARS`] characters.
#[derive(Clone, Copy)]
pub struct Untrusted<T>(pub T);

impl<T: fmt::Display> fmt::Display for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Escaping {
            out: f,
            chars: 0,
            limit: MAX_LOGGED_CHARS,
            cut: 0,
        };
        write!(out, "{}", self.0)?;
        out.finish()
    }
}

impl<T: fmt::Display> fmt::Debug for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A writer that escapes what goes through it and cuts it after `limit` characters.
struct Escaping<'a, W: fmt::Write> {
    out: &'a mut W,
    chars: usize,
    limit: usize,
    cut: usize,
}

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.chars >= self.limit {
                self.cut += c.len_utf8();
                continue;
            }
            self.chars += 1;
            match c {
                '\n' => self.out.write_str("\\n")?,
                '\r' => self.out.write_str("\\r")?,
                '\t' => self.out.write_str("\\t")?,
                '\0' => self.out.write_str("\\0")?,
                '\\' => self.out.write_str("\\\\")?,
                '"' => self.out.write_str("\\\"")?,
                c if needs_escape(c) => write!(self.out, "\\u{{{:x}}}", u32::from(c))?,
                c => self.out.write_char(c)?,
            }
        }
        Ok(())
    }
}

impl<W: fmt::Write> Escaping<'_, W> {
    fn finish(self) -> fmt::Result {
        if self.cut > 0 {
            write!(self.out, "...[{} more bytes]", self.cut)?;
        }
        Ok(())
    }
}

/// Whether a character must be escaped in a log line.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{feff}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Writes `text` escaped as [`Untrusted`] does, cut after `limit` characters.
pub fn write_escaped(f: &mut impl fmt::Write, text: &str, limit: usize) -> fmt::Result {
    let mut out = Escaping {
        out: f,
        chars: 0,
        limit,
        cut: 0,
    };
    out.write_str(text)?;
    out.finish()
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

    #[test]
    fn errors_are_escaped_through_their_display() {
        let e = std::io::Error::other("bad rn 'x\nFAKE'");
        assert_eq!(Untrusted(&e).to_string(), "bad rn 'x\\nFAKE'");
        let mut s = String::new();
        write_escaped(&mut s, "ab\u{0}c", 2).expect("write");
        assert_eq!(s, "ab...[2 more bytes]");
    }
}
