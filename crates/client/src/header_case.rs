//! Header names on the wire in their conventional spelling (`X-M2M-Origin`, `X-M2M-RI`,
//! `Content-Type`), as TS-0009 writes them.
//!
//! Header names are case-insensitive (RFC 9110 clause 5.1), and hyper writes them in lower
//! case; but oneM2M receivers written against the specification's spelling exist, and
//! hyper's own alternative (title case) would give `X-M2m-Ri`. So the connection rewrites
//! the names of the request heads it sends, byte for byte in place (same length), and
//! leaves request lines, values and bodies alone. It follows the stream as HTTP/1.1 frames
//! it: a head ends at its empty line, a body is `Content-Length` bytes; a body it cannot
//! measure (`Transfer-Encoding`) ends the rewriting for that connection.

/// Where in the outgoing byte stream the writer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadCase {
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// In a request line, before its end (`\r\n`); `cr`: the last byte was `\r`.
    RequestLine { cr: bool },
    /// At the start of a header line (or of the empty line that ends the head).
    LineStart { length: Option<u64>, framed: bool },
    /// In a header name; `name` holds it so far, lower case.
    Name {
        name: String,
        length: Option<u64>,
        framed: bool,
    },
    /// In a header value, until `\r\n`; `digits` collects a `Content-Length`.
    Value {
        digits: Option<String>,
        cr: bool,
        length: Option<u64>,
        framed: bool,
    },
    /// The empty line's `\r` was seen.
    HeadEnd { length: Option<u64>, framed: bool },
    /// In a body, this many bytes left.
    Body(u64),
    /// Framing this writer cannot follow: bytes pass unchanged from here on.
    Off,
}

/// The longest header name followed; a longer one is left as it is.
const MAX_NAME: usize = 64;

impl Default for HeadCase {
    fn default() -> Self {
        Self {
            state: State::RequestLine { cr: false },
        }
    }
}

impl HeadCase {
    /// Rewrites the header names in `bytes` (the next bytes of the stream) in place, and
    /// moves past them.
    pub(crate) fn apply(&mut self, bytes: &mut [u8]) {
        for b in bytes {
            *b = self.step(*b);
        }
    }

    /// Whether it still rewrites (it stops for framing it cannot follow).
    pub(crate) fn active(&self) -> bool {
        self.state != State::Off
    }

    fn step(&mut self, b: u8) -> u8 {
        let state = std::mem::replace(&mut self.state, State::Off);
        let (next, out) = match state {
            State::Off => (State::Off, b),
            State::RequestLine { cr } => match b {
                b'\n' if cr => (
                    State::LineStart {
                        length: None,
                        framed: true,
                    },
                    b,
                ),
                _ => (State::RequestLine { cr: b == b'\r' }, b),
            },
            State::LineStart { length, framed } if b == b'\r' => {
                (State::HeadEnd { length, framed }, b)
            }
            State::LineStart { length, framed } => {
                let name = String::new();
                self.name_byte(name, b, length, framed)
            }
            State::Name {
                name,
                length,
                framed,
            } => self.name_byte(name, b, length, framed),
            State::Value {
                mut digits,
                cr,
                length,
                framed,
            } => match b {
                b'\n' if cr => {
                    let length = match digits.map(|d| d.trim().parse::<u64>()) {
                        Some(Ok(n)) => Some(n),
                        Some(Err(_)) => return self.off(b),
                        None => length,
                    };
                    (State::LineStart { length, framed }, b)
                }
                _ => {
                    if let Some(d) = digits.as_mut() {
                        if b != b'\r' {
                            d.push(char::from(b));
                        }
                    }
                    (
                        State::Value {
                            digits,
                            cr: b == b'\r',
                            length,
                            framed,
                        },
                        b,
                    )
                }
            },
            State::HeadEnd { length, framed } => match (b, framed) {
                (b'\n', true) => match length.unwrap_or(0) {
                    0 => (State::RequestLine { cr: false }, b),
                    n => (State::Body(n), b),
                },
                _ => (State::Off, b),
            },
            State::Body(left) => match left {
                1 => (State::RequestLine { cr: false }, b),
                n => (State::Body(n - 1), b),
            },
        };
        self.state = next;
        out
    }

