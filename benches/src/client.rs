//! One persistent HTTP/1.1 connection: hyper's low-level client, one request at a time, over
//! plain TCP or TLS.

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use openssl::ssl::SslContext;
use std::net::SocketAddr;
use std::pin::Pin;

/// A request as the load generator sends it.
pub(crate) type Request = hyper::Request<Full<Bytes>>;

/// A response, read in full.
#[derive(Debug)]
pub(crate) struct Response {
    /// HTTP status.
    pub(crate) status: StatusCode,
    /// Response headers.
    pub(crate) headers: HeaderMap,
    /// The whole body.
    pub(crate) body: Bytes,
}

impl Response {
    /// A header's value as text, if present and visible ASCII.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How a connection reaches the server.
#[derive(Clone)]
pub(crate) enum Connector {
    /// Plain TCP.
    Plain,
    /// TLS over TCP with this client context (credential, version and suites), one full
    /// handshake per connection.
    Tls(SslContext),
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connector::Plain => "Plain",
            Connector::Tls(_) => "Tls",
        })
    }
}

/// A keep-alive connection that sends requests one after the other.
#[derive(Debug)]
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Opens a connection the way `connector` says (TCP with `TCP_NODELAY`, then the TLS
    /// handshake if any) and does the HTTP/1.1 handshake.
    pub(crate) async fn open_with(addr: SocketAddr, connector: &Connector) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        match connector {
            Connector::Plain => Self::handshake(stream).await,
            Connector::Tls(context) => {
                let ssl = crate::tls_client::new_ssl(context, None)?;
                let mut tls = tokio_openssl::SslStream::new(ssl, stream)
                    .context("cannot set up the TLS connection")?;
                Pin::new(&mut tls)
                    .connect()
                    .await
                    .map_err(|e| anyhow::anyhow!("TLS handshake failed: {e}"))?;
                Self::handshake(tls).await
            }
        }
    }

    async fn handshake<S>(stream: S) -> anyhow::Result<Self>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake failed")?;
        // The connection task ends when the sender is dropped or the peer closes.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    /// Sends one request and reads the whole response.
    pub(crate) async fn send(&mut self, req: Request) -> anyhow::Result<Response> {
        self.sender.ready().await.context("connection closed")?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .context("request failed")?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .context("cannot read the response body")?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
