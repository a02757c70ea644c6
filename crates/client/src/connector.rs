//! The connector under the client's keep-alive pool: hyper-util's `HttpConnector` for TCP
//! (DNS, connect timeout, `TCP_NODELAY`) and, for `https://`, an OpenSSL handshake on top.
//! hyper-util keys its pool by scheme and authority, so plain and TLS connections to the
//! same host never mix.

use crate::error::{chain, ClientError};
use crate::header_case::HeadCase;
use crate::tls::TlsConfig;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use openssl::x509::X509VerifyResult;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens plain or TLS connections for the pool (a `tower_service::Service<Uri>`, which
/// hyper-util accepts as a connector).
#[derive(Clone)]
pub(crate) struct Connector {
    tcp: HttpConnector,
    tls: Option<Arc<TlsConfig>>,
    /// The base URL's authority as it appears in request URIs: connections to it use
    /// [`TlsConfig::server_name`].
    base_authority: String,
    handshake_timeout: Duration,
}

impl Connector {
    /// A connector with `timeout` for the TCP connect and, separately, the TLS handshake.
    pub(crate) fn new(tls: Option<TlsConfig>, base_authority: String, timeout: Duration) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout));
        // This connector checks the scheme itself (below); `HttpConnector` only does TCP.
        tcp.enforce_http(false);
        Self {
            tcp,
            tls: tls.map(Arc::new),
            base_authority,
            handshake_timeout: timeout,
        }
    }

    /// Whether `https://` URLs can be reached.
    pub(crate) fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// One connection to `dst` outside the pool ([`crate::Connection`]): a TCP failure is
    /// [`ClientError::Connect`], a refused TLS handshake [`ClientError::Handshake`].
    pub(crate) async fn open(&self, dst: http::Uri) -> Result<Stream, ClientError> {
        let mut connector = self.clone();
        std::future::poll_fn(|cx| Service::<http::Uri>::poll_ready(&mut connector, cx))
            .await
            .map_err(|e| ClientError::Connect(chain(&*e)))?;
        match connector.call(dst).await {
            Ok(io) => Ok(io.into_inner()),
            Err(e) if e.is::<HandshakeError>() || e.is::<openssl::error::ErrorStack>() => {
                Err(ClientError::Handshake(e.to_string()))
            }
            Err(e) => Err(ClientError::Connect(chain(&*e))),
        }
    }
    /// The name for SNI and certificate verification on a connection to `dst`.
    fn server_name(&self, tls: &TlsConfig, dst: &http::Uri) -> Option<String> {
        let authority = dst.authority()?;
        if let Some(name) = &tls.server_name {
            if authority
                .as_str()
                .eq_ignore_ascii_case(&self.base_authority)
            {
                return Some(name.clone());
            }
        }
        // `Uri::host` keeps the brackets of an IPv6 literal.
        let host = authority.host();
        Some(
            host.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host)
                .to_owned(),
        )
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("tls", &self.tls)
            .field("base_authority", &self.base_authority)
            .finish_non_exhaustive()
    }
}

impl Service<http::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Service::<http::Uri>::poll_ready(&mut self.tcp, cx).map_err(Into::into)
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let tls = match dst.scheme_str() {
            Some("http") => None,
            Some("https") => match &self.tls {
                Some(tls) => Some(tls.clone()),
                None => return fail("https:// needs TLS options (Client::with_tls)"),
            },
            _ => return fail("only http:// and https:// URLs are supported"),
        };
        let tcp = self.tcp.call(dst.clone());
        let Some(tls) = tls else {
            return Box::pin(async move {
                Ok(TokioIo::new(Stream::new(Transport::Plain(
                    tcp.await?.into_inner(),
                ))))
            });
        };
        let Some(name) = self.server_name(&tls, &dst) else {
            return fail("the URL has no host");
        };
        let timeout = self.handshake_timeout;
        Box::pin(async move {
            let tcp = tcp.await?.into_inner();
            // NOTE(nodelay): `HttpConnector` already set it; repeated here because TLS
            // depends on it: tokio-openssl writes each handshake record separately, and
            // without TCP_NODELAY Nagle plus delayed ACKs stall TLS 1.3 handshakes (about
            // 20 per second instead of 400).
            tcp.set_nodelay(true)?;
            let ssl = tls.connector.configure()?.into_ssl(&name)?;
            let mut stream = SslStream::new(ssl, tcp)?;
            match tokio::time::timeout(timeout, Pin::new(&mut stream).connect()).await {
                Ok(Ok(())) => Ok(TokioIo::new(Stream::new(Transport::Tls(stream, None)))),
                Ok(Err(e)) => Err(HandshakeError::failed(name, e, &stream, tls.is_psk()).into()),
                Err(_) => Err(HandshakeError {
                    server: name,
                    reason: format!("no handshake within {timeout:?}"),
                }
                .into()),
            }
        })
    }
}

fn fail(
    reason: &'static str,
) -> Pin<Box<dyn Future<Output = Result<TokioIo<Stream>, BoxError>> + Send>> {
    Box::pin(async move { Err(reason.into()) })
}

/// A TLS handshake that did not complete, with OpenSSL's reason and, when the server
/// certificate was the problem, the verification result.
#[derive(Debug)]
struct HandshakeError {
    server: String,
    reason: String,
}