    /// One byte of a header name (or its `:`).
    fn name_byte(
        &mut self,
        mut name: String,
        b: u8,
        length: Option<u64>,
        framed: bool,
    ) -> (State, u8) {
        if b == b':' {
            let digits = (name == "content-length").then(String::new);
            // A body this writer cannot measure ends the rewriting after this head.
            let framed = framed && name != "transfer-encoding";
            return (
                State::Value {
                    digits,
                    cr: false,
                    length,
                    framed,
                },
                b,
            );
        }
        if name.len() >= MAX_NAME || !b.is_ascii_graphic() {
            return (State::Off, b);
        }
        let cased = conventional(&name, b);
        name.push(char::from(b.to_ascii_lowercase()));
        (
            State::Name {
                name,
                length,
                framed,
            },
            cased,
        )
    }

    fn off(&mut self, b: u8) -> u8 {
        self.state = State::Off;
        b
    }
}

/// The conventional case of the byte `b` that follows `before` (lower case) in a header
/// name: title case (`Content-Type`), except that the oneM2M headers spell `M2M` and their
/// abbreviations in capitals (`X-M2M-RI`, `X-M2M-RVI`), all but `X-M2M-Origin`.
fn conventional(before: &str, b: u8) -> u8 {
    const PREFIX: &str = "x-m2m-";
    let so_far = format!("{before}{}", char::from(b.to_ascii_lowercase()));
    let upper = if PREFIX.starts_with(so_far.as_str()) {
        true
    } else if let Some(rest) = so_far.strip_prefix(PREFIX) {
        rest.len() == 1 || !"origin".starts_with(rest)
    } else {
        before.is_empty() || before.ends_with('-')
    };
    if upper {
        b.to_ascii_uppercase()
    } else {
        b.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: &str = "POST /n?x-m2m-ri=a HTTP/1.1\r\nx-m2m-origin: /id-in\r\nx-m2m-ri: r1\r\n\
        x-m2m-rvi: 3\r\nx-m2m-ot: t\r\nx-m2m-oet: t\r\nx-m2m-ec: 4\r\ncontent-type: application/json\r\n\
        accept: application/json\r\ncontent-length: 19\r\nhost: 127.0.0.1:1\r\n\r\n\
        {\"x-m2m-ri\": \"a:b\"}GET / HTTP/1.1\r\nhost: h\r\n\r\n";
    const WANTED: &str = "POST /n?x-m2m-ri=a HTTP/1.1\r\nX-M2M-Origin: /id-in\r\nX-M2M-RI: r1\r\n\
        X-M2M-RVI: 3\r\nX-M2M-OT: t\r\nX-M2M-OET: t\r\nX-M2M-EC: 4\r\nContent-Type: application/json\r\n\
        Accept: application/json\r\nContent-Length: 19\r\nHost: 127.0.0.1:1\r\n\r\n\
        {\"x-m2m-ri\": \"a:b\"}GET / HTTP/1.1\r\nHost: h\r\n\r\n";

    #[test]
    fn names_are_spelled_as_ts_0009_does_and_nothing_else_changes() {
        assert_eq!(SENT.len(), WANTED.len());
        let mut bytes = SENT.as_bytes().to_vec();
        let mut case = HeadCase::default();
        case.apply(&mut bytes);
        assert_eq!(String::from_utf8(bytes).expect("text"), WANTED);
        assert!(case.active());
    }

    #[test]
    fn any_split_of_the_stream_gives_the_same_bytes() {
        for cut in 0..SENT.len() {
            let mut bytes = SENT.as_bytes().to_vec();
            let mut case = HeadCase::default();
            let (a, b) = bytes.split_at_mut(cut);
            case.apply(a);
            case.apply(b);
            assert_eq!(String::from_utf8(bytes).expect("text"), WANTED, "{cut}");
        }
    }

    #[test]
    fn unmeasurable_bodies_stop_the_rewriting() {
        let sent = "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\nhost: h\r\n\r\n";
        let mut bytes = sent.as_bytes().to_vec();
        let mut case = HeadCase::default();
        case.apply(&mut bytes);
        let out = String::from_utf8(bytes).expect("text");
        assert!(out.starts_with("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx"));
        assert!(out.ends_with("host: h\r\n\r\n"), "{out}");
        assert!(!case.active());
    }
}
