//! Resource limits of the HTTP listener. Every limit bounds what one client can make the
//! CSE hold in memory or wait for, so none of them is "unlimited".

use std::time::Duration;

/// Limits applied to every connection and request of one HTTP listener.
///
/// `#[non_exhaustive]` so that new limits can be added without breaking callers: start from
/// [`HttpLimits::default`] and change the fields you need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Largest accepted request body, in bytes. Larger bodies are answered with HTTP 413 and
    /// `X-M2M-RSC: 4000` before they are read in full. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers), in bytes; hyper answers 431 and
    /// closes the connection above it. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Most header fields in one request (431 above it). Default 64.
    pub max_headers: usize,
    /// Time a client has to send a complete request head. The clock starts as soon as the
    /// connection is ready for a request, so this is also how long a kept-alive connection
    /// may sit idle between requests. Default 10 s.
    pub header_read_timeout: Duration,
    /// Time a client has to send a complete request body. Default 30 s.
    pub body_read_timeout: Duration,
    /// Most connections open at once (sockets). When they are all open, the oldest
    /// connection that has not sent a request yet (for TLS: whose handshake has not led to
    /// a request) is closed to make room, so idle sockets never keep a client out; only
    /// when every connection is serving a request do new clients wait in the kernel's
    /// accept queue. Bounded by the process's file-descriptor limit. Default 8192.
    pub max_connections: usize,
    /// Most requests read and handled at once, all connections together: bounds the memory
    /// of request bodies and the work in progress. Further requests wait for a place.
    /// Default 1024.
    pub max_requests: usize,
    /// On shutdown, how long in-flight requests may take before their connections are
    /// dropped. Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 8192,
            max_requests: 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}
