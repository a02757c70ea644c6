//! What connections cost the listener: idle and slow sockets make room for real clients, and
//! every way a client can end or garble a connection still gets a precise answer.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{get, once, read_response, Server};
use http_binding::HttpLimits;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the server has closed `stream` (EOF or reset), waiting at most 5 s.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_make_room_for_a_client() {
    let mut limits = HttpLimits::default();
    limits.max_connections = 8;
    let s = Server::with_limits(limits).await;
    let mut idle = Vec::new();
    for i in 0..30 {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        if i % 3 == 0 {
            // A slow head: a few bytes, then nothing.
            tcp.write_all(b"GET /cse-in HTTP/1.1\r\nHo").await.unwrap();
        }
        idle.push(tcp);
    }
    // Far over the limit, and well within the 10 s header timeout: served all the same.
    let r = once(s.addr, &get("/served")).await;
    assert_eq!(r.rsc(), Some(2000));
    // The oldest idle connections were closed to make room.
    assert!(closed_by_server(&mut idle[0]).await);
    assert_eq!(s.fake.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_serving_a_request_is_never_evicted() {
    let mut limits = HttpLimits::default();
    limits.max_connections = 1;
    let s = Server::with_limits(limits).await;
    let mut busy = TcpStream::connect(s.addr).await.unwrap();
    busy.write_all(get("/slow").as_bytes()).await.unwrap();
    common::wait_until(|| s.fake.count() == 1).await;
    // The next client waits for the place rather than taking it from a request in flight.
    let mut next = TcpStream::connect(s.addr).await.unwrap();
    next.write_all(get("/next").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut busy).await.rsc(), Some(2000));
    drop(busy);
    assert_eq!(read_response(&mut next).await.rsc(), Some(2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let s = Server::start().await;
    let body = r#"{"m2m:cin":{"con":"21.5"}}"#;
    for target in ["/created", "/slow"] {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        let req = format!(
            "POST {target} HTTP/1.1\r\nHost: x\r\nX-M2M-Origin: C\r\nX-M2M-RI: half\r\nContent-Type: application/json;ty=4\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        tcp.shutdown().await.unwrap();
        let r = read_response(&mut tcp).await;
        assert!(matches!(r.rsc(), Some(2001 | 2000)), "{target}: {}", r.head);
        assert_eq!(r.header("X-M2M-RI"), Some("half"));
    }
    assert_eq!(s.fake.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_the_parser_refuses_are_answered_with_an_rsc() {
    let mut limits = HttpLimits::default();
    limits.max_header_bytes = 1024;
    let s = Server::with_limits(limits).await;
    let cases: [(&str, Vec<u8>, u16); 5] = [
        (
            "bad request line",
            b"GET\x01/cse-in HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad version",
            b"GET /cse-in HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad header bytes",
            b"GET /cse-in HTTP/1.1\r\nHost: x\r\nX-Bad\x01Name: v\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad Content-Length",
            b"POST /cse-in HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "head beyond the hard limit",
            format!(
                "GET /cse-in HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "y".repeat(8000)
            )
            .into_bytes(),
            431,
        ),
    ];
    for (what, request, status) in cases {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        let r = common::exchange(&mut tcp, &request).await;
        assert_eq!(
            (r.status, r.rsc()),
            (status, Some(4000)),
            "{what}: {}",
            r.head
        );
        assert!(r.json()["m2m:dbg"].is_string(), "{what}");
        assert!(
            closed_by_server(&mut tcp).await,
            "{what}: the connection is closed after"
        );
    }
    // The connection after a good request keeps working as before.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            common::exchange(&mut tcp, get("/ok").as_bytes())
                .await
                .rsc(),
            Some(2000)
        );
    }
    assert_eq!(s.fake.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_declared_over_the_limit_is_refused_at_once() {
    let mut limits = HttpLimits::default();
    limits.max_body_bytes = 1000;
    let s = Server::with_limits(limits).await;
    let head = "PUT /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: chunk\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    // A good chunked request first, on the same connection.
    let body = r#"{"a":1}"#;
    let good = format!("{head}{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    assert_eq!(
        common::exchange(&mut tcp, good.as_bytes()).await.rsc(),
        Some(2000)
    );
    // Then a chunk declared at 1 MiB, a few bytes of it, and nothing more: the answer comes
    // without waiting for the 30 s body timeout (read_response waits at most 5 s).
    let bad = format!("{head}100000\r\n{{\"m2m:cin\":");
    let r = common::exchange(&mut tcp, bad.as_bytes()).await;
    assert_eq!((r.status, r.rsc()), (413, Some(4000)), "{}", r.head);
    assert_eq!(r.header("X-M2M-RI"), Some("chunk"));
    // Chunks that add up to more than the limit, each below it.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let bad = format!("{head}300\r\n{}\r\n300\r\n", "x".repeat(0x300));
    let r = common::exchange(&mut tcp, bad.as_bytes()).await;
    assert_eq!((r.status, r.rsc()), (413, Some(4000)), "{}", r.head);
    assert_eq!(s.fake.count(), 1, "only the good request reached the CSE");
}
