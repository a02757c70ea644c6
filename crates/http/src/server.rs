//! The listener: accepts connections, serves HTTP/1.1 with keep-alive on each, and runs one
//! request through read, map, handle and answer.

use crate::chunk_watch::{ChunkWatch, Oversized};
use crate::handler::Handler;
use crate::headers;
use crate::limits::HttpLimits;
use crate::lobby::{Lobby, Ticket};
use crate::media;
use crate::parse_error::Answering;
use crate::request;
use crate::response::{self, Echo};
use crate::transport::{Plaintext, Transport};
use crate::wire_case;
use bytes::Bytes;
use cse::inbound::{Answer, Door, Inbound, ManagerRequest, Verb};
use cse::waiting::Waiting;
use cse::SecurityContext;
use futures_util::FutureExt;
use http::header::CONTENT_LENGTH;
use http::{Extensions, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use model::{Error, Response};
use security::privacy;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Serves the oneM2M HTTP binding on `listener` until `shutdown` completes.
///
/// Each request becomes a [`cse::Inbound`] with the security context
/// [`SecurityContext::plaintext`]`(listener_name, peer)`, and is handed to `handler` (the
/// [`cse::Cse`] in production). On shutdown the listener stops accepting, in-flight
/// requests get [`HttpLimits::shutdown_grace`] to finish, and then the function returns.
///
/// Accept errors (such as running out of file descriptors) are logged and retried after a
/// short pause rather than ending the listener; the `io::Result` is kept for errors that
/// future transports (TLS configuration) can hit before serving.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: HttpLimits,
    listener_name: String,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let transport = Plaintext {
        listener: listener_name,
    };
    serve_with(listener, handler, limits, transport, shutdown).await
}