impl HandshakeError {
    fn failed(
        server: String,
        e: openssl::ssl::Error,
        stream: &SslStream<TcpStream>,
        psk: bool,
    ) -> Self {
        let verify = stream.ssl().verify_result();
        if psk && verify == X509VerifyResult::APPLICATION_VERIFICATION {
            // Set only by the PSK configuration's verify callback: OpenSSL's own words
            // ("certificate verify failed") would send the user after a certificate.
            return Self {
                server,
                reason: format!("the server refused the PSK ({PSK_REFUSED}) and offered a certificate instead, which a PSK client does not accept"),
            };
        }
        let mut reason = match (e.ssl_error(), e.io_error()) {
            (Some(stack), _) => stack.to_string(),
            (None, Some(io)) => io.to_string(),
            (None, None)
                if e.code() == openssl::ssl::ErrorCode::ZERO_RETURN
                    || e.code() == openssl::ssl::ErrorCode::SYSCALL =>
            {
                "the server closed the connection".to_owned()
            }
            (None, None) => e.to_string(),
        };
        if psk {
            reason.push_str(&format!(
                " (the server refused the handshake: {PSK_REFUSED})"
            ));
        } else if verify != X509VerifyResult::OK {
            reason.push_str(&format!(" (server certificate: {})", verify.error_string()));
        }
        Self { server, reason }
    }
}

/// Why a server refuses a PSK handshake, as far as a client can tell: the server does not
/// say which (it must not let a client enumerate identities).
const PSK_REFUSED: &str = "an unknown identity, a wrong key, or a credential the CSE's admin \
    may have withdrawn by revoking or suspending it";

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TLS handshake with '{}' failed: {}",
            self.server, self.reason
        )
    }
}

impl std::error::Error for HandshakeError {}

/// A pooled connection: plain TCP or TLS over TCP, which writes header names in their
/// conventional spelling ([`HeadCase`]).
#[derive(Debug)]
pub(crate) struct Stream {
    io: Transport,
    case: HeadCase,
}

/// The bytes under a [`Stream`].
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    /// With the error of a write the server refused, kept while the reason (an alert) may
    /// still be on its way in (see [`why_closed`]).
    Tls(SslStream<TcpStream>, Option<io::Error>),
}

impl Stream {
    fn new(io: Transport) -> Self {
        Self {
            io,
            case: HeadCase::default(),
        }
    }

    /// The TLS session, for a connection over TLS.
    pub(crate) fn tls(&self) -> Option<&SslStream<TcpStream>> {
        match &self.io {
            Transport::Plain(_) => None,
            Transport::Tls(tls, _) => Some(tls),
        }
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match &self.io {
            Transport::Plain(tcp) => tcp.connected(),
            Transport::Tls(tls, _) => tls.get_ref().connected(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s, _) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.case.active() {
            return match &mut this.io {
                Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
                Transport::Tls(s, refused) => tls_write(s, refused, cx, buf),
            };
        }
        // Rewritten on a copy; the writer moves past only what was taken.
        let mut out = buf.to_vec();
        this.case.clone().apply(&mut out);
        let written = match &mut this.io {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, &out),
            Transport::Tls(s, refused) => tls_write(s, refused, cx, &out),
        };
        if let Poll::Ready(Ok(n)) = written {
            this.case.apply(&mut out[..n].to_vec());
        }
        written
    }

    // Not vectored: hyper then hands over each head in one contiguous buffer.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s, _) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s, _) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One write to a TLS stream, unless an earlier write was refused (then its error, or the
/// alert that explains it: [`why_closed`]).
fn tls_write(
    s: &mut SslStream<TcpStream>,
    refused: &mut Option<io::Error>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    let written = match refused.take() {
        Some(e) => Poll::Ready(Err(e)),
        None => Pin::new(&mut *s).poll_write(cx, buf),
    };
    why_closed(s, refused, cx, written)
}

/// A write the server's close refused (`EPIPE`, or OpenSSL's own error for it), replaced by
/// the TLS alert the server sent before closing.
///
/// NOTE(alert): in TLS 1.3 a server checks the client certificate after the client has
/// finished its side of the handshake, so a refusal (`unknown ca`, `certificate revoked`)
/// arrives as an alert while the first request is on its way. "Broken pipe" would tell the
/// user nothing; the alert says why. The runtime may not have seen the alert arrive yet when
/// the write fails, so the write waits (its error kept in `refused`) until the connection is
/// readable: then the alert, or else the write's own error, is the answer.
fn why_closed(
    tls: &mut SslStream<TcpStream>,
    refused: &mut Option<io::Error>,
    cx: &mut Context<'_>,
    written: Poll<io::Result<usize>>,
) -> Poll<io::Result<usize>> {
    let Poll::Ready(Err(e)) = written else {
        return written;
    };
    let mut scratch = [0u8; 64];
    let mut buf = ReadBuf::new(&mut scratch);
    match Pin::new(tls).poll_read(cx, &mut buf) {
        Poll::Ready(Err(read)) if is_alert(&read) => Poll::Ready(Err(read)),
        Poll::Ready(_) => Poll::Ready(Err(e)),
        Poll::Pending => {
            *refused = Some(e);
            Poll::Pending
        }
    }
}

/// Whether an I/O error is OpenSSL reporting a TLS alert the peer sent.
fn is_alert(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
        .and_then(openssl::ssl::Error::ssl_error)
        .is_some_and(|stack| {
            stack
                .errors()
                .iter()
                .any(|e| e.reason().is_some_and(|r| r.contains("alert")))
        })
}
