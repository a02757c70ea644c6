//! `<semanticDescriptor>` (ty 24, TS-0004 clause 7.4.34; TS-0001 clause 9.6.30): the
//! descriptor is checked against its representation on CREATE and UPDATE (clause
//! 7.4.34.2.1 Recv-6.4: 4000 when it does not conform or `dcrp` is IRI), formats this CSE
//! cannot check are 5001, `vlde` follows the local policy, and discovery by `smf` is 5001.
use crate::common;

use base64::Engine;
use common::*;
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::{json, Value};

const TURTLE: &str =
    "@prefix ex: <http://example.org/> .\nex:house1 a ex:House ; ex:temperature 21 .\n";
const RDF_XML: &str = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/">
  <rdf:Description rdf:about="http://example.org/house1"><ex:temperature>22</ex:temperature></rdf:Description>
</rdf:RDF>"#;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn smd(dcrp: u64, doc: &str) -> Value {
    json!({"m2m:smd": {"dcrp": dcrp, "dsp": b64(doc)}})
}

#[tokio::test]
async fn descriptors_are_checked_and_stored() {
    let t = TestCse::new().await;
    let me = t.register("me").await;
    let other = t.register("other").await;
    let r = t
        .create(
            &me,
            "cse-in/me",
            T::Container,
            json!({"m2m:cnt": {"rn": "box"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    let box_ = "cse-in/me/box";
    for (body, want) in [
        (smd(5, "ex:a ex:b"), R::BadRequest),
        (smd(4, TURTLE), R::BadRequest),
        (smd(1, TURTLE), R::BadRequest),
        (
            json!({"m2m:smd": {"dcrp": 5, "dsp": "%%not base64%%"}}),
            R::BadRequest,
        ),
        (json!({"m2m:smd": {"dcrp": 5}}), R::BadRequest),
        (json!({"m2m:smd": {"dsp": b64(TURTLE)}}), R::BadRequest),
        (
            json!({"m2m:smd": {"dcrp": "application/rdf+xml:1", "dsp": b64(RDF_XML)}}),
            R::BadRequest,
        ),
        (
            json!({"m2m:smd": {"dcrp": 5, "dsp": b64(TURTLE), "svd": true}}),
            R::BadRequest,
        ),
        (
            json!({"m2m:smd": {"dcrp": 5, "dsp": b64(TURTLE), "soe": "INSERT DATA {}"}}),
            R::BadRequest,
        ),
        (smd(7, "{}"), R::NotImplemented),
        (smd(3, RDF_XML), R::NotImplemented),
    ] {
        let r = t
            .create(&me, box_, T::SemanticDescriptor, body.clone())
            .await;
        assert_eq!(r.rsc, want, "{body}: {:?}", r.pc);
    }
    // Nothing was created by the refused requests.
    let mut req = Request::new(Operation::Retrieve, box_, Some(me.clone()));
    req.fc.add("fu", "1").expect("fu");
    req.fc.add("ty", "24").expect("ty");
    let r = t.send(req).await;
    assert_eq!(
        r.pc.as_ref().map(|pc| pc["m2m:uril"].clone()),
        Some(json!([]))
    );

    // Turtle, with a validation request the local policy answers with false.
    let mut body = smd(5, TURTLE);
    body["m2m:smd"]["rn"] = json!("d");
    body["m2m:smd"]["or"] = json!("http://example.org/onto");
    body["m2m:smd"]["vlde"] = json!(true);
    body["m2m:smd"]["cr"] = json!(null);
    let r = t.create(&me, box_, T::SemanticDescriptor, body).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert_eq!(attr(&r, "ty"), json!(24));
    assert_eq!(attr(&r, "vlde"), json!(false));
    assert_eq!(attr(&r, "cr"), json!(me));
    assert_eq!(attr(&r, "dsp"), json!(b64(TURTLE)));
    assert_eq!(attr(&r, "svd"), Value::Null);
    let path = "cse-in/me/box/d";
    // Another AE has no privilege on it (the default policy: its creator only).
    assert_eq!(
        t.retrieve(&other, path).await.rsc,
        R::OriginatorHasNoPrivilege
    );

    // UPDATE: the descriptor as the update leaves it must parse.
    for (body, want) in [
        (json!({"m2m:smd": {"dcrp": 4}}), R::BadRequest),
        (json!({"m2m:smd": {"dsp": b64("<rdf:RDF")}}), R::BadRequest),
        (json!({"m2m:smd": {"dsp": null}}), R::BadRequest),
        (
            json!({"m2m:smd": {"soe": "DELETE DATA {}"}}),
            R::NotImplemented,
        ),
        (json!({"m2m:smd": {"or": "not an iri"}}), R::BadRequest),
    ] {
        let r = t.update(&me, path, body.clone()).await;
        assert_eq!(r.rsc, want, "{body}: {:?}", r.pc);
    }
    assert_eq!(
        attr(&t.retrieve(&me, path).await, "dsp"),
        json!(b64(TURTLE))
    );
    let r = t
        .update(
            &me,
            path,
            json!({"m2m:smd": {"dcrp": 4, "dsp": b64(RDF_XML)}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "dcrp"), json!(4));

    // Where a descriptor may live (TS-0004 child resource tables): not under the CSEBase.
    let r = t
        .create(&me, "cse-in", T::SemanticDescriptor, smd(5, TURTLE))
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType, "{:?}", r.pc);
    let r = t
        .create(&me, "cse-in/me", T::SemanticDescriptor, smd(5, TURTLE))
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);

    // Semantic discovery (TS-0004 table 7.3.3.17-1 `smf`) is not implemented: 5001 when the
    // criterion is read, rather than an answer that ignores the query.
    let mut req = Request::new(Operation::Retrieve, "cse-in/me", Some(me.clone()));
    req.fc.add("fu", "1").expect("fu");
    let err = req.fc.add("smf", "ASK { ?s ?p ?o }").expect_err("smf");
    assert_eq!(err.rsc, R::NotImplemented, "{}", err.message);
}