/// Serves the binding on `listener`, securing each accepted connection with `transport`
/// (plain TCP, or TLS with the association bound to every request of the connection).
pub async fn serve_with<H: Handler, T: Transport>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: HttpLimits,
    transport: T,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let transport = Arc::new(transport);
    let shared = Arc::new(Shared {
        handler,
        limits,
        listener: transport.name().to_owned(),
        case: wire_case::template().await,
    });
    let builder = connection_builder(&limits);
    let graceful = GracefulShutdown::new();
    // Clamped: `Semaphore::new` panics above `MAX_PERMITS`, and 0 would serve nobody.
    let connections = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let requests = Arc::new(Semaphore::new(
        limits.max_requests.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let lobby = Arc::new(Lobby::default());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(listener = %shared.listener, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A place for the connection. When every place is taken, the oldest connection that
        // has sent no request yet makes room; only when all of them are serving requests does
        // the new one wait (and the kernel's accept queue with it).
        let permit = match connections.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if lobby.evict_oldest() {
                    tracing::debug!(listener = %shared.listener, "connection limit reached: the oldest connection without a request was closed");
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    permit = connections.clone().acquire_owned() => match permit {
                        Ok(p) => p,
                        Err(_) => break, // The semaphore is never closed; treat it as shutdown.
                    },
                }
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(peer = %privacy::peer_tag(Some(peer)), error = %e, "could not set TCP_NODELAY");
        }
        let (ticket, evicted) = lobby.enter();
        let connection = Connection {
            shared: shared.clone(),
            requests: requests.clone(),
            ticket: Arc::new(ticket),
        };
        let transport = transport.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        // The handshake (if any) runs on the connection's own task, never in the accept loop.
        tokio::spawn(async move {
            tokio::select! {
                () = connection.run(transport, stream, peer, builder, watcher) => {}
                () = evicted.chosen() => {
                    tracing::debug!(peer = %privacy::peer_tag(Some(peer)), "connection without a request closed to make room");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(listener = %shared.listener, "connections still open after the shutdown grace period");
    }
    Ok(())
}

/// One accepted connection.
struct Connection<H> {
    shared: Arc<Shared<H>>,
    requests: Arc<Semaphore>,
    ticket: Arc<Ticket>,
}

impl<H: Handler> Connection<H> {
    /// Secures the connection and serves its requests until it ends or its association is
    /// withdrawn.
    async fn run<T: Transport>(
        self,
        transport: Arc<T>,
        stream: TcpStream,
        peer: SocketAddr,
        builder: http1::Builder,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let Some((io, ctx)) = transport.secure(stream, peer).await else {
            return;
        };
        let limits = &self.shared.limits;
        let (io, oversized) = ChunkWatch::new(
            io,
            limits.max_body_bytes,
            limits.max_header_bytes.saturating_mul(HARD_LIMIT_FACTOR),
        );
        let requests_seen = AtomicU64::new(0);
        let association = ctx.shared_association();
        let Connection {
            shared,
            requests,
            ticket,
        } = self;
        let service = service_fn(move |mut req: hyper::Request<Incoming>| {
            let request = requests_seen.fetch_add(1, Ordering::Relaxed) + 1;
            req.extensions_mut().insert(DeclaredBody {
                oversized: oversized.clone(),
                request,
            });
            let shared = shared.clone();
            let ctx = ctx.clone();
            let requests = requests.clone();
            // A request head arrived: the connection is no longer idle. One evicted a moment
            // before must not start anything: it is being closed.
            let evicted = !ticket.leave();
            async move {
                if evicted {
                    std::future::pending::<()>().await;
                }
                // The semaphore is never closed; without a permit the request still runs.
                let permit = requests.acquire_owned().await.ok();
                // NOTE(memory): hyper keeps one slot for this future per connection, for the
                // connection's whole life, sized and written at its full size by the first
                // request. Inline, the whole request pipeline made that slot about 16 KiB,
                // held by every idle kept-alive connection; boxed, the pipeline's memory
                // lives only while a request is in progress (issue 13, docs/benchmarks.md).
                let answered = Box::pin(answer(&shared, ctx, req)).await;
                // A long poll that waits gives its place back: it holds no body and does
                // no work while it waits (`cse::waiting`).
                drop(permit);
                let mut resp = match answered {
                    Answered::Now(resp) => resp,
                    Answered::Waiting(waiting, echo) => wait(waiting, echo).await,
                };
                *resp.extensions_mut() = shared.case.clone();
                Ok::<_, Infallible>(resp)
            }
        });
        let io = TokioIo::new(Answering::new(io, Some(peer)));
        let conn = watcher.watch(builder.serve_connection(io, service));
        let withdrawn = async {
            match &association {
                Some(sa) => sa.closed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = conn => if let Err(e) = ended {
                tracing::debug!(peer = %privacy::peer_tag(Some(peer)), error = %e, "connection ended with an error");
            },
            () = withdrawn => {
                // Dropping the connection closes the socket; a request in flight gets
                // no answer, which is what a withdrawn credential deserves.
                if let Some(sa) = &association {
                    tracing::info!(sa = sa.id, reason = sa.closed_because().unwrap_or_default(), "security association withdrawn: connection closed");
                }
            }
        }
    }
}

/// What every request on this listener needs.
struct Shared<H> {
    handler: Arc<H>,
    limits: HttpLimits,
    listener: String,
    case: Extensions,
}

fn connection_builder(limits: &HttpLimits) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .keep_alive(true)
        // A client may shut down its sending side once its request is out (`shutdown(SHUT_WR)`,
        // `curl --no-keepalive` through some proxies): it still gets the answer, which for a
        // create says whether its write was committed.
        .half_close(true)
        .title_case_headers(true)
        // hyper's own limits are a last-resort backstop (beyond them it answers 431 itself,
        // and `parse_error` adds X-M2M-RSC: 4000); the configured limits are enforced in
        // `answer`, which can also echo X-M2M-RI.
        .max_headers(limits.max_headers.saturating_mul(HARD_LIMIT_FACTOR))
        .max_header_size(limits.max_header_bytes.saturating_mul(HARD_LIMIT_FACTOR))
        .header_read_timeout(limits.header_read_timeout);
    b
}

type HttpResponse = http::Response<Full<Bytes>>;

/// How far above the configured header limits hyper itself stops reading a request head.
const HARD_LIMIT_FACTOR: usize = 4;

/// Refuses a request head over the configured limits with 431 and `X-M2M-RSC: 4000`.
fn check_head(parts: &http::request::Parts, limits: &HttpLimits) -> Result<(), Rejection> {
    let count = parts.headers.len();
    let bytes: usize = parts.uri.to_string().len()
        + parts
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if count > limits.max_headers || bytes > limits.max_header_bytes {
        return Err(Rejection {
            error: Error::bad_request(format!(
                "request head of {count} fields and {bytes} bytes exceeds the limits ({} fields, {} bytes)",
                limits.max_headers, limits.max_header_bytes
            )),
            status: Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        });
    }
    Ok(())
}

/// What [`answer`] made of a request.
enum Answered {
    /// The HTTP response.
    Now(HttpResponse),
    /// A long poll that passed every check and now waits, with what its HTTP response
    /// needs of the request; everything else of the request is gone.
    Waiting(Waiting, Echo),
}

/// Waits for a long poll's answer; a panic in the wait becomes a 5000 answer.
async fn wait(waiting: Waiting, echo: Echo) -> HttpResponse {
    let resp = AssertUnwindSafe(waiting.answer())
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("long poll failed: panicked");
            let rqi = echo.rqi.clone().unwrap_or_default();
            Response::error(&Error::internal("internal error"), rqi)
        });
    response::to_http(&resp, &echo, None)
}

/// Runs one HTTP request through the binding: converts it to an [`Inbound`] request, hands
/// it to the handler, and converts the answer back. Cannot fail: every error is a response.
async fn answer<H: Handler>(
    shared: &Shared<H>,
    ctx: SecurityContext,
    req: hyper::Request<Incoming>,
) -> Answered {
    let peer = ctx.peer;
    let (parts, body) = req.into_parts();
    let rqi = headers::request_id(&parts.headers);
    let accept = media::negotiate(&parts.headers);
    let echo = Echo {
        rqi: rqi.as_ref().ok().cloned(),
        rvi: headers::single(&parts.headers, &headers::RVI)
            .ok()
            .flatten()
            .map(str::to_owned),
        format: accept.as_ref().map_or(model::codec::Format::Json, |f| *f),
    };
    // A security-manager operation is not a primitive; without the request ID it needs,
    // the request is read as a primitive and refused as one.
    let inbound = match Door::addressed(parts.uri.path()) {
        Some(door) if !door.needs_request_id() || rqi.is_ok() => {
            let rqi = rqi.unwrap_or_default();
            manager_request(&parts, body, &shared.limits, rqi)
                .await
                .map(Inbound::Manager)
        }
        _ => primitive(&parts, body, &shared.limits, rqi, accept)
            .await
            .map(Inbound::Primitive),
    };
    Answered::Now(match inbound {
        Ok(inbound) => match run_handler(shared.handler.clone(), ctx, inbound).await {
            Answer::Response(resp) => response::to_http(&resp, &echo, None),
            Answer::Document { media_type, bytes } => {
                let mut resp = http::Response::new(Full::new(Bytes::from(bytes)));
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(media_type),
                );
                resp
            }
            Answer::Waiting(waiting) => return Answered::Waiting(waiting, echo),
        },
        Err(rejection) => {
            tracing::debug!(peer = %privacy::peer_tag(peer), listener = %shared.listener, rsc = %rejection.error.rsc, reason = %model::Untrusted(&rejection.error.message), "request rejected by the HTTP binding");
            let resp = Response::error(&rejection.error, echo.rqi.clone().unwrap_or_default());
            response::to_http(&resp, &echo, rejection.status)
        }
    })
}

/// An HTTP request to a oneM2M resource as a request primitive.
async fn primitive(
    parts: &http::request::Parts,
    body: Incoming,
    limits: &HttpLimits,
    rqi: model::Result<String>,
    accept: model::Result<model::codec::Format>,
) -> Result<model::Request, Rejection> {
    check_head(parts, limits)?;
    let (mut primitive, format) = crate::mapping::head(parts, rqi, accept)?;
    let bytes = read_body(parts, body, limits).await?;
    primitive.pc = request::content(&bytes, format)?;
    Ok(primitive)
}

/// An HTTP request to a security-manager operation: method, path and query as received,
/// `X-M2M-Origin`, and the body read within the limits. What the operation makes of them
/// is the CSE's business ([`cse::inbound`]).
async fn manager_request(
    parts: &http::request::Parts,
    body: Incoming,
    limits: &HttpLimits,
    rqi: String,
) -> Result<ManagerRequest, Rejection> {
    check_head(parts, limits)?;
    let verb = match parts.method {
        http::Method::GET => Verb::Retrieve,
        http::Method::POST => Verb::Change,
        http::Method::DELETE => Verb::Delete,
        _ => Verb::Other,
    };
    let fr = headers::single(&parts.headers, &headers::ORIGIN)
        .ok()
        .flatten()
        .map(str::to_owned);
    let body = read_body(parts, body, limits).await?;
    Ok(ManagerRequest {
        verb,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        fr,
        rqi,
        body: body.to_vec(),
    })
}

/// Runs the handler; a panic in it becomes a 5000 answer instead of a dropped connection.
///
/// Requests that change something run on their own task, so that a client that
/// disconnects cannot cancel one between two of its steps (after its write, before its
/// notifications; between an audit record and a stored key). A read changes nothing, so it
/// runs on the connection's task and saves the hand-over to another worker thread.
async fn run_handler<H: Handler>(
    handler: Arc<H>,
    ctx: SecurityContext,
    inbound: Inbound,
) -> Answer {
    let rqi = inbound.rqi().to_owned();
    let outcome = if inbound.only_reads() {
        AssertUnwindSafe(handler.serve(ctx, inbound))
            .catch_unwind()
            .await
            .map_err(|_| "panicked".to_owned())
    } else {
        tokio::spawn(async move { handler.serve(ctx, inbound).await })
            .await
            .map_err(|e| e.to_string())
    };
    outcome.unwrap_or_else(|e| {
        tracing::error!(error = %model::Untrusted(&e), "request handler failed");
        Answer::Response(Response::error(&Error::internal("internal error"), rqi))
    })
}

/// A request refused by the binding: the error to answer with, and an HTTP status when
/// the table's is less precise.
struct Rejection {
    error: Error,
    status: Option<StatusCode>,
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Self {
            error,
            status: None,
        }
    }
}

