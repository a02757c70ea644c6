//! A small oneM2M HTTP client (TS-0009, originator side): sends a [`model::Request`] as an
//! HTTP/1.1 request over a pooled keep-alive connection and reads the answer back into a
//! [`model::Response`].
//!
//! It is used by the `m2m` CLI, the integration tests, the benchmark and the HTTP binding's
//! client side (what the CSE sends), so it maps primitives exactly as the `http-binding`
//! server expects.
//!
//! ```no_run
//! # async fn run() -> Result<(), client::ClientError> {
//! use model::{Operation, Request};
//! let client = client::Client::new("http://127.0.0.1:8080")?;
//! let resp = client.send(&Request::new(Operation::Retrieve, "cse-in", Some("CAdmin".into()))).await?;
//! println!("{}", resp.rsc);
//! # Ok(()) }
//! ```
//!
//! `https://` needs [`Client::with_tls`] and [`TlsOptions`], which choose one of the two
//! security association frameworks of TS-0003 clause 8.2: a pre-shared key ([`Psk`]), or
//! certificates (trust anchors for the server, optionally a client certificate). TLS runs
//! on OpenSSL, the stack with external-PSK support for both TLS 1.2 and TLS 1.3.
//!
//! It is also the project's one HTTP/1.1 client for exchanges that are not request
//! primitives: [`Client::request`] sends any HTTP request and returns the answer as
//! received ([`RawResponse`]: any status, the body read whole, chunked or not, up to the
//! client's limit, within its timeout); [`Client::manager_request`] builds a request to a
//! security-manager operation (`/.mef/enrol`, `/.admin/...`); [`Client::connect`] opens one
//! [`Connection`] outside the pool, whose TLS session can export keying material
//! (RFC 5705) for an enrolment; [`Blocking`] runs the client for callers that cannot
//! `.await` (the CSE's Zn query inside a TLS handshake, `m2m` commands).
#![forbid(unsafe_code)]

mod blocking;
mod client;
mod connection;
mod connector;
mod encode;
mod error;
mod header_case;
mod psk;
mod raw;
mod tls;

pub use blocking::Blocking;
pub use client::Client;
pub use connection::{Connection, Exporter};
pub use encode::{encode_filter, encode_query, path_for};
pub use error::{ClientError, TlsError};
pub use psk::Psk;
pub use raw::RawResponse;
pub use tls::{TlsOptions, TlsProtocol};
pub use zeroize::Zeroizing;
