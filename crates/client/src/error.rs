//! Why a request got no response primitive. A oneM2M error status (4xxx, 5xxx) is not one
//! of these: it is a normal [`model::Response`].

use std::path::PathBuf;
use std::time::Duration;

/// A request that produced no response primitive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://host[:port][/path]` (or `https://...` for a client with TLS
    /// options). Fix the configuration or argument.
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
    /// The TLS options cannot be used (unreadable or malformed files, a bad PSK, options
    /// that contradict each other). Nothing was sent; fix the options.
    #[error("{0}")]
    Tls(TlsError),
    /// The admin command is not one path segment of letters, digits, `-` and `_`.
    #[error("invalid admin command '{0}'")]
    InvalidAdminCommand(String),
    /// Connecting, sending or receiving failed; the peer may be down. Retrying may help.
    /// A failed TLS handshake (untrusted or misnamed server certificate, wrong PSK, no
    /// common cipher suite, client certificate refused) is also reported here, with
    /// OpenSSL's reason in the message.
    ///
    /// The message includes hyper's whole cause chain, so the error is not also returned
    /// as `source()` (reports would print every cause twice).
    #[error("transport error: {}", chain(.0))]
    Transport(hyper_util::client::legacy::Error),
    /// The response body could not be read (the connection broke, or the body was cut
    /// short). Retrying may help.
    #[error("could not read the response body: {0}")]
    Body(String),
    /// The response body is larger than the client accepts
    /// ([`crate::Client::with_max_body_bytes`]); it was not read further.
    #[error("the response body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The largest body accepted, in bytes.
        limit: usize,
    },
    /// A [`crate::Connection`] could not be opened: no TCP connection to the server (refused,
    /// unreachable, no address, or no connection within the timeout).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A [`crate::Connection`] could not be opened: the server refused the TLS handshake, or
    /// the client refused the server; the message gives OpenSSL's reason.
    #[error("{0}")]
    Handshake(String),
    /// Sending a request or reading its answer on a [`crate::Connection`] failed (the server
    /// closed the connection, or it broke); the message includes the cause.
    #[error("the exchange failed: {0}")]
    Exchange(String),
    /// [`crate::Blocking`] could not run the request: its thread could not be started, or
    /// the request was lost (the thread ended). Nothing was received.
    #[error("the client's own thread could not run the request: {0}")]
    Runtime(String),
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

impl From<TlsError> for ClientError {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

/// Why [`crate::TlsOptions`] cannot make a TLS configuration. Messages include their
/// cause, so (like [`ClientError::Transport`]) there is no separate `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read. Check the path and its permissions.
    #[error("cannot read {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// A file holding a private key or PSK may be read or changed by other users. Make it
    /// private to its owner (`chmod 600`).
    #[error(
        "{} is accessible by group or others (mode {mode:04o}): a key file must be private to its owner; run chmod 600 {}",
        .path.display(),
        .path.display()
    )]
    KeyFileNotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// PEM content could not be parsed, or holds no certificate where one is needed.
    #[error("{what} in {origin}: {reason}")]
    Pem {
        /// What was being loaded ("trust anchor", "client certificate", ...).
        what: &'static str,
        /// The file name, or "inline PEM".
        origin: String,
        /// OpenSSL's reason, or what was missing.
        reason: String,
    },
    /// The client private key does not belong to the client certificate.
    #[error("the client private key does not match the client certificate: {0}")]
    KeyMismatch(openssl::error::ErrorStack),
    /// The PSK identity or key is unusable; the message says why.
    #[error("invalid PSK: {0}")]
    InvalidPsk(&'static str),
    /// The server name for SNI and hostname verification is not a host name or IP address.
    #[error("invalid server name '{0}'")]
    InvalidServerName(String),
    /// Without a PSK the server must prove itself with a certificate, which needs at least
    /// one trust anchor.
    #[error("no trust anchors to verify the server certificate (and no PSK)")]
    NoTrustAnchors,
    /// The options mix the two security association frameworks; the message says how.
    #[error("{0}")]
    Conflict(&'static str),
    /// OpenSSL refused a setting, for example because it was built without PSK support.
    #[error("OpenSSL refused the TLS configuration: {0}")]
    Setup(openssl::error::ErrorStack),
}

impl From<openssl::error::ErrorStack> for TlsError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        Self::Setup(e)
    }
}

/// The error and its sources on one line: hyper's top-level messages ("client error
/// (Connect)") say little without the cause.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
