//! Shared test fixtures: a fake handler that records the primitives it receives, a server on
//! `127.0.0.1:0`, and a raw HTTP/1.1 exchange over a `TcpStream` for wire-level checks.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use cse::{Answer, Inbound, SecurityContext};
use http_binding::{serve, Handler, HttpLimits};
use model::{Request, Response, ResponseStatusCode};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Records every primitive and answers by target:
/// `created` -> 2001 with a location, `panic` -> panics, `slow` -> waits 300 ms then 2000,
/// `held` -> waits for `release` then 2000, anything else -> 2000 with the request's content
/// echoed back.
#[derive(Debug, Default)]
pub struct Fake {
    pub seen: Mutex<Vec<(SecurityContext, Request)>>,
    pub release: tokio::sync::Notify,
}

impl Fake {
    pub fn last(&self) -> (SecurityContext, Request) {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the handler saw a request")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Handler for Fake {
    async fn serve(&self, ctx: SecurityContext, inbound: Inbound) -> Answer {
        match inbound {
            Inbound::Primitive(req) => Answer::Response(self.handle(ctx, req).await),
            Inbound::Manager(req) => Answer::Response(Response::error(
                &model::Error::not_found("no security manager"),
                req.rqi,
            )),
        }
    }
}

impl Fake {
    async fn handle(&self, ctx: SecurityContext, req: Request) -> Response {
        self.seen.lock().unwrap().push((ctx, req.clone()));
        match req.to.as_str() {
            "created" => {
                let mut r = Response::new(
                    ResponseStatusCode::Created,
                    req.rqi,
                    Some(json!({"m2m:cnt": {"rn": "c"}})),
                );
                r.location = Some("cse-in/ae1/c".to_owned());
                r
            }
            "panic" => panic!("handler panicked on purpose"),
            "held" => {
                self.release.notified().await;
                Response::new(ResponseStatusCode::Ok, req.rqi, None)
            }
            "slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Response::new(ResponseStatusCode::Ok, req.rqi, None)
            }
            _ => Response::new(ResponseStatusCode::Ok, req.rqi, req.pc),
        }
    }
}

/// A running binding over the fake handler.
pub struct Server {
    pub addr: SocketAddr,
    pub fake: Arc<Fake>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start() -> Self {
        Self::with_limits(HttpLimits::default()).await
    }

    pub async fn with_limits(limits: HttpLimits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = Arc::new(Fake::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            fake.clone(),
            limits,
            "http-test".to_owned(),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            fake,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signals shutdown and waits for `serve` to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap(),
            None => Ok(()),
        }
    }
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
pub struct Raw {
    /// The status line and header lines exactly as sent, without the final blank line.
    pub head: String,
    pub status: u16,
    pub body: Vec<u8>,
}

impl Raw {
    /// A header's value, matching the name case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn rsc(&self) -> Option<u16> {
        self.header("x-m2m-rsc").and_then(|v| v.parse().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Writes `request` and reads one response (head plus `Content-Length` body).
pub async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Raw {
    stream.write_all(request).await.unwrap();
    read_response(stream).await
}

pub async fn read_response(stream: &mut TcpStream) -> Raw {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed before a full response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = buf[head_end + 4..].to_vec();
    let raw = Raw {
        head,
        status,
        body: Vec::new(),
    };
    let len: usize = raw
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    while body.len() < len {
        let mut chunk = vec![0u8; len - body.len()];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    Raw { body, ..raw }
}

/// Opens a connection, sends one request, reads one response.
pub async fn once(addr: SocketAddr, request: &str) -> Raw {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    exchange(&mut stream, request.as_bytes()).await
}

/// A GET with the mandatory headers, for tests that vary only the target.
pub fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: cse\r\nX-M2M-Origin: CAdmin\r\nX-M2M-RI: r1\r\n\r\n")
}

/// Waits (at most 10 s) until `condition` holds; panics otherwise.
pub async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
