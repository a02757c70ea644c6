//! How the client reads answers, against a little server in the test that writes each
//! answer byte for byte: chunked bodies, bodies up to the end of an HTTP/1.0 connection,
//! bodies over the limit (announced or chunked), bodies cut short, non-2xx statuses, a
//! server that never answers; through the pool, on one [`client::Connection`], and from a
//! blocking caller ([`client::Blocking`]). Every way of sending shares this one reader.

use client::{Blocking, Client, ClientError};
use http::Method;
use model::{Operation, Request};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server on `127.0.0.1:0` that reads each request (head and `Content-Length` body) and
/// writes `answer` (closing the connection afterwards when `close`), or never answers
/// when `answer` is `None`. Counts the connections it accepted.
struct Scripted {
    url: String,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    async fn start(answer: Option<Vec<u8>>, close: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut held = Vec::new();
                    while read_request(&mut tcp, &mut held).await {
                        let Some(answer) = &answer else {
                            // Hold the connection open without answering.
                            std::future::pending::<()>().await;
                            return;
                        };
                        if tcp.write_all(answer).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            url,
            accepted,
            task,
        }
    }

    /// A client for this server.
    fn client(&self) -> Client {
        Client::new(&self.url).expect("client")
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads one request off `tcp` (bytes beyond it stay in `held`); false at the end.
async fn read_request(tcp: &mut tokio::net::TcpStream, held: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = held.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&held[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if held.len() >= end + 4 + length {
                held.drain(..end + 4 + length);
                return true;
            }
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => held.extend_from_slice(&chunk[..n]),
        }
    }
}

fn get(client: &Client) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    client
        .http_request(Method::GET, "/x", None)
        .expect("request")
}

/// A chunked body of `parts`.
fn chunked(head: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("{head}\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    for part in parts {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn chunked_and_read_to_close_bodies_are_read_whole() {
    let server = Scripted::start(
        Some(chunked(
            "HTTP/1.1 200 OK\r\nX-M2M-RSC: 2000\r\nContent-Type: application/json",
            &[b"{\"m2m:cnt\"", b": {\"rn\": ", b"\"c\"}}"],
        )),
        false,
    )
    .await;
    let client = server.client();
    let answer = client.request(get(&client)).await.expect("answer");
    assert_eq!(answer.body(), b"{\"m2m:cnt\": {\"rn\": \"c\"}}");
    // The same bytes as a primitive.
    let resp = client
        .send(&Request::new(Operation::Retrieve, "cse-in/c", None))
        .await
        .expect("primitive");
    assert_eq!(resp.pc, Some(serde_json::json!({"m2m:cnt": {"rn": "c"}})));

    let server = Scripted::start(
        Some(b"HTTP/1.0 200 OK\r\n\r\n{\"until\": \"the end\"}".to_vec()),
        true,
    )
    .await;
    let client = server.client();
    let answer = client.request(get(&client)).await.expect("answer");
    assert_eq!(answer.body(), b"{\"until\": \"the end\"}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_announced_or_chunked() {
    let big = vec![b'a'; 200];
    let mut announced = b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n".to_vec();
    announced.extend_from_slice(&big);
    for answer in [
        announced,
        chunked("HTTP/1.1 200 OK", &[&big[..100], &big[100..]]),
    ] {
        let server = Scripted::start(Some(answer), false).await;
        let client = Client::new(&server.url)
            .expect("client")
            .with_max_body_bytes(150);
        let err = client.request(get(&client)).await.expect_err("too large");
        assert!(
            matches!(err, ClientError::BodyTooLarge { limit: 150 }),
            "{err}"
        );
        let fits = Client::new(&server.url)
            .expect("client")
            .with_max_body_bytes(200);
        assert_eq!(
            fits.request(get(&fits)).await.expect("fits").body().len(),
            200
        );
    }
}

#[tokio::test]
async fn a_body_cut_short_is_a_body_error() {
    let server = Scripted::start(
        Some(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this".to_vec()),
        true,
    )
    .await;
    let client = server.client();
    let err = client.request(get(&client)).await.expect_err("cut short");
    assert!(matches!(err, ClientError::Body(_)), "{err}");
}

#[tokio::test]
async fn non_2xx_answers_are_answers() {
    let server = Scripted::start(
        Some(b"HTTP/1.1 404 Not Found\r\nContent-Length: 15\r\n\r\n{\"error\": \"no\"}".to_vec()),
        false,
    )
    .await;
    let client = server.client();
    let answer = client.request(get(&client)).await.expect("an answer");
    assert_eq!((answer.status(), answer.rsc()), (404, None));
    assert_eq!(answer.body(), b"{\"error\": \"no\"}");
    // As a primitive, an answer without X-M2M-RSC keeps its HTTP status.
    let err = client
        .send(&Request::new(Operation::Retrieve, "cse-in", None))
        .await
        .expect_err("no primitive");
    assert!(
        matches!(err, ClientError::MissingRsc { status: 404 }),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_in_the_pool_and_on_a_connection() {
    let server = Scripted::start(None, false).await;
    let client = Client::new(&server.url)
        .expect("client")
        .with_timeout(Duration::from_millis(200));
    let err = client.request(get(&client)).await.expect_err("silent");
    assert!(matches!(err, ClientError::Timeout(_)), "{err}");
    let connection = client.connect(None).await.expect("connection");
    assert_eq!(connection.protocol(), None, "plain TCP");
    assert!(connection.keying_material().is_none());
    let err = connection.send(get(&client)).await.expect_err("silent");
    assert!(matches!(err, ClientError::Timeout(_)), "{err}");
}

#[tokio::test]
async fn a_connection_carries_every_request_on_one_tcp_connection() {
    let server = Scripted::start(
        Some(b"HTTP/1.1 201 Created\r\nX-M2M-RSC: 2001\r\nContent-Length: 2\r\n\r\n{}".to_vec()),
        false,
    )
    .await;
    let client = server.client();
    let connection = client.connect(None).await.expect("connection");
    for _ in 0..3 {
        let answer = connection.send(get(&client)).await.expect("answer");
        assert_eq!((answer.status(), answer.rsc()), (201, Some(2001)));
    }
    assert_eq!(server.accepted(), 1);
    // A server that closes after each answer: the next request on the connection fails
    // instead of quietly opening another one.
    let closing = Scripted::start(
        Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()),
        true,
    )
    .await;
    let client = closing.client();
    let connection = client.connect(None).await.expect("connection");
    assert_eq!(
        connection.send(get(&client)).await.expect("first").status(),
        200
    );
    let err = connection.send(get(&client)).await.expect_err("closed");
    assert!(matches!(err, ClientError::Exchange(_)), "{err}");
    assert_eq!(closing.accepted(), 1);
}

/// A blocking caller on a worker of a multi-threaded runtime (the Zn query in a TLS
/// handshake callback): the request runs on the runner's own thread and runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn blocking_callers_inside_a_runtime_get_their_answer() {
    let server = Scripted::start(
        Some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
        false,
    )
    .await;
    let client = server.client();
    let blocking = Blocking::new("answers-test");
    let req = get(&client);
    let answer = tokio::task::block_in_place(|| {
        let c = client.clone();
        blocking.run(async move { c.request(req).await })
    })
    .expect("answer");
    assert_eq!(answer.body(), b"ok");
}
