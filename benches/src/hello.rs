//! The baseline server: hyper 1, HTTP/1.1, one answer for every request.
//!
//! It is set up the way the CSE's HTTP binding is (multi-threaded tokio runtime with the
//! default number of workers, `TCP_NODELAY`, keep-alive, one task per connection), so the
//! difference between the two is the CSE's own work per request.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

/// The body of every answer.
const HELLO: &[u8] = b"Hello, World!";

/// Serves until the process is killed. Prints `listening on http://ADDR` once it accepts.
pub(crate) fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(accept_loop(listen))
}

async fn accept_loop(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{local}")?;
    out.flush()?;
    drop(out);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("hello: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Best effort, as in the CSE: a socket without it still works.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_req: hyper::Request<Incoming>| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(HELLO))))
            });
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).keep_alive(true);
            // A client that goes away mid-request is not the server's problem.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
