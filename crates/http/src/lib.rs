//! The oneM2M HTTP binding (TS-0009 v3.9.1): turns HTTP/1.1 requests into the CSE's
//! inbound requests ([`cse::Inbound`]: a request primitive, or a request to a
//! security-manager operation named by its path), hands them to a [`Handler`] (the CSE), and
//! turns the answer back into an HTTP response. Conversion only: which paths are the
//! security manager's and what they answer is decided in `cse::inbound`.
//!
//! ```no_run
//! # async fn run(cse: std::sync::Arc<cse::Cse>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! http_binding::serve(listener, cse, http_binding::HttpLimits::default(), "http".to_owned(), shutdown).await
//! # }
//! ```
//!
//! How the binding is laid out, one job per module:
//!
//! * `request`: method, path, headers and query to a [`model::Request`] (pure functions);
//! * `media`: `Content-Type` (format and `ty=`) and `Accept` negotiation;
//! * `response`: a [`model::Response`] to HTTP status, `X-M2M-*` headers and body;
//! * `status`: the one table from response status code to HTTP status;
//! * `wire_case`: makes the `X-M2M-*` header names leave in the spec's capitalisation;
//! * `server`: the accept loop, connection settings, size limits, graceful shutdown, and
//!   the conversion of one request to an inbound request and of the answer back;
//! * `lobby`: connections that have sent no request yet, closed oldest first to make room;
//! * `parse_error`: the binding's answer (with `X-M2M-RSC`) to a head hyper cannot parse;
//! * `chunk_watch`: follows request framing to refuse a chunked body by its declared sizes;
//! * [`outbound`]: the client side, the CSE's door out for `http://` and `https://` targets.
//!
//! Every failure in the binding itself (a missing `X-M2M-RI`, a bad query, a body over the
//! limit) is answered with a response that carries `X-M2M-RSC` and an `m2m:dbg` message:
//! a request is never dropped without an answer, and client mistakes are never a 5000.
#![forbid(unsafe_code)]

mod chunk_watch;
mod handler;
mod headers;
mod limits;
mod lobby;
mod mapping;
mod media;
pub mod outbound;
mod parse_error;
mod request;
mod response;
mod server;
mod status;
mod transport;
mod wire_case;

pub use chunk_watch::{follow as follow_chunked_framing, Followed};
pub use handler::Handler;
pub use limits::HttpLimits;
pub use mapping::primitive_from_http;
pub use server::{serve, serve_with};
pub use status::http_status;
pub use transport::{Plaintext, Tls, Transport};
