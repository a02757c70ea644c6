//! What a listener does with clients that are not well-behaved TLS peers: old protocol
//! versions, plain HTTP, silence, stalls, floods.

use crate::common;

use common::*;
use security::tls::{HandshakeCap, HandshakeError, TlsPolicy, TlsVersion};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_0_and_1_1_are_refused_by_the_server() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(both()).await;
    for version in ["-tls1_1", "-tls1"] {
        // SECLEVEL=0 makes OpenSSL 3 really offer the old version; the refusal below is the
        // server's, not the client's.
        let mut args = cert_args("ae1");
        args.extend([
            version.to_owned(),
            "-cipher".to_owned(),
            "DEFAULT:@SECLEVEL=0".to_owned(),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = s_client(&server, &refs).await;
        server.refused("protocol version refused").await;
        assert!(
            run.stderr.contains("protocol version"),
            "the client got the protocol_version alert: {}",
            run.stderr
        );
        let run = s_client(
            &server,
            &[
                "-psk",
                PSK_HEX,
                "-psk_identity",
                PSK_ID,
                version,
                "-cipher",
                "PSK:@SECLEVEL=0",
            ],
        )
        .await;
        server.refused("protocol version refused").await;
        assert!(!run.success);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls13_minimum_refuses_tls12() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(TlsPolicy {
        min_version: TlsVersion::Tls13,
        ..both()
    })
    .await;
    s_client(&server, &psk_args("1.2")).await;
    server.refused("protocol version refused").await;
    s_client(&server, &psk_args("1.3")).await;
    assert_eq!(server.established().await.protocol, "TLSv1.3");
    assert!(
        server
            .acceptor
            .cipher_suites()
            .iter()
            .all(|s| !s.contains("_WITH_")),
        "TLS 1.3 suites only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_http_is_refused() {
    let mut server = Server::start(both()).await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    server.refused("plain HTTP sent to the TLS port").await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.write_all(&[0x42; 64]).await.expect("write");
    server.refused("not a TLS handshake").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_stalling_clients_time_out() {
    let policy = TlsPolicy {
        handshake_timeout: Duration::from_millis(300),
        ..both()
    };
    let mut server = Server::start(policy).await;
    let started = Instant::now();
    let _silent = TcpStream::connect(server.addr).await.expect("connect");
    assert!(matches!(
        server.outcome().await,
        Err(HandshakeError::Timeout)
    ));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // The start of a ClientHello record, then nothing.
    let mut stalling = TcpStream::connect(server.addr).await.expect("connect");
    stalling
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await
        .expect("write");
    assert!(matches!(
        server.outcome().await,
        Err(HandshakeError::Timeout)
    ));
    assert_eq!(server.acceptor.handshakes_in_progress(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_is_closed() {
    let mut server = Server::start(both()).await;
    drop(TcpStream::connect(server.addr).await.expect("connect"));
    assert!(matches!(
        server.outcome().await,
        Err(HandshakeError::Closed)
    ));
}

/// A client that sends a whole ClientHello and then nothing: it holds a handshake place
/// until the handshake timeout.
async fn stall_after_hello(server: &Server) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.write_all(&client_hello().await).await.expect("hello");
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_client_hello_hold_no_handshake_place() {
    if !have("openssl") {
        return;
    }
    let policy = TlsPolicy {
        max_handshakes: 4,
        max_handshakes_per_ip: 2,
        handshake_timeout: Duration::from_secs(30),
        ..both()
    };
    let mut server = Server::start(policy).await;
    // Silent sockets, and sockets that trickle the first bytes of a ClientHello, from the
    // client's own address: far more than either cap.
    let mut idle = Vec::new();
    for i in 0..60 {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        if i % 2 == 1 {
            let hello = client_hello().await;
            tcp.write_all(&hello[..hello.len() / 2])
                .await
                .expect("half a hello");
        }
        idle.push(tcp);
    }
    // A real client is served beside them.
    let run = s_client(&server, &psk_args("1.3")).await;
    assert!(run.success, "{}", run.stderr);
    server.established().await;
    let run = s_client_cert(&server, "ae1", &[]).await;
    assert!(run.success, "{}", run.stderr);
    server.established().await;
    assert_eq!(server.acceptor.handshakes_in_progress(), 0);
    drop(idle);
}

async fn wait_for(server: &Server, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.acceptor.handshakes_in_progress() != n {
        assert!(
            Instant::now() < deadline,
            "{} handshakes in progress, waiting for {n}",
            server.acceptor.handshakes_in_progress()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_caps_refuse_at_once() {
    let policy = TlsPolicy {
        max_handshakes: 2,
        max_handshakes_per_ip: 16,
        handshake_timeout: Duration::from_secs(5),
        ..both()
    };
    let mut server = Server::start(policy).await;
    let stalled: Vec<TcpStream> = vec![
        stall_after_hello(&server).await,
        stall_after_hello(&server).await,
    ];
    wait_for(&server, 2).await;
    let started = Instant::now();
    let _third = stall_after_hello(&server).await;
    let outcome = server.outcome().await;
    assert!(
        matches!(
            outcome,
            Err(HandshakeError::TooManyHandshakes {
                cap: HandshakeCap::Listener
            })
        ),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not after a timeout"
    );
    drop(stalled);
    for _ in 0..2 {
        assert!(matches!(
            server.outcome().await,
            Err(HandshakeError::Closed)
        ));
    }
    wait_for(&server, 0).await;
    if have("openssl") {
        s_client(&server, &psk_args("1.3")).await;
        server.established().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_cap() {
    let policy = TlsPolicy {
        max_handshakes: 100,
        max_handshakes_per_ip: 1,
        handshake_timeout: Duration::from_secs(5),
        ..both()
    };
    let mut server = Server::start(policy).await;
    let stalled = stall_after_hello(&server).await;
    wait_for(&server, 1).await;
    let _second = stall_after_hello(&server).await;
    let outcome = server.outcome().await;
    assert!(
        matches!(
            outcome,
            Err(HandshakeError::TooManyHandshakes {
                cap: HandshakeCap::Address
            })
        ),
        "{outcome:?}"
    );
    drop(stalled);
    assert!(matches!(
        server.outcome().await,
        Err(HandshakeError::Closed)
    ));
    wait_for(&server, 0).await;
    if have("openssl") {
        s_client(&server, &psk_args("1.2")).await;
        server.established().await;
    }
}
