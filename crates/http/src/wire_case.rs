//! Header-name capitalisation on the wire.
//!
//! HTTP header names are case-insensitive (TS-0009 clause 5.1), but some oneM2M clients in
//! the field compare them case-sensitively against the spec's spelling (`X-M2M-RSC`).
//! hyper stores names in lower case and offers two ways out:
//!
//! * `title_case_headers`, which would send `X-M2m-Rsc`: right for `Content-Type`, wrong
//!   for every oneM2M header;
//! * `preserve_header_case`, which records the spelling of request headers in a private
//!   request extension and writes a response's headers with the spelling found in the
//!   response's extensions.
//!
//! The extension type is private, so we obtain one the supported way: once per listener,
//! hyper parses a synthetic request whose headers are spelled as the spec spells them, over
//! an in-memory pipe, and we keep that request's extensions. Each response then carries a
//! clone of them, and hyper writes our headers in that spelling. Headers not in the template
//! (such as `Date`) fall back to title case.

use bytes::Bytes;
use http::Extensions;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every response header name the binding sends, spelled as on the wire.
const SPELLINGS: &[&str] = &[
    "X-M2M-RSC",
    "X-M2M-RI",
    "X-M2M-RVI",
    "X-M2M-OT",
    "X-M2M-CTS",
    "X-M2M-CTO",
    "Content-Location",
    "Content-Type",
    "Content-Length",
];

/// Extensions that make hyper write the binding's header names as spelled in [`SPELLINGS`].
///
/// Falls back to empty extensions (so title case) if the synthetic parse fails, which
/// would be a hyper regression; the tests on the raw wire bytes catch that.
pub(crate) async fn template() -> Extensions {
    let (mut ours, theirs) = tokio::io::duplex(4096);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Extensions>(1);
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let _ = tx.try_send(req.into_parts().0.extensions);
        async { Ok::<_, Infallible>(hyper::Response::new(Empty::<Bytes>::new())) }
    });
    let conn = http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(theirs), service);
    let mut head = String::from("GET / HTTP/1.1\r\nHost: template\r\nConnection: close\r\n");
    for name in SPELLINGS.iter().filter(|n| **n != "Content-Length") {
        head.push_str(name);
        head.push_str(": x\r\n");
    }
    head.push_str("Content-Length: 0\r\n\r\n");
    let client = async move {
        ours.write_all(head.as_bytes()).await?;
        let mut sink = Vec::new();
        ours.read_to_end(&mut sink).await
    };
    let (served, sent) = tokio::join!(conn, client);
    if let Err(e) = served
        .map_err(|e| e.to_string())
        .and(sent.map_err(|e| e.to_string()))
    {
        tracing::warn!(error = %e, "could not build the header spelling template; headers go out in title case");
    }
    rx.try_recv().unwrap_or_default()
}
