//! A small oneM2M HTTP client (TS-0009, originator side): sends a [`model::Request`] as an
//! HTTP/1.1 request over a pooled keep-alive connection and reads the answer back into a
//! [`model::Response`].
//!
//! It is used by the `m2m` CLI, the integration tests, the benchmark and the CSE's
//! notification sender, so it maps primitives exactly as the `http-binding` server expects.
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
//! Only plain `http://` is supported; TLS arrives with the secure listeners.
#![forbid(unsafe_code)]

mod client;
mod encode;
mod error;

pub use client::Client;
pub use encode::{encode_filter, encode_query, path_for};
pub use error::ClientError;
