//! The answer to a request head that hyper cannot parse.
//!
//! hyper answers such a head itself (a bad request line or header bytes, an invalid
//! `Content-Length`, a head beyond its hard size limit) with a bare 400, 414 or 431 before the
//! binding sees a request, and offers no hook to change that answer. So the connection's
//! writes pass through [`Answering`], which recognises that automatic answer as it leaves
//! (a status line of one of those codes, at the start of a response, without `X-M2M-RSC`:
//! every answer of the binding carries one) and sends the binding's own in its place: the same
//! HTTP status, `X-M2M-RSC: 4000` and an `m2m:dbg` saying what was wrong. hyper closes the
//! connection after it, as before.

use crate::headers;
use security::privacy;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's I/O whose parse-error answers carry `X-M2M-RSC`.
#[derive(Debug)]
pub(crate) struct Answering<Io> {
    io: Io,
    peer: Option<SocketAddr>,
    /// Whether the next write starts a response: hyper hands each flush the whole buffered
    /// response, so a write that went out whole ends one (a body never starts `HTTP/`).
    at_start: bool,
    /// The binding's answer still to send, and how much of it is sent.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<Io> Answering<Io> {
    pub(crate) fn new(io: Io, peer: Option<SocketAddr>) -> Self {
        Self {
            io,
            peer,
            at_start: true,
            replacement: None,
        }
    }
}

/// What a status hyper answers by itself means to the client.
fn reason(status: u16) -> Option<&'static str> {
    match status {
        400 => Some("the request head is not valid HTTP/1.1 (request line, header bytes, Content-Length or Transfer-Encoding)"),
        414 => Some("the request target is too long"),
        431 => Some("the request head is larger than this listener accepts"),
        _ => None,
    }
}

/// The binding's answer in place of hyper's automatic one in `bytes`, if that is what they
/// are.
fn replace(bytes: &[u8]) -> Option<(u16, Vec<u8>)> {
    let rest = bytes.strip_prefix(b"HTTP/1.1 ")?;
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    let why = reason(status)?;
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    if head.to_ascii_lowercase().contains(headers::RSC.as_str()) {
        return None;
    }
    let body = serde_json::json!({ "m2m:dbg": why }).to_string();
    let mut out = format!("{status_line}\r\n");
    for line in lines.filter(|l| {
        let name = l.split(':').next().unwrap_or("").trim();
        !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("connection")
    }) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "X-M2M-RSC: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        model::ResponseStatusCode::BadRequest.code(),
        body.len()
    ));
    Some((status, out.into_bytes()))
}

impl<Io: AsyncWrite + Unpin> Answering<Io> {
    /// Sends what is left of the replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, sent)) = &mut self.replacement {
            if *sent == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Answering<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Answering<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        if this.at_start {
            if let Some((status, answer)) = replace(buf) {
                tracing::debug!(peer = %privacy::peer_tag(this.peer), status, rsc = 4000, "request head refused by the HTTP parser");
                this.replacement = Some((answer, 0));
                // hyper's answer counts as written; ours goes out on the next flush.
                return Poll::Ready(Ok(buf.len()));
            }
        }
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.at_start = n == buf.len();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_automatic_answers_are_replaced() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nDate: Mon, 07 Dec 2026 15:00:00 GMT\r\n\r\n";
        let (status, answer) = replace(hyper).expect("replaced");
        let answer = String::from_utf8(answer).expect("text");
        assert_eq!(status, 431);
        assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(answer.contains("\r\nDate: Mon, 07 Dec 2026 15:00:00 GMT\r\n"));
        assert!(answer.contains("\r\nX-M2M-RSC: 4000\r\n"));
        assert_eq!(answer.matches("Content-Length").count(), 1);
        let body = answer.split("\r\n\r\n").nth(1).expect("body");
        assert!(answer.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }

    #[test]
    fn the_bindings_own_answers_pass_unchanged() {
        assert!(replace(b"HTTP/1.1 400 Bad Request\r\nX-M2M-RSC: 4000\r\n\r\n").is_none());
        assert!(replace(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_none());
        assert!(replace(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").is_none());
        assert!(replace(b"{\"m2m:dbg\":\"HTTP/1.1 400 \"}").is_none());
        assert!(replace(b"HTTP/1.1 400 Bad Request\r\nContent-Le").is_none());
    }
}