impl Rejection {
    fn too_large(limit: usize) -> Self {
        Self {
            error: Error::bad_request(format!("request body larger than {limit} bytes")),
            status: Some(StatusCode::PAYLOAD_TOO_LARGE),
        }
    }
}

/// Which request of its connection a request is, for [`Oversized`] (an extension of every
/// request).
#[derive(Debug, Clone)]
struct DeclaredBody {
    oversized: Arc<Oversized>,
    request: u64,
}

/// Reads the body, never holding more than the limit: a declared `Content-Length` over the
/// limit is refused before reading, a chunked body as soon as its declared chunk sizes add up
/// to more than the limit (`chunk_watch`), and any body is cut off at the limit.
async fn read_body(
    parts: &http::request::Parts,
    body: Incoming,
    limits: &HttpLimits,
) -> Result<Bytes, Rejection> {
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(Rejection::too_large(limits.max_body_bytes));
    }
    let chunks_too_large = async {
        match parts.extensions.get::<DeclaredBody>() {
            Some(d) => d.oversized.declared(d.request).await,
            None => std::future::pending().await,
        }
    };
    let collect = Limited::new(body, limits.max_body_bytes).collect();
    let collected = tokio::select! {
        collected = tokio::time::timeout(limits.body_read_timeout, collect) => collected,
        () = chunks_too_large => return Err(Rejection::too_large(limits.max_body_bytes)),
    };
    match collected {
        Err(_) => Err(Error::bad_request("request body not received in time").into()),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(Rejection::too_large(limits.max_body_bytes))
        }
        Ok(Err(e)) => {
            Err(Error::bad_request(format!("could not read the request body: {e}")).into())
        }
    }
}
