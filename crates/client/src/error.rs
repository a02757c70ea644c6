//! Why a request got no response primitive. A oneM2M error status (4xxx, 5xxx) is not one
//! of these: it is a normal [`model::Response`].

use std::time::Duration;

/// A request that produced no response primitive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://host[:port][/path]`. Fix the configuration or argument.
    #[error("invalid URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A request parameter cannot travel in an HTTP header (control or non-ASCII
    /// characters). The named parameter must be changed.
    #[error("request parameter '{0}' cannot be sent as an HTTP header value")]
    InvalidHeader(&'static str),
    /// Connecting, sending or receiving failed; the peer may be down. Retrying may help.
    ///
    /// The message includes hyper's whole cause chain, so the error is not also returned
    /// as `source()` (reports would print every cause twice).
    #[error("transport error: {}", chain(.0))]
    Transport(hyper_util::client::legacy::Error),
    /// The response body could not be read or was larger than the client accepts.
    #[error("could not read the response body: {0}")]
    Body(String),
    /// No complete response arrived within the timeout. The request may still have been
    /// carried out by the receiver.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The response has no `X-M2M-RSC`: the peer is not a oneM2M HTTP endpoint. The HTTP
    /// status is kept so that, for example, a notification sender may accept a plain 2xx.
    #[error("response without X-M2M-RSC (HTTP {status})")]
    MissingRsc {
        /// The HTTP status of the response.
        status: u16,
    },
    /// The `X-M2M-RSC` value is not a status code this implementation knows.
    #[error("unknown response status code '{0}'")]
    UnknownRsc(String),
    /// The response content could not be decoded (bad JSON/CBOR or unsupported
    /// `Content-Type`).
    #[error("undecodable response content: {0}")]
    Content(model::Error),
}

impl From<hyper_util::client::legacy::Error> for ClientError {
    fn from(e: hyper_util::client::legacy::Error) -> Self {
        Self::Transport(e)
    }
}

/// The error and its sources on one line: hyper's top-level messages ("client error
/// (Connect)") say little without the cause.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
