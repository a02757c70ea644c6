//! Refusing a chunked body by its declared chunk sizes, as soon as they exceed the limit.
//!
//! hyper hands a chunked body over as its bytes arrive and never says how large the chunk it
//! is reading was declared to be, so a client that declares a chunk far over the body limit
//! and then sends a few bytes would be waited for until the body timeout. [`ChunkWatch`] reads
//! the same bytes as hyper on their way in, follows the framing of each request (head, then a
//! `Content-Length` or chunked body) and, when the chunk sizes a request has declared add up
//! to more than the limit, tells that request's body reader ([`Oversized`]), which answers 413
//! at once. It only ever makes a refusal earlier: on anything it does not follow exactly
//! (a head `httparse` refuses, an unusual framing header) it stops watching the connection and
//! the body limit is enforced as the bytes arrive, as before.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Which request of the connection declared too large a body (numbered from 1; 0: none yet).
#[derive(Debug, Default)]
pub(crate) struct Oversized {
    request: AtomicU64,
    changed: Notify,
}

impl Oversized {
    /// Resolves once request number `request` of the connection has declared chunks adding
    /// up to more than the limit; pending forever otherwise.
    pub(crate) async fn declared(&self, request: u64) {
        loop {
            let changed = self.changed.notified();
            if self.request.load(Ordering::Acquire) == request {
                return;
            }
            changed.await;
        }
    }

    fn set(&self, request: u64) {
        self.request.store(request, Ordering::Release);
        self.changed.notify_waiters();
    }
}

/// Where the watcher is in the request stream.
#[derive(Debug)]
enum State {
    /// Reading a request head (bytes so far).
    Head(Vec<u8>),
    /// Inside a `Content-Length` body: bytes left.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// Not following this connection any more.
    Lost,
}

#[derive(Debug)]
enum Chunk {
    /// The hex size so far (digits seen).
    Size(u64, usize),
    /// After the size: an extension, up to the line's end.
    Extension(u64),
    /// `\r` seen at the end of the size line.
    SizeEnd(u64),
    /// Data bytes left in the chunk.
    Data(u64),
    /// The `\r\n` after the data; the flag says whether `\r` was seen.
    DataEnd(bool),
    /// Trailer lines after the last chunk: bytes in the current line, `\r` seen.
    Trailer(usize, bool),
}

/// Follows the framing of the requests on one connection.
#[derive(Debug)]
struct Framing {
    state: State,
    /// Requests whose head has been read.
    requests: u64,
    /// Chunk sizes declared by the current request.
    declared: u64,
    max_body: u64,
    max_head: usize,
    oversized: Arc<Oversized>,
}

/// Header fields a head is parsed with; more makes the watcher stop (hyper refuses such a
/// head anyway).
const MAX_FIELDS: usize = 256;

