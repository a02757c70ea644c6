//! Waiting for the ClientHello before a connection may take a handshake place.
//!
//! A TCP connection costs the listener a socket and a small task; a handshake costs an
//! OpenSSL object, key exchange and signatures. Only a client that has sent its whole
//! ClientHello has asked for that work, so the handshake caps (`limits.rs`) are applied only
//! then: a silent or trickling connection waits here, holding no place, until the handshake
//! timeout drops it. The bytes read are handed to OpenSSL unchanged by [`ClientStream`].

use super::error::HandshakeError;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Largest ClientHello waited for (handshake message bytes). Real ones are a few hundred
/// bytes to about 2 KiB (hybrid post-quantum key shares); anything larger is refused before
/// it holds a handshake place.
pub(crate) const MAX_CLIENT_HELLO: usize = 32 * 1024;

/// Bytes read from the socket at once under TLS: a full 16 KiB record plus its header.
const READ_BUFFER: usize = 16 * 1024 + 512;

const RECORD_HEADER: usize = 5;
const HANDSHAKE_RECORD: u8 = 0x16;
const CLIENT_HELLO: u8 = 0x01;
/// Largest TLS record body (TLS 1.2 allows 2 KiB of expansion over the 16 KiB plaintext).
const MAX_RECORD: usize = 16 * 1024 + 2048;

/// How far the bytes received so far go towards a ClientHello.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Not complete yet: wait for more bytes.
    Partial,
    /// The whole ClientHello is here.
    Complete,
    /// Not a TLS ClientHello as this module reads it (plain HTTP, garbage, an SSLv2 hello):
    /// OpenSSL reads it at once and refuses it with a precise reason.
    NotAHello,
    /// A ClientHello announcing more than [`MAX_CLIENT_HELLO`] bytes.
    TooLarge(usize),
}

/// Reads `bytes` as TLS records carrying a ClientHello (possibly spread over several records).
fn progress(bytes: &[u8]) -> Progress {
    let mut handshake = Vec::new();
    let mut rest = bytes;
    loop {
        if let Some(outcome) = hello_in(&handshake) {
            return outcome;
        }
        if rest.len() < RECORD_HEADER {
            return match rest.first() {
                Some(&t) if t != HANDSHAKE_RECORD => Progress::NotAHello,
                _ => Progress::Partial,
            };
        }
        let length = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if rest[0] != HANDSHAKE_RECORD || length == 0 || length > MAX_RECORD {
            return Progress::NotAHello;
        }
        let Some(body) = rest.get(RECORD_HEADER..RECORD_HEADER + length) else {
            return Progress::Partial;
        };
        handshake.extend_from_slice(body);
        rest = &rest[RECORD_HEADER + length..];
    }
}

/// Whether the handshake-layer bytes so far settle the question.
fn hello_in(handshake: &[u8]) -> Option<Progress> {
    let header = handshake.get(..4)?;
    if header[0] != CLIENT_HELLO {
        return Some(Progress::NotAHello);
    }
    let length =
        usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    if length > MAX_CLIENT_HELLO {
        return Some(Progress::TooLarge(length));
    }
    (handshake.len() >= 4 + length).then_some(Progress::Complete)
}

/// Reads from `tcp` until a whole ClientHello (or something OpenSSL must refuse) is there;
/// the caller bounds the wait. Holds nothing but the bytes received.
pub(crate) async fn receive(tcp: TcpStream) -> Result<ClientStream, HandshakeError> {
    let mut received = Vec::new();
    loop {
        match progress(&received) {
            Progress::Partial => {}
            Progress::Complete | Progress::NotAHello => {
                return Ok(ClientStream::new(tcp, received))
            }
            Progress::TooLarge(n) => {
                return Err(HandshakeError::refused(format!(
                    "a ClientHello of {n} bytes (at most {MAX_CLIENT_HELLO} are accepted)"
                )))
            }
        }
        tcp.readable().await.map_err(HandshakeError::Io)?;
        // Records are read whole at most: the wait stops at the hello's last byte.
        received.reserve(512);
        match tcp.try_read_buf(&mut received) {
            Ok(0) => return Err(HandshakeError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(HandshakeError::Io(e)),
        }
        if received.len() > MAX_CLIENT_HELLO + 64 * RECORD_HEADER {
            return Ok(ClientStream::new(tcp, received));
        }
    }
}

/// The TCP stream of a TLS connection, read through a buffer (one `recv` brings whole TLS
/// records, often several, instead of one call for each record's header and another for its
/// body) that starts out holding the bytes read while waiting for the ClientHello.
#[derive(Debug)]
pub struct ClientStream {
    tcp: TcpStream,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ClientStream {
    fn new(tcp: TcpStream, received: Vec<u8>) -> Self {
        let end = received.len();
        let mut buffer = received;
        buffer.resize(end.max(READ_BUFFER), 0);
        Self {
            tcp,
            buffer: buffer.into_boxed_slice(),
            start: 0,
            end,
        }
    }

    /// The TCP connection underneath.
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            if out.remaining() >= this.buffer.len() {
                return Pin::new(&mut this.tcp).poll_read(cx, out);
            }
            let mut fill = ReadBuf::new(&mut this.buffer);
            std::task::ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut fill))?;
            this.start = 0;
            this.end = fill.filled().len();
        }
        let n = out.remaining().min(this.end - this.start);
        out.put_slice(&this.buffer[this.start..this.start + n]);
        this.start += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: &[u8]) -> Vec<u8> {
        let mut r = vec![0x16, 0x03, 0x01];
        r.extend_from_slice(&u16::try_from(body.len()).expect("short").to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn hello(length: usize) -> Vec<u8> {
        let mut h = vec![
            0x01,
            (length >> 16) as u8,
            (length >> 8) as u8,
            length as u8,
        ];
        h.resize(4 + length, 0xaa);
        h
    }

    #[test]
    fn a_hello_is_complete_only_with_its_last_byte() {
        let whole = record(&hello(300));
        for cut in 0..whole.len() {
            assert_eq!(progress(&whole[..cut]), Progress::Partial, "cut at {cut}");
        }
        assert_eq!(progress(&whole), Progress::Complete);
    }

    #[test]
    fn a_hello_spread_over_records_is_waited_for() {
        let h = hello(100);
        let mut bytes = record(&h[..9]);
        assert_eq!(progress(&bytes), Progress::Partial);
        bytes.extend(record(&h[9..]));
        assert_eq!(progress(&bytes), Progress::Complete);
    }

    #[test]
    fn other_bytes_go_to_openssl_at_once() {
        assert_eq!(progress(b"GET / HTTP/1.1\r\n"), Progress::NotAHello);
        assert_eq!(progress(b"G"), Progress::NotAHello);
        assert_eq!(
            progress(&[0x16, 0x03, 0x01, 0x00, 0x00]),
            Progress::NotAHello
        );
        assert_eq!(
            progress(&[0x16, 0x03, 0x01, 0xff, 0xff]),
            Progress::NotAHello
        );
        assert_eq!(progress(&record(&[0x02, 0, 0, 1, 0])), Progress::NotAHello);
        assert_eq!(progress(&[]), Progress::Partial);
    }

    #[test]
    fn an_oversized_hello_is_refused_before_it_arrives() {
        let announced = MAX_CLIENT_HELLO + 1;
        let header = [
            0x01,
            (announced >> 16) as u8,
            (announced >> 8) as u8,
            announced as u8,
        ];
        assert_eq!(progress(&record(&header)), Progress::TooLarge(announced));
    }
}
