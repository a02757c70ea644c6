//! One connection outside the pool: every request sent on it travels over the same TCP
//! connection and, for `https://`, the same TLS session, the security association of
//! TS-0003. Made for exchanges that are about the association itself: a MEF enrolment
//! derives its keys from the association's exported keying material (RFC 5705), and a test
//! may send a second request on an association that allows one.

use crate::connector::Stream;
use crate::error::ClientError;
use crate::raw::{self, RawResponse};
use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Uri};
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

/// Keying material to export from a connection's TLS session right after its handshake
/// (RFC 5705 / RFC 8446 clause 7.5): a label and a length, no context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exporter {
    label: String,
    len: usize,
}

impl Exporter {
    /// `len` bytes under `label` (e.g. `EXPORTER-oneM2M-Bootstrap`, 48 bytes).
    pub fn new(label: impl Into<String>, len: usize) -> Self {
        Self {
            label: label.into(),
            len,
        }
    }
}

/// A connection made by [`crate::Client::connect`]: its own TCP connection (and TLS
/// session), never shared with the pool, closed when the last handle to it is dropped.
///
/// Requests are sent one at a time, each bounded by the client's timeout and body limit.
pub struct Connection {
    sender: Arc<Mutex<SendRequest<Full<Bytes>>>>,
    authority: HeaderValue,
    protocol: Option<&'static str>,
    keying_material: Option<Zeroizing<Vec<u8>>>,
    timeout: Duration,
    max_body_bytes: usize,
}

impl Connection {
    /// Completes a connection the connector opened: exports the keying material asked
    /// for, then hands the stream to hyper, whose connection task runs on the current
    /// runtime.
    pub(crate) async fn start(
        stream: Stream,
        authority: &str,
        export: Option<&Exporter>,
        timeout: Duration,
        max_body_bytes: usize,
    ) -> Result<Self, ClientError> {
        let (protocol, keying_material) = match stream.tls() {
            None => (None, None),
            Some(tls) => {
                let keying_material = match export {
                    None => None,
                    Some(e) => {
                        let mut out = Zeroizing::new(vec![0u8; e.len]);
                        tls.ssl()
                            .export_keying_material(&mut out, &e.label, None)
                            .map_err(|e| {
                                ClientError::Handshake(format!(
                                    "cannot export keying material: {e}"
                                ))
                            })?;
                        Some(out)
                    }
                };
                (Some(tls.ssl().version_str()), keying_material)
            }
        };
        let authority =
            HeaderValue::from_str(authority).map_err(|_| ClientError::InvalidHeader("host"))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (sender, driver) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| ClientError::Exchange(crate::error::chain(&e)))?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or every handle is dropped; a
            // failure shows up in the pending request, if any.
            let _ = driver.await;
        });
        Ok(Self {
            sender: Arc::new(Mutex::new(sender)),
            authority,
            protocol,
            keying_material,
            timeout,
            max_body_bytes,
        })
    }

    /// The exported keying material ([`Exporter`]), when the connection is TLS and asked for
    /// it.
    pub fn keying_material(&self) -> Option<&[u8]> {
        self.keying_material.as_deref().map(Vec::as_slice)
    }

    /// The negotiated TLS version (`TLSv1.3`), or `None` for plain TCP.
    pub fn protocol(&self) -> Option<&'static str> {
        self.protocol
    }

    /// Sends `req` on this connection and reads its answer, within the client's timeout.
    /// The request may name the base URL in absolute form (as the client's builders do):
    /// it is sent in origin form with a `Host` header.
    ///
    /// The future owns what it needs, so it can be handed to [`crate::Blocking::run`].
    pub fn send(
        &self,
        mut req: http::Request<Full<Bytes>>,
    ) -> impl Future<Output = Result<RawResponse, ClientError>> + Send + 'static {
        let sender = self.sender.clone();
        let (timeout, limit) = (self.timeout, self.max_body_bytes);
        if !req.headers().contains_key(HOST) {
            req.headers_mut().insert(HOST, self.authority.clone());
        }
        let origin_form = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<Uri>();
        async move {
            let origin_form = origin_form.map_err(|_| ClientError::InvalidUrl {
                url: req.uri().to_string(),
                reason: "not a valid request URI",
            })?;
            *req.uri_mut() = origin_form;
            raw::within(timeout, async {
                let mut sender = sender.lock().await;
                let exchange = |e: hyper::Error| ClientError::Exchange(crate::error::chain(&e));
                sender.ready().await.map_err(exchange)?;
                let resp = sender.send_request(req).await.map_err(exchange)?;
                drop(sender);
                raw::read(resp, limit).await
            })
            .await
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("authority", &self.authority)
            .field("protocol", &self.protocol)
            .field(
                "keying_material",
                &self.keying_material.as_ref().map(|_| "<exported>"),
            )
            .finish_non_exhaustive()
    }
}
