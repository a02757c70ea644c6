//! The `client` crate against the binding: every primitive the client sends arrives at the
//! handler unchanged, and every response comes back as sent.
#![allow(clippy::unwrap_used)]

use crate::common;

use client::{Client, ClientError};
use common::Server;
use model::codec::Format;
use model::{FilterCriteria, Operation, Request, ResourceType, ResponseStatusCode, ResultContent};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn primitives_round_trip_through_client_and_binding() {
    let s = Server::start().await;
    for format in [Format::Json, Format::Cbor] {
        let c = Client::new(&s.url()).unwrap().with_format(format);
        let mut req = Request::new(
            Operation::Create,
            "/id-in/cse-in/my ae",
            Some("Cae1".into()),
        );
        req.ty = Some(ResourceType::Container);
        req.pc = Some(json!({"m2m:cnt": {"rn": "c", "lbl": ["x"], "mni": 10}}));
        req.rcn = Some(ResultContent::Attributes);
        req.rvi = Some("4".into());
        req.ot = Some("20250101T000000".into());
        req.rqet = Some("20990101T000000".into());
        req.rset = Some("3600000".into());
        req.oet = Some("-1".into());
        req.vsi = Some("v".into());
        let resp = c.send(&req).await.unwrap();
        assert_eq!(resp.rsc, ResponseStatusCode::Ok);
        assert_eq!(resp.rqi, req.rqi);
        assert_eq!(resp.pc, req.pc, "content echoed back in {format:?}");
        assert!(resp.ot.is_some());
        let got = s.fake.last().1;
        assert_eq!(got.op, Operation::Create);
        assert_eq!(got.to, req.to);
        assert_eq!(got.fr, req.fr);
        assert_eq!(got.rqi, req.rqi);
        assert_eq!(got.ty, req.ty);
        assert_eq!(got.pc, req.pc);
        assert_eq!(got.rcn, req.rcn);
        assert_eq!(
            (got.rvi, got.ot, got.rqet, got.vsi),
            (req.rvi, req.ot, req.rqet, req.vsi)
        );
        assert_eq!((got.rset, got.oet), (req.rset, req.oet));
    }
}

#[tokio::test]
async fn every_operation_and_address_form() {
    let s = Server::start().await;
    let c = Client::new(&s.url()).unwrap();
    for op in [
        Operation::Retrieve,
        Operation::Update,
        Operation::Delete,
        Operation::Notify,
    ] {
        for to in [
            "cse-in/a",
            "/id-in/cse-in/a",
            "//sp.example/id-in/cse-in/a",
            "cin123",
        ] {
            let mut req = Request::new(op, to, Some(String::new()));
            if matches!(op, Operation::Update | Operation::Notify) {
                req.pc = Some(json!({"m2m:cnt": {"lbl": ["x"]}}));
            }
            let resp = c.send(&req).await.unwrap();
            assert_eq!(resp.rsc, ResponseStatusCode::Ok);
            let got = s.fake.last().1;
            assert_eq!(
                (got.op, got.to.as_str(), got.fr.as_deref(), got.ty),
                (op, to, Some(""), None)
            );
        }
    }
}

#[tokio::test]
async fn filters_and_query_parameters_round_trip() {
    let s = Server::start().await;
    let c = Client::new(&s.url()).unwrap();
    let mut fc = FilterCriteria::default();
    for (k, v) in [
        ("fu", "1"),
        ("crb", "20250102T030405,123456"),
        ("ms", "20240102T030405"),
        ("lbl", "a"),
        ("lbl", "key=v&x y"),
        ("ty", "3"),
        ("ty", "4"),
        ("cty", "text/plain"),
        ("rn", "a+b"),
        ("lim", "10"),
        ("lvl", "2"),
        ("ofst", "5"),
        ("fo", "2"),
        ("sza", "1"),
        ("szb", "9"),
    ] {
        fc.add(k, v).unwrap();
    }
    fc.add_item("lbl", "tariff+peak").unwrap();
    let mut req = Request::new(Operation::Retrieve, "cse-in", Some("CAdmin".into()));
    req.fc = fc.clone();
    req.drt = Some(2);
    req.rcn = Some(ResultContent::DiscoveryResultReferences);
    req.atrl = vec!["ri".into(), "lbl".into()];
    c.send(&req).await.unwrap();
    let got = s.fake.last().1;
    assert_eq!(got.fc, fc);
    assert_eq!((got.drt, got.rcn, got.atrl), (req.drt, req.rcn, req.atrl));
}

#[tokio::test]
async fn created_location_and_errors() {
    let s = Server::start().await;
    let c = Client::new(&s.url()).unwrap();
    let mut req = Request::new(Operation::Create, "created", Some("C".into()));
    req.ty = Some(ResourceType::Container);
    let resp = c.send(&req).await.unwrap();
    assert_eq!(resp.rsc, ResponseStatusCode::Created);
    assert_eq!(resp.location.as_deref(), Some("cse-in/ae1/c"));
    // A binding error is a response, not a client error.
    let mut req = Request::new(Operation::Retrieve, "cse-in", None);
    req.drt = Some(3);
    let resp = c.send(&req).await.unwrap();
    assert_eq!(resp.rsc, ResponseStatusCode::BadRequest);
    assert_eq!(resp.rqi, req.rqi);
    assert!(resp
        .pc
        .as_ref()
        .and_then(|pc| pc["m2m:dbg"].as_str())
        .is_some());
}

#[tokio::test]
async fn send_to_url_reaches_a_notification_target() {
    let s = Server::start().await;
    let c = Client::new("http://127.0.0.1:9").unwrap();
    let mut req = Request::new(Operation::Notify, "CAe1", Some("/id-in".into()));
    req.pc = Some(json!({"m2m:sgn": {"vrq": true, "sur": "/id-in/sub1"}}));
    let resp = c
        .send_to_url(&format!("{}/~/id-in/CAe1/inbox", s.url()), &req)
        .await
        .unwrap();
    assert_eq!(resp.rsc, ResponseStatusCode::Ok);
    let got = s.fake.last().1;
    assert_eq!(
        (got.op, got.to.as_str()),
        (Operation::Notify, "/id-in/CAe1/inbox")
    );
    assert_eq!(got.pc, req.pc);
}

#[tokio::test]
async fn timeouts_and_unreachable_peers_are_client_errors() {
    let s = Server::start().await;
    let c = Client::new(&s.url())
        .unwrap()
        .with_timeout(Duration::from_millis(50));
    let err = c
        .send(&Request::new(Operation::Retrieve, "slow", None))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err}");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let c = Client::new(&format!("http://{closed}")).unwrap();
    let err = c
        .send(&Request::new(Operation::Retrieve, "cse-in", None))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err}");
    assert!(
        err.to_string().contains("onnect"),
        "the cause is in the message: {err}"
    );
}
