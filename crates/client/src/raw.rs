//! An HTTP answer as it arrived, and the one place where an answer is read: the status line
//! and headers come from hyper, the body (`Content-Length`, chunked, or up to the end of an
//! HTTP/1.0 connection) is collected up to a size limit, and the whole exchange is bounded
//! by a timeout. Request primitives ([`crate::Client::send`]), the security manager's
//! operations and plain JSON exchanges all come through here.

use crate::error::ClientError;
use bytes::Bytes;
use http::header::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use model::codec::Format;
use model::Response;
use std::fmt;
use std::future::Future;
use std::time::Duration;
use zeroize::Zeroizing;

/// An HTTP answer before any oneM2M reading: status, headers and the whole body.
///
/// `Debug` shows the body's length only: some answers carry keys (a Zn answer, a
/// fetchCredentials answer).
pub struct RawResponse {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl RawResponse {
    /// The HTTP status (any: a non-2xx answer is an answer, not an error).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The value of header `name`, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `X-M2M-RSC`, when present and a number: the oneM2M status of an answer from a CSE.
    pub fn rsc(&self) -> Option<u16> {
        self.header("x-m2m-rsc")?.trim().parse().ok()
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, copied into a buffer that is wiped when dropped, for an answer that carries
    /// a key.
    ///
    /// NOTE(zeroize): hyper's own read buffers are not wiped; the copy keeps the key's
    /// lifetime in this process as short as the caller's use of it.
    pub fn into_secret_body(self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.body.to_vec())
    }

    /// The answer read as a oneM2M response primitive (TS-0009): `X-M2M-RSC`, `X-M2M-RI`
    /// (`rqi` when absent), `Content-Location`, `X-M2M-OT`, and the content decoded in the
    /// serialization its `Content-Type` names (`asked` when it names none).
    pub fn primitive(&self, asked: Format, rqi: &str) -> Result<Response, ClientError> {
        crate::client::parse_response(self.status, &self.headers, &self.body, asked, rqi)
    }
}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("rsc", &self.rsc())
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Reads the body of `resp`, refusing one over `limit` bytes.
pub(crate) async fn read<B>(
    resp: http::Response<B>,
    limit: usize,
) -> Result<RawResponse, ClientError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = resp.into_parts();
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| match e.downcast_ref::<LengthLimitError>() {
            Some(_) => ClientError::BodyTooLarge { limit },
            None => ClientError::Body(crate::error::chain(&*e)),
        })?
        .to_bytes();
    Ok(RawResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// `exchange`, or [`ClientError::Timeout`] when it has not completed within `timeout`.
pub(crate) async fn within<T>(
    timeout: Duration,
    exchange: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}