impl Framing {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            bytes = match std::mem::replace(&mut self.state, State::Lost) {
                State::Lost => return,
                State::Head(mut head) => {
                    let before = head.len();
                    head.extend_from_slice(bytes);
                    // hyper skips empty lines before a request line.
                    let skip = head
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b'\n'))
                        .count();
                    match head[skip..].windows(4).position(|w| w == b"\r\n\r\n") {
                        // The same limit whether the head came in one piece or many.
                        Some(end) if skip + end + 4 > self.max_head => return,
                        Some(end) => {
                            let used = skip + end + 4 - before;
                            self.state = self.body_of(&head[skip..skip + end + 4]);
                            &bytes[used..]
                        }
                        None if head.len() > self.max_head => return,
                        None => {
                            self.state = State::Head(head);
                            return;
                        }
                    }
                }
                State::Length(left) => {
                    let n = left.min(bytes.len() as u64);
                    self.state = if n == left {
                        State::Head(Vec::new())
                    } else {
                        State::Length(left - n)
                    };
                    &bytes[usize::try_from(n).unwrap_or(bytes.len())..]
                }
                State::Chunked(chunk) => {
                    let (state, used) = self.chunk(chunk, bytes);
                    self.state = state;
                    &bytes[used..]
                }
            };
        }
    }

    /// The state after a complete request head.
    fn body_of(&mut self, head: &[u8]) -> State {
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut request = httparse::Request::new(&mut fields);
        if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
            return State::Lost;
        }
        if request.method == Some("CONNECT") {
            return State::Lost;
        }
        self.requests += 1;
        self.declared = 0;
        let named = |name: &'static str| -> Vec<&str> {
            request
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| std::str::from_utf8(h.value).unwrap_or("\u{0}"))
                .collect()
        };
        let encodings = named("transfer-encoding");
        let lengths = named("content-length");
        match (encodings.as_slice(), lengths.as_slice()) {
            ([], []) => State::Head(Vec::new()),
            ([], [length]) => match length.trim().parse::<u64>() {
                Ok(0) => State::Head(Vec::new()),
                Ok(n) => State::Length(n),
                Err(_) => State::Lost,
            },
            ([encoding], []) if encoding.trim().eq_ignore_ascii_case("chunked") => {
                State::Chunked(Chunk::Size(0, 0))
            }
            _ => State::Lost,
        }
    }

    /// Follows a chunked body through `bytes`; returns the next state and the bytes used.
    fn chunk(&mut self, mut chunk: Chunk, bytes: &[u8]) -> (State, usize) {
        let mut used = 0;
        while used < bytes.len() {
            chunk = match chunk {
                Chunk::Data(left) => {
                    let available = bytes.len() - used;
                    let n = usize::try_from(left).map_or(available, |l| l.min(available));
                    used += n;
                    match left - n as u64 {
                        0 => Chunk::DataEnd(false),
                        rest => Chunk::Data(rest),
                    }
                }
                other => {
                    let b = bytes[used];
                    used += 1;
                    match self.step(other, b) {
                        Ok(next) => next,
                        Err(state) => return (state, used),
                    }
                }
            };
        }
        (State::Chunked(chunk), used)
    }

    /// One byte of chunk framing (never inside data); `Err` leaves the chunked body.
    fn step(&mut self, chunk: Chunk, b: u8) -> Result<Chunk, State> {
        Ok(match chunk {
            Chunk::Data(left) => Chunk::Data(left),
            Chunk::Size(size, digits) => match (b as char).to_digit(16) {
                Some(d) if digits < 15 => Chunk::Size(size << 4 | u64::from(d), digits + 1),
                None if digits > 0 && matches!(b, b';' | b' ' | b'\t') => Chunk::Extension(size),
                None if digits > 0 && b == b'\r' => Chunk::SizeEnd(size),
                _ => return Err(State::Lost),
            },
            Chunk::Extension(size) => match b {
                b'\r' => Chunk::SizeEnd(size),
                b'\n' => return Err(State::Lost),
                _ => Chunk::Extension(size),
            },
            Chunk::SizeEnd(size) => {
                if b != b'\n' {
                    return Err(State::Lost);
                }
                self.declared = self.declared.saturating_add(size);
                if self.declared > self.max_body {
                    self.oversized.set(self.requests);
                    // The request is refused; hyper closes the connection after it.
                    return Err(State::Lost);
                }
                match size {
                    0 => Chunk::Trailer(0, false),
                    n => Chunk::Data(n),
                }
            }
            Chunk::DataEnd(cr) => match (cr, b) {
                (false, b'\r') => Chunk::DataEnd(true),
                (true, b'\n') => Chunk::Size(0, 0),
                _ => return Err(State::Lost),
            },
            Chunk::Trailer(line, cr) => match (cr, b) {
                (true, b'\n') if line == 0 => return Err(State::Head(Vec::new())),
                (true, b'\n') => Chunk::Trailer(0, false),
                (false, b'\r') => Chunk::Trailer(line, true),
                (false, _) => Chunk::Trailer(line + 1, false),
                (true, _) => return Err(State::Lost),
            },
        })
    }
}

/// What following one connection's bytes concluded: the fuzz target and the property tests
/// compare it across different splits of the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Followed {
    /// Requests whose head was read.
    pub requests: u64,
    /// The request flagged as declaring too large a chunked body (numbered from 1; 0: none).
    pub flagged: u64,
    /// Whether the watcher still follows the connection.
    pub following: bool,
}

/// Follows `pieces`, one connection's bytes in the pieces they arrived in, exactly as a
/// listener's watcher would. Public so that the framing can be fuzzed outside the crate; the
/// result must not depend on how the same bytes were split.
pub fn follow<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
    max_body: usize,
    max_head: usize,
) -> Followed {
    let (mut watch, oversized) = ChunkWatch::new((), max_body, max_head);
    for piece in pieces {
        watch.framing.feed(piece);
    }
    Followed {
        requests: watch.framing.requests,
        flagged: oversized.request.load(Ordering::Acquire),
        following: !matches!(watch.framing.state, State::Lost),
    }
}

/// A connection's I/O whose incoming requests are followed by a [`Framing`].
#[derive(Debug)]
pub(crate) struct ChunkWatch<Io> {
    io: Io,
    framing: Framing,
}

