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
#![forbid(unsafe_code)]

mod client;
mod connector;
mod encode;
mod error;
mod header_case;
mod psk;
mod tls;

pub use client::Client;
pub use encode::{encode_filter, encode_query, path_for};
pub use error::{ClientError, TlsError};
pub use psk::Psk;
pub use tls::TlsOptions;
pub use zeroize::Zeroizing;
