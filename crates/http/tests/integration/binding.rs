//! The binding over a real socket: what the handler receives for each HTTP form, and what
//! goes back on the wire, byte for byte where the spelling matters.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{exchange, get, once, read_response, wait_until, Server};
use http_binding::HttpLimits;
use model::codec::{self, Format};
use model::{Operation, ResourceType, ResultContent};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn methods_map_to_operations() {
    let s = Server::start().await;
    let cases = [
        (
            "POST",
            "Content-Type: application/json;ty=3\r\n",
            Operation::Create,
            Some(ResourceType::Container),
        ),
        (
            "POST",
            "Content-Type: application/vnd.onem2m-ntfy+json\r\n",
            Operation::Notify,
            None,
        ),
        ("GET", "", Operation::Retrieve, None),
        (
            "PUT",
            "Content-Type: application/json\r\n",
            Operation::Update,
            None,
        ),
        ("DELETE", "", Operation::Delete, None),
    ];
    for (method, extra, op, ty) in cases {
        let body = if extra.is_empty() {
            ""
        } else {
            "{\"m2m:cnt\":{}}"
        };
        let req = format!(
            "{method} /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-Origin: CAdmin\r\nX-M2M-RI: r\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let r = once(s.addr, &req).await;
        assert_eq!(r.rsc(), Some(2000), "{method}: {}", r.head);
        let (_, p) = s.fake.last();
        assert_eq!((p.op, p.ty), (op, ty), "{method} {extra}");
    }
    let r = once(
        s.addr,
        "PATCH /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\n\r\n",
    )
    .await;
    assert_eq!((r.status, r.rsc()), (405, Some(4005)));
    let r = once(s.addr, "OPTIONS /cse-in HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!((r.status, r.rsc()), (405, Some(4005)));
    assert_eq!(s.fake.count(), 5);
}

#[tokio::test]
async fn path_forms_and_headers_reach_the_primitive() {
    let s = Server::start().await;
    let cases = [
        ("/cse-in/ae1/cnt", "cse-in/ae1/cnt"),
        ("/~/id-in/cse-in", "/id-in/cse-in"),
        ("/_/sp.example/id-in/cin1", "//sp.example/id-in/cin1"),
        ("/cse-in/my%20box/caf%C3%A9/", "cse-in/my box/café/"),
    ];
    for (path, to) in cases {
        let r = once(s.addr, &get(path)).await;
        assert_eq!(r.rsc(), Some(2000), "{path}");
        assert_eq!(s.fake.last().1.to, to);
    }
    let r = once(
        s.addr,
        "GET /cse-in HTTP/1.1\r\nHost: x\r\nx-m2m-origin: Cae\r\nX-M2M-RI: abc\r\nX-M2M-RVI: 4\r\nX-M2M-OT: 20250101T000000\r\nX-M2M-RET: 20990101T000000\r\nX-M2M-RST: 60000\r\nX-M2M-OET: 20250101T000000\r\nX-M2M-VSI: vendor\r\n\r\n",
    )
    .await;
    assert_eq!(r.header("X-M2M-RI"), Some("abc"));
    assert_eq!(r.header("X-M2M-RVI"), Some("4"));
    let (ctx, p) = s.fake.last();
    assert_eq!(ctx.listener, "http-test");
    assert_eq!(
        ctx.peer.map(|a| a.ip()),
        Some(std::net::Ipv4Addr::LOCALHOST.into())
    );
    assert!(ctx.security_association().is_none());
    assert_eq!(p.fr.as_deref(), Some("Cae"));
    assert_eq!(p.rqi, "abc");
    assert_eq!(p.rvi.as_deref(), Some("4"));
    assert_eq!(p.ot.as_deref(), Some("20250101T000000"));
    assert_eq!(p.rqet.as_deref(), Some("20990101T000000"));
    assert_eq!(p.rset.as_deref(), Some("60000"));
    assert_eq!(p.oet.as_deref(), Some("20250101T000000"));
    assert_eq!(p.vsi.as_deref(), Some("vendor"));

    once(
        s.addr,
        "GET /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\n\r\n",
    )
    .await;
    assert_eq!(s.fake.last().1.fr, None);
    once(
        s.addr,
        "GET /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-Origin:\r\nX-M2M-RI: r\r\n\r\n",
    )
    .await;
    assert_eq!(s.fake.last().1.fr.as_deref(), Some(""));

    let r = once(s.addr, &get("/")).await;
    assert_eq!((r.status, r.rsc()), (400, Some(4000)));
}

#[tokio::test]
async fn query_reaches_the_primitive() {
    let s = Server::start().await;
    let r = once(
        s.addr,
        &get("/cse-in?fu=1&ty=3+4&lbl=a&lbl=b+c&rcn=8&drt=2&atrl=ri+lbl&lim=3&rp=P1D"),
    )
    .await;
    assert_eq!(r.rsc(), Some(2000), "{}", r.head);
    let p = s.fake.last().1;
    assert!(p.is_discovery());
    assert_eq!(
        p.fc.ty,
        vec![ResourceType::Container, ResourceType::ContentInstance]
    );
    assert_eq!(p.fc.lbl, vec!["a", "b", "c"]);
    assert_eq!(p.fc.lim, Some(3));
    assert_eq!(p.rcn, Some(ResultContent::ChildResources));
    assert_eq!(p.drt, Some(2));
    assert_eq!(p.atrl, vec!["ri", "lbl"]);
}

#[tokio::test]
async fn binding_errors_are_answered_with_rsc_and_dbg() {
    let s = Server::start().await;
    let cases = [
        // (request, HTTP status, RSC)
        ("GET /cse-in HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(), 400, 4000),
        ("GET /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI:\r\n\r\n".to_owned(), 400, 4000),
        ("GET /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: a\r\nX-M2M-RI: b\r\n\r\n".to_owned(), 400, 4000),
        (
            "POST /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
                .to_owned(),
            415,
            4015,
        ),
        (
            "POST /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nContent-Type: application/json;ty=999\r\nContent-Length: 2\r\n\r\n{}"
                .to_owned(),
            400,
            4000,
        ),
        ("POST /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nContent-Length: 2\r\n\r\n{}".to_owned(), 415, 4015),
        (
            "PUT /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nContent-Type: application/json\r\nContent-Length: 1\r\n\r\n{"
                .to_owned(),
            400,
            4000,
        ),
        (get("/cse-in?nosuchfilter=1"), 400, 4000),
        (get("/cse-in?fu=7"), 400, 4000),
        (get("/cse-in?rcn=1&rcn=2"), 400, 4000),
        (get("/cse-in%2Fx"), 400, 4000),
        ("GET /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nAccept: application/xml\r\n\r\n".to_owned(), 406, 5207),
    ];
    for (req, status, rsc) in cases {
        let r = once(s.addr, &req).await;
        assert_eq!(
            (r.status, r.rsc()),
            (status, Some(rsc)),
            "{req:?} -> {}",
            r.head
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(
            r.json()["m2m:dbg"].as_str().is_some_and(|m| !m.is_empty()),
            "{req:?}"
        );
    }
    assert_eq!(
        s.fake.count(),
        0,
        "no rejected request may reach the handler"
    );
    // The request identifier is echoed even when the request is rejected.
    let r = once(s.addr, &get("/cse-in?bogus=1")).await;
    assert_eq!(r.header("X-M2M-RI"), Some("r1"));
}

#[tokio::test]
async fn json_and_cbor_content_and_accept() {
    let s = Server::start().await;
    let content = json!({"m2m:cin": {"con": "21.5", "lbl": ["a"]}});
    let cbor = codec::encode(&content, Format::Cbor);
    let mut req = format!(
        "POST /cse-in/cnt HTTP/1.1\r\nHost: x\r\nX-M2M-Origin: CAdmin\r\nX-M2M-RI: r\r\nContent-Type: application/vnd.onem2m-res+cbor; ty=4\r\nAccept: application/cbor\r\nContent-Length: {}\r\n\r\n",
        cbor.len()
    )
    .into_bytes();
    req.extend_from_slice(&cbor);
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let r = exchange(&mut stream, &req).await;
    assert_eq!(r.rsc(), Some(2000));
    let p = s.fake.last().1;
    assert_eq!(
        (p.op, p.ty, p.pc.as_ref()),
        (
            Operation::Create,
            Some(ResourceType::ContentInstance),
            Some(&content)
        )
    );
    assert_eq!(r.header("content-type"), Some("application/cbor"));
    assert_eq!(
        codec::decode(&r.body, Format::Cbor).ok(),
        Some(content.clone())
    );

    let body = content.to_string();
    let req = format!(
        "PUT /cse-in/cnt HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nContent-Type: application/json\r\nAccept: */*\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = once(s.addr, &req).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), content);
}

#[tokio::test]
async fn oversized_bodies_get_413_and_4000() {
    let mut limits = HttpLimits::default();
    limits.max_body_bytes = 100;
    let s = Server::with_limits(limits).await;
    let big = format!("{{\"m2m:cin\":{{\"con\":\"{}\"}}}}", "x".repeat(200));
    // Declared too large: refused before the body is read.
    let req = format!(
        "PUT /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: big\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    let r = once(s.addr, &req).await;
    assert_eq!((r.status, r.rsc()), (413, Some(4000)));
    assert_eq!(r.header("X-M2M-RI"), Some("big"));
    // Chunked: cut off at the limit.
    let req = format!(
        "PUT /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let r = once(s.addr, &req).await;
    assert_eq!((r.status, r.rsc()), (413, Some(4000)));
    // At the limit is fine.
    let ok = format!("{{\"con\":\"{}\"}}", "x".repeat(90));
    assert_eq!(ok.len(), 100);
    let req = format!(
        "PUT /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{ok}"
    );
    assert_eq!(once(s.addr, &req).await.rsc(), Some(2000));
    assert_eq!(s.fake.count(), 1);
}

#[tokio::test]
async fn oversized_headers_are_refused_with_an_rsc() {
    let mut limits = HttpLimits::default();
    limits.max_header_bytes = 1024;
    limits.max_headers = 8;
    let s = Server::with_limits(limits).await;
    let req = format!(
        "GET /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nX-Big: {}\r\n\r\n",
        "y".repeat(2000)
    );
    let r = once(s.addr, &req).await;
    assert_eq!((r.status, r.rsc()), (431, Some(4000)));
    let many: String = (0..10).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = once(
        s.addr,
        &format!("GET /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\n{many}\r\n"),
    )
    .await;
    assert_eq!((r.status, r.rsc()), (431, Some(4000)));
    // Far beyond the limit hyper stops reading; its 431 carries the RSC too.
    let huge = format!(
        "GET /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r\r\nX-Big: {}\r\n\r\n",
        "y".repeat(8000)
    );
    let r = once(s.addr, &huge).await;
    assert_eq!((r.status, r.rsc()), (431, Some(4000)));
    assert_eq!(s.fake.count(), 0);
}

#[tokio::test]
async fn header_names_leave_in_the_spec_spelling() {
    let s = Server::start().await;
    let r = once(s.addr, "POST /created HTTP/1.1\r\nHost: x\r\nX-M2M-RI: r9\r\nX-M2M-RVI: 3\r\nContent-Type: application/json;ty=3\r\nContent-Length: 2\r\n\r\n{}").await;
    assert_eq!(r.status, 201);
    assert!(r.head.starts_with("HTTP/1.1 201"), "{}", r.head);
    for line in [
        "\r\nX-M2M-RSC: 2001\r\n",
        "\r\nX-M2M-RI: r9\r\n",
        "\r\nX-M2M-RVI: 3\r\n",
        "\r\nX-M2M-OT: ",
        "\r\nContent-Location: cse-in/ae1/c\r\n",
        "\r\nContent-Type: application/json\r\n",
        "\r\nContent-Length: ",
    ] {
        assert!(
            format!("{}\r\n", r.head).contains(line),
            "missing {line:?} in\n{}",
            r.head
        );
    }
    // A rejected request is spelled the same way.
    let r = once(s.addr, "GET /cse-in HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(r.head.contains("\r\nX-M2M-RSC: 4000\r\n"), "{}", r.head);
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let s = Server::start().await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    for i in 0..3 {
        let r = exchange(&mut stream, get(&format!("/cse-in/n{i}")).as_bytes()).await;
        assert_eq!(r.rsc(), Some(2000));
    }
    // A rejected request does not close the connection either.
    let r = exchange(&mut stream, b"GET /cse-in HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(r.rsc(), Some(4000));
    let r = exchange(&mut stream, get("/cse-in/last").as_bytes()).await;
    assert_eq!(r.rsc(), Some(2000));
    let seen = s.fake.seen.lock().unwrap();
    let peers: Vec<_> = seen.iter().map(|(ctx, _)| ctx.peer).collect();
    assert_eq!(peers.len(), 4);
    assert!(
        peers.windows(2).all(|w| w[0] == w[1]),
        "all on one connection: {peers:?}"
    );
}

#[tokio::test]
async fn handler_panic_is_a_5000_and_the_server_survives() {
    let s = Server::start().await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let r = exchange(&mut stream, get("/panic").as_bytes()).await;
    assert_eq!((r.status, r.rsc()), (500, Some(5000)));
    let r = exchange(&mut stream, get("/cse-in").as_bytes()).await;
    assert_eq!(r.rsc(), Some(2000));
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let s = Server::start().await;
    let fake = s.fake.clone();
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(get("/held").as_bytes()).await.unwrap();
    // In flight: the handler has the request and holds it until released.
    wait_until(|| fake.count() == 1).await;
    let addr = s.addr;
    let stopped = tokio::spawn(s.stop());
    // The listener closes at once; the held request keeps the shutdown waiting.
    let mut closed = false;
    for _ in 0..500 {
        closed = TcpStream::connect(addr).await.is_err();
        if closed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(closed, "the listener is closed once shutdown begins");
    assert!(!stopped.is_finished(), "shutdown waits for the request");
    fake.release.notify_one();
    let r = read_response(&mut stream).await;
    assert_eq!(r.rsc(), Some(2000));
    stopped.await.unwrap().unwrap();
}

#[tokio::test]
async fn duplicate_keys_are_refused_with_4000() {
    let s = Server::start().await;
    for body in [
        r#"{"m2m:cnt":{"rn":"a"},"m2m:cnt":{"rn":"b"}}"#,
        r#"{"m2m:cnt":{"rn":"a","lbl":["x"],"rn":"b"}}"#,
    ] {
        let req = format!(
            "POST /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-Origin: C\r\nX-M2M-RI: dup\r\nContent-Type: application/json;ty=3\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let r = once(s.addr, &req).await;
        assert_eq!((r.status, r.rsc()), (400, Some(4000)), "{body}");
        assert!(
            r.json()["m2m:dbg"]
                .as_str()
                .is_some_and(|m| m.contains("twice")),
            "{:?}",
            r.json()
        );
    }
    assert_eq!(s.fake.count(), 0, "nothing reached the CSE");
}