impl<Io> ChunkWatch<Io> {
    /// Watches `io`, refusing chunked bodies declared over `max_body` bytes; `max_head` is the
    /// most head bytes followed.
    pub(crate) fn new(io: Io, max_body: usize, max_head: usize) -> (Self, Arc<Oversized>) {
        let oversized = Arc::new(Oversized::default());
        let framing = Framing {
            state: State::Head(Vec::new()),
            requests: 0,
            declared: 0,
            max_body: max_body as u64,
            max_head,
            oversized: oversized.clone(),
        };
        (Self { io, framing }, oversized)
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for ChunkWatch<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.framing.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for ChunkWatch<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(max_body: u64) -> Framing {
        Framing {
            state: State::Head(Vec::new()),
            requests: 0,
            declared: 0,
            max_body,
            max_head: 4096,
            oversized: Arc::new(Oversized::default()),
        }
    }

    fn flagged(f: &Framing) -> u64 {
        f.oversized.request.load(Ordering::Acquire)
    }

    const CHUNKED: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

    #[test]
    fn requests_are_followed_byte_by_byte_and_all_at_once() {
        let stream = [
            &b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"PUT /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            CHUNKED,
            b"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nTrailer: t\r\n\r\n",
            b"GET /c HTTP/1.1\r\n\r\n",
        ]
        .concat();
        let mut whole = framing(8);
        whole.feed(&stream);
        let mut bytewise = framing(8);
        for b in &stream {
            bytewise.feed(std::slice::from_ref(b));
        }
        for f in [whole, bytewise] {
            assert_eq!(f.requests, 4);
            assert!(
                matches!(&f.state, State::Head(h) if h.is_empty()),
                "{:?}",
                f.state
            );
            assert_eq!(flagged(&f), 0);
        }
    }

    #[test]
    fn declared_chunks_over_the_limit_flag_their_request() {
        let mut f = framing(100);
        f.feed(b"GET /a HTTP/1.1\r\n\r\n");
        f.feed(CHUNKED);
        f.feed(b"40\r\n");
        assert_eq!(flagged(&f), 0, "64 bytes declared");
        f.feed(&[b'x'; 64]);
        f.feed(b"\r\n30\r");
        assert_eq!(flagged(&f), 0);
        f.feed(b"\n");
        assert_eq!(flagged(&f), 2, "112 bytes declared by the second request");
        assert!(matches!(f.state, State::Lost));
    }

    #[test]
    fn one_huge_chunk_is_flagged_before_its_data() {
        let mut f = framing(1024 * 1024);
        f.feed(&[CHUNKED, b"fffffff\r\nabc"].concat());
        assert_eq!(flagged(&f), 1);
    }

    #[test]
    fn what_is_not_followed_exactly_stops_the_watch() {
        for stream in [
            &b"GET /a HTTP/1.1\r\nBad Header\r\n\r\n"[..],
            b"POST /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let mut f = framing(10);
            f.feed(stream);
            f.feed(b"ffffff\r\n");
            assert!(
                matches!(f.state, State::Lost),
                "{:?}",
                String::from_utf8_lossy(stream)
            );
            assert_eq!(flagged(&f), 0);
        }
    }

    /// Pieces a connection's bytes are made of: well-formed framing and damage to it.
    fn piece() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            Just(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            Just(CHUNKED.to_vec()),
            (0u32..64).prop_map(
                |n| format!("PUT /b HTTP/1.1\r\nContent-Length: {n}\r\n\r\n").into_bytes()
            ),
            (0u64..0x200).prop_map(|n| format!("{n:x}\r\n").into_bytes()),
            (0u64..0x200).prop_map(|n| format!("{n:x};e=1\r\n").into_bytes()),
            Just(b"\r\n".to_vec()),
            Just(b"0\r\n\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// The watcher's conclusion depends on the bytes, never on how they were split into
        /// reads (the fuzz target `chunk_framing` checks the same on arbitrary bytes).
        #[test]
        fn the_conclusion_does_not_depend_on_how_the_bytes_arrive(
            pieces in proptest::collection::vec(piece(), 0..12),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..8),
            max_body in 0usize..600,
            max_head in 16usize..128,
        ) {
            let stream = pieces.concat();
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            at.sort_unstable();
            let mut split = Vec::new();
            let mut from = 0;
            for to in at.into_iter().chain([stream.len()]) {
                split.push(&stream[from..to]);
                from = to;
            }
            let whole = follow([&stream[..]], max_body, max_head);
            proptest::prop_assert_eq!(follow(split, max_body, max_head), whole);
            let bytewise = follow(stream.chunks(1), max_body, max_head);
            proptest::prop_assert_eq!(bytewise, whole);
        }

        /// Well-formed chunked requests: the first one whose declared chunks add up to more
        /// than the limit is the one flagged, and nothing is flagged otherwise.
        #[test]
        fn the_first_request_declaring_too_much_is_flagged(
            requests in proptest::collection::vec(proptest::collection::vec(1usize..300, 0..5), 1..6),
            max_body in 0usize..900,
        ) {
            let mut stream = Vec::new();
            let mut expected = 0;
            for (i, chunks) in requests.iter().enumerate() {
                stream.extend_from_slice(CHUNKED);
                for &size in chunks {
                    stream.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                    stream.extend(std::iter::repeat_n(b'x', size));
                    stream.extend_from_slice(b"\r\n");
                }
                stream.extend_from_slice(b"0\r\n\r\n");
                if expected == 0 && chunks.iter().sum::<usize>() > max_body {
                    expected = i as u64 + 1;
                }
            }
            let followed = follow([&stream[..]], max_body, 4096);
            proptest::prop_assert_eq!(followed.flagged, expected);
            proptest::prop_assert_eq!(followed.following, expected == 0);
            if expected == 0 {
                proptest::prop_assert_eq!(followed.requests, requests.len() as u64);
            }
        }
    }

    #[tokio::test]
    async fn the_flagged_request_is_woken() {
        let oversized = Arc::new(Oversized::default());
        let waiting = tokio::spawn({
            let o = oversized.clone();
            async move { o.declared(2).await }
        });
        oversized.set(1);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        oversized.set(2);
        waiting.await.expect("woken");
    }
}
