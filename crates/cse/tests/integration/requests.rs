//! Addressing, bad input, result contents, partial retrieve and discovery.
use crate::common;

use common::*;
use cse::inbound::{Answer, Verb};
use model::{
    FilterCriteria, Operation, Request, ResourceType as T, ResponseStatusCode as R, ResultContent,
};
use serde_json::json;

async fn tree() -> (TestCse, String) {
    let t = TestCse::new().await;
    let id = t.register("ae").await;
    t.create(
        &id,
        "cse-in/ae",
        T::Container,
        json!({"m2m:cnt": {"rn": "c", "lbl": ["room:1"]}}),
    )
    .await;
    t.create(
        &id,
        "cse-in/ae/c",
        T::Container,
        json!({"m2m:cnt": {"rn": "inner"}}),
    )
    .await;
    for (rn, con) in [("i1", "a"), ("i2", "bbbbbb")] {
        t.create(
            &id,
            "cse-in/ae/c",
            T::ContentInstance,
            json!({"m2m:cin": {"rn": rn, "con": con}}),
        )
        .await;
    }
    (t, id)
}

#[tokio::test]
async fn every_address_form_reaches_the_same_resource() {
    let (t, id) = tree().await;
    let ri = attr(&t.retrieve(&id, "cse-in/ae/c").await, "ri");
    let ri = ri.as_str().expect("ri");
    for to in [
        "cse-in/ae/c".to_owned(),
        "-/ae/c".to_owned(),
        ri.to_owned(),
        format!("{id}/c"),
        "/id-in/cse-in/ae/c".to_owned(),
        format!("/id-in/{ri}"),
        "//secure-cse.example/id-in/cse-in/ae/c".to_owned(),
    ] {
        let r = t.retrieve(&id, &to).await;
        assert_eq!((r.rsc, attr(&r, "ri")), (R::Ok, json!(ri)), "{to}");
    }
    assert_eq!(t.retrieve(&id, "cse-in/ae/nope").await.rsc, R::NotFound);
    assert_eq!(t.retrieve(&id, "nope").await.rsc, R::NotFound);
    // An IN-CSE without <remoteCSE>: another CSE-ID or SP-ID is 4004 (TS-0004 7.3.2.6).
    assert_eq!(t.retrieve(&id, "/id-other/cse-in").await.rsc, R::NotFound);
    assert_eq!(
        t.retrieve(&id, "//other.sp/id-in/cse-in").await.rsc,
        R::NotFound
    );
    assert_eq!(t.retrieve(&id, "cse-in//ae").await.rsc, R::BadRequest);
    // A bare CSE-ID names the CSE, not its <CSEBase>; a trailing `/` leaves an empty
    // resource name (TS-0004 6.2.4).
    assert_eq!(t.retrieve(ADMIN, "/id-in").await.rsc, R::NotFound);
    assert_eq!(
        t.retrieve(ADMIN, "//secure-cse.example/id-in").await.rsc,
        R::NotFound
    );
    assert_eq!(t.retrieve(ADMIN, "cse-in/").await.rsc, R::BadRequest);
    let cb = t.retrieve(ADMIN, "/id-in/cse-in").await;
    assert_eq!(
        (cb.rsc, attr(&cb, "csi"), attr(&cb, "cst")),
        (R::Ok, json!("/id-in"), json!(1))
    );
}

#[tokio::test]
async fn malformed_content_changes_nothing() {
    let (t, id) = tree().await;
    let cases = [
        (
            json!({"m2m:cin": {"con": "x"}}),
            T::Container,
            R::BadRequest,
        ), // wrapper does not match ty
        (json!({"m2m:cnt": {"zzz": 1}}), T::Container, R::BadRequest), // unknown attribute
        (
            json!({"m2m:cnt": {"ri": "mine"}}),
            T::Container,
            R::BadRequest,
        ), // read-only attribute
        (json!({"m2m:cnt": {"cni": 5}}), T::Container, R::BadRequest), // read-only attribute
        (
            json!({"m2m:cnt": {"mni": "many"}}),
            T::Container,
            R::BadRequest,
        ), // wrong type
        (
            json!({"m2m:cnt": {"lbl": "x"}}),
            T::Container,
            R::BadRequest,
        ), // wrong type
        (json!({"m2m:cnt": {"rn": "c"}}), T::Container, R::Conflict),  // duplicate name
        (
            json!({"m2m:cnt": {"rn": "la"}}),
            T::Container,
            R::BadRequest,
        ), // reserved name
        (
            json!({"m2m:cnt": {"et": "20000101T000000"}}),
            T::Container,
            R::BadRequest,
        ), // past expiry
        (
            json!({"m2m:cnt": {"cr": "Cother"}}),
            T::Container,
            R::BadRequest,
        ), // spoofed creator
        (json!({"m2m:cnt": 5}), T::Container, R::BadRequest),
        (json!([1, 2]), T::Container, R::BadRequest),
        (
            json!({"m2m:cnt": {}, "m2m:ae": {}}),
            T::Container,
            R::BadRequest,
        ),
        (
            json!({"m2m:cin": {"cnf": "text/plain:0"}}),
            T::ContentInstance,
            R::BadRequest,
        ), // missing con
        (
            json!({"m2m:ae": {"api": "Nx", "rr": true}}),
            T::Ae,
            R::OriginatorHasAlreadyRegistered,
        ), // registering twice
        (
            json!({"m2m:cb": {}}),
            T::CseBase,
            R::InvalidChildResourceType,
        ),
    ];
    for (pc, ty, want) in cases {
        let target = match ty {
            T::Ae => "cse-in",
            T::ContentInstance => "cse-in/ae/c",
            _ => "cse-in/ae",
        };
        let r = t.create(&id, target, ty, pc.clone()).await;
        assert_eq!(r.rsc, want, "{pc}");
    }
    assert_eq!(
        t.create(
            &id,
            "cse-in/ae/c",
            T::Ae,
            json!({"m2m:ae": {"api": "Nx", "rr": true}})
        )
        .await
        .rsc,
        R::InvalidChildResourceType
    );
    let kids = t.cse.store().descendants("cse-in/ae", None).expect("query");
    assert_eq!(kids.len(), 4, "only the tree remains");
    // Updates.
    assert_eq!(
        t.update(&id, "cse-in/ae/c", json!({"m2m:cnt": {"cni": 1}}))
            .await
            .rsc,
        R::BadRequest
    );
    assert_eq!(
        t.update(&id, "cse-in/ae/c", json!({"m2m:cnt": {}}))
            .await
            .rsc,
        R::BadRequest
    );
    assert_eq!(
        t.update(&id, "cse-in/ae/c", json!({"m2m:cnt": {"rn": "d"}}))
            .await
            .rsc,
        R::BadRequest
    );
    assert_eq!(
        t.update(&id, "cse-in/ae", json!({"m2m:ae": {"api": "Nother"}}))
            .await
            .rsc,
        R::BadRequest
    );
    assert_eq!(
        t.update(ADMIN, "cse-in", json!({"m2m:cb": {"cst": 2}}))
            .await
            .rsc,
        R::OperationNotAllowed
    );
    assert_eq!(t.delete(ADMIN, "cse-in").await.rsc, R::OperationNotAllowed);
}

#[tokio::test]
async fn release_versions_result_contents_and_expiry_of_requests() {
    let (t, id) = tree().await;
    // Only the releases the CSEBase claims in `srv` (issue 12, group 9).
    for rvi in ["1", "2", "4", "5", "x"] {
        let mut r = Request::new(Operation::Retrieve, "cse-in/ae", Some(id.clone()));
        r.rvi = Some(rvi.into());
        assert_eq!(t.send(r).await.rsc, R::ReleaseVersionNotSupported, "{rvi}");
    }
    for rvi in ["2a", "3"] {
        let mut r = Request::new(Operation::Retrieve, "cse-in/ae", Some(id.clone()));
        r.rvi = Some(rvi.into());
        assert_eq!(t.send(r).await.rsc, R::Ok, "{rvi}");
    }
    let mut bad_rcn = Request::new(Operation::Retrieve, "cse-in/ae", Some(id.clone()));
    bad_rcn.rcn = Some(ResultContent::ModifiedAttributes);
    assert_eq!(t.send(bad_rcn).await.rsc, R::BadRequest);
    let mut expired = Request::new(Operation::Retrieve, "cse-in/ae", Some(id.clone()));
    expired.rqet = Some("20200101T000000".into());
    assert_eq!(t.send(expired).await.rsc, R::RequestTimeout);
}

/// A `<CSEBase>` an earlier version stored claims the releases (`srv`) and resource types
/// (`srt`) of that version; at the next start it claims what this build implements.
#[tokio::test]
async fn a_stored_cse_base_claims_what_this_build_implements() {
    let t = TestCse::new().await;
    let store = t.cse.store().clone();
    let cb = store.get_by_srn("cse-in").ok().flatten().expect("CSEBase");
    assert_eq!(cb.attrs["srv"], json!(model::primitive::SUPPORTED_RELEASES));
    let srt = cb.attrs["srt"].clone();
    let mut old = cb.clone();
    old.attrs.insert("srv".into(), json!(["2a", "3", "4", "5"]));
    old.attrs.insert("srt".into(), json!([1, 2]));
    store::write(store.as_ref(), move |t| t.update(&old))
        .await
        .expect("write");
    let _again = open_cse(cse::CseConfig::default(), store.clone()).await;
    let cb = store.get_by_srn("cse-in").ok().flatten().expect("CSEBase");
    assert_eq!(
        (&cb.attrs["srv"], &cb.attrs["srt"]),
        (&json!(["2a", "3"]), &srt)
    );
}

async fn with_rcn(
    t: &TestCse,
    id: &str,
    op: Operation,
    to: &str,
    rcn: ResultContent,
    pc: Option<serde_json::Value>,
    ty: Option<T>,
) -> model::Response {
    let mut r = Request::new(op, to, Some(id.to_owned()));
    r.rcn = Some(rcn);
    r.pc = pc;
    r.ty = ty;
    t.send(r).await
}

#[tokio::test]
async fn result_contents() {
    let (t, id) = tree().await;
    use ResultContent::*;
    let r = with_rcn(
        &t,
        &id,
        Operation::Retrieve,
        "cse-in/ae/c",
        AttributesAndChildResources,
        None,
        None,
    )
    .await;
    let cnt = &r.pc.as_ref().expect("pc")["m2m:cnt"];
    assert_eq!(cnt["m2m:cin"].as_array().map(Vec::len), Some(2));
    assert_eq!(cnt["m2m:cnt"].as_array().map(Vec::len), Some(1));
    assert!(cnt.get("ri").is_some());
    let r = with_rcn(
        &t,
        &id,
        Operation::Retrieve,
        "cse-in/ae/c",
        ChildResources,
        None,
        None,
    )
    .await;
    assert!(r.pc.as_ref().expect("pc")["m2m:cnt"].get("ri").is_none());
    let r = with_rcn(
        &t,
        &id,
        Operation::Retrieve,
        "cse-in/ae/c",
        AttributesAndChildResourceReferences,
        None,
        None,
    )
    .await;
    let ch = &r.pc.as_ref().expect("pc")["m2m:cnt"]["ch"];
    // Descendants in structured-name order, parents before children.
    assert_eq!(
        ch[0],
        json!({"nm": "i1", "typ": 4, "val": "cse-in/ae/c/i1"})
    );
    let r = with_rcn(
        &t,
        &id,
        Operation::Retrieve,
        "cse-in/ae/c",
        ChildResourceReferences,
        None,
        None,
    )
    .await;
    assert_eq!(
        r.pc.as_ref().expect("pc")["m2m:rrl"]["rrf"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let pc = Some(json!({"m2m:cnt": {"rn": "n0"}}));
    let r = with_rcn(
        &t,
        &id,
        Operation::Create,
        "cse-in/ae",
        Nothing,
        pc,
        Some(T::Container),
    )
    .await;
    assert_eq!(
        (r.rsc, r.pc.is_none(), r.location.as_deref()),
        (R::Created, true, Some("cse-in/ae/n0"))
    );
    let pc = Some(json!({"m2m:cnt": {"rn": "n2"}}));
    let r = with_rcn(
        &t,
        &id,
        Operation::Create,
        "cse-in/ae",
        HierarchicalAddress,
        pc,
        Some(T::Container),
    )
    .await;
    assert_eq!(r.pc, Some(json!({"m2m:uri": "cse-in/ae/n2"})));
    let pc = Some(json!({"m2m:cnt": {"rn": "n3"}}));
    let r = with_rcn(
        &t,
        &id,
        Operation::Create,
        "cse-in/ae",
        HierarchicalAddressAndAttributes,
        pc,
        Some(T::Container),
    )
    .await;
    assert_eq!(
        r.pc.as_ref().expect("pc")["m2m:rce"]["uri"],
        json!("cse-in/ae/n3")
    );
    let pc = Some(json!({"m2m:cnt": {"lbl": ["x"]}}));
    let r = with_rcn(
        &t,
        &id,
        Operation::Update,
        "cse-in/ae/n0",
        ModifiedAttributes,
        pc,
        None,
    )
    .await;
    let m = r.pc.as_ref().expect("pc")["m2m:cnt"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(m.contains_key("lbl") && m.contains_key("lt") && !m.contains_key("ri"));
    let r = with_rcn(
        &t,
        &id,
        Operation::Delete,
        "cse-in/ae/n0",
        Attributes,
        None,
        None,
    )
    .await;
    assert_eq!((r.rsc, attr(&r, "rn")), (R::Deleted, json!("n0")));
}

#[tokio::test]
async fn partial_retrieve() {
    let (t, id) = tree().await;
    let mut r = Request::new(Operation::Retrieve, "cse-in/ae/c", Some(id.clone()));
    r.atrl = vec!["cni".into(), "lbl".into()];
    let resp = t.send(r).await;
    assert_eq!(
        resp.pc,
        Some(json!({"m2m:cnt": {"cni": 2, "lbl": ["room:1"]}}))
    );
    let mut r = Request::new(Operation::Retrieve, "cse-in/ae/c", Some(id.clone()));
    r.atrl = vec!["nonsense".into()];
    assert_eq!(t.send(r).await.rsc, R::BadRequest);
}

async fn discover(t: &TestCse, id: &str, to: &str, fc: &[(&str, &str)]) -> Vec<String> {
    let mut r = Request::new(Operation::Retrieve, to, Some(id.to_owned()));
    let mut f = FilterCriteria::default();
    f.add("fu", "1").expect("fu");
    for (k, v) in fc {
        f.add(k, v).expect("filter");
    }
    r.fc = f;
    let resp = t.send(r).await;
    assert_eq!(resp.rsc, R::Ok, "{:?}", resp.pc);
    resp.pc
        .as_ref()
        .and_then(|p| p["m2m:uril"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn discovery_filters() {
    let (t, id) = tree().await;
    assert_eq!(
        discover(&t, &id, "cse-in/ae", &[("ty", "4")]).await,
        vec!["cse-in/ae/c/i1", "cse-in/ae/c/i2"]
    );
    assert_eq!(
        discover(&t, &id, "cse-in/ae", &[("lbl", "room:1")]).await,
        vec!["cse-in/ae/c"]
    );
    assert_eq!(
        discover(&t, &id, "cse-in/ae", &[("lvl", "1")]).await,
        vec!["cse-in/ae/c"]
    );
    assert_eq!(
        discover(
            &t,
            &id,
            "cse-in/ae",
            &[("ty", "4"), ("lim", "1"), ("ofst", "1")]
        )
        .await,
        vec!["cse-in/ae/c/i2"]
    );
    assert_eq!(
        discover(&t, &id, "cse-in/ae", &[("sza", "2")]).await,
        vec!["cse-in/ae/c/i2"]
    );
    assert_eq!(
        discover(&t, &id, "cse-in/ae", &[("szb", "2")]).await,
        vec!["cse-in/ae/c/i1"]
    );
    assert_eq!(
        discover(&t, &id, "cse-in/ae", &[("rn", "inner")]).await,
        vec!["cse-in/ae/c/inner"]
    );
    assert_eq!(
        discover(&t, &id, "cse-in/ae", &[("cra", "20990101T000000")]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        discover(
            &t,
            &id,
            "cse-in/ae",
            &[("crb", "20990101T000000"), ("ty", "3")]
        )
        .await
        .len(),
        2
    );
    assert_eq!(
        discover(
            &t,
            &id,
            "cse-in/ae",
            &[("ty", "3"), ("rn", "i1"), ("fo", "2")]
        )
        .await
        .len(),
        3
    );
    // drt=2: unstructured IDs.
    let mut r = Request::new(Operation::Retrieve, "cse-in/ae", Some(id.clone()));
    r.fc.add("fu", "1").expect("fu");
    r.fc.add("rn", "i1").expect("rn");
    r.drt = Some(2);
    let resp = t.send(r).await;
    let uris = resp
        .pc
        .as_ref()
        .map(|p| p["m2m:uril"].clone())
        .unwrap_or_default();
    assert!(
        uris[0].as_str().is_some_and(|u| u.starts_with("cin")),
        "{uris}"
    );
    // Another AE discovers nothing it may not see.
    let other = t.register("other").await;
    let mut r = Request::new(Operation::Retrieve, "cse-in", Some(other.clone()));
    r.fc.add("fu", "1").expect("fu");
    r.fc.add("ty", "4").expect("ty");
    // The CSEBase's default policy grants no DISCOVERY to AEs.
    assert_eq!(t.send(r).await.rsc, R::OriginatorHasNoPrivilege);
    assert!(discover(&t, ADMIN, "cse-in", &[("ty", "4")]).await.len() == 2);
}

// === the door in: security-manager operations through the in-memory binding ===

/// The status code of a security-manager request carried with no HTTP.
async fn manage(t: &TestCse, verb: Verb, path: &str, query: &str, body: &[u8]) -> R {
    match t
        .plaintext()
        .manage(verb, path, query, Some(ADMIN), body)
        .await
    {
        Answer::Response(r) => {
            assert_eq!(r.rqi, "memory", "{path}: the request ID is echoed");
            r.rsc
        }
        Answer::Document { media_type, .. } => panic!("{path}: a document ({media_type})"),
        Answer::Waiting(_) => panic!("{path}: a waiting request"),
    }
}

#[tokio::test]
async fn admin_commands_take_get_to_read_and_post_to_change() {
    let t = TestCse::new().await;
    assert_eq!(
        manage(&t, Verb::Retrieve, "/.admin/withdrawn", "", b"").await,
        R::Ok
    );
    let r = t
        .plaintext()
        .manage(Verb::Retrieve, "/.admin/withdrawn", "", Some(ADMIN), b"")
        .await
        .into_response()
        .await
        .expect("a response");
    assert_eq!(r.pc, Some(json!({"withdrawn": []})));
    // A read as a change, a change as a read, neither: 4005, before anything runs.
    for (verb, path) in [
        (Verb::Change, "/.admin/withdrawn"),
        (Verb::Retrieve, "/.admin/reload-tls"),
        (Verb::Delete, "/.admin/withdrawn"),
        (Verb::Other, "/.admin/associations"),
    ] {
        assert_eq!(
            manage(&t, verb, path, "", b"").await,
            R::OperationNotAllowed,
            "{verb:?} {path}"
        );
    }
    assert_eq!(
        manage(&t, Verb::Retrieve, "/.admin/nothing", "", b"").await,
        R::NotFound
    );
    // Parameters are percent-decoded by the CSE, the same for every binding.
    assert_eq!(
        manage(&t, Verb::Retrieve, "/.admin/usage", "credential=%FF", b"").await,
        R::BadRequest
    );
    assert_eq!(
        manage(&t, Verb::Change, "/.admin/reload-tls", "x=1", b"").await,
        R::BadRequest
    );
    // An AE is not the admin: 4103, whichever binding carried it.
    let ae = t.register("ae").await;
    let r = t
        .plaintext()
        .manage(Verb::Retrieve, "/.admin/withdrawn", "", Some(&ae), b"")
        .await
        .into_response()
        .await
        .expect("a response");
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
}

#[tokio::test]
async fn security_manager_operations_refuse_the_wrong_method_and_absent_functions() {
    let t = TestCse::new().await;
    let cases: [(Verb, &str, &[u8], R); 8] = [
        // Enrolment and AE-ID rotation are POSTs.
        (Verb::Retrieve, "/.mef/enrol", b"", R::OperationNotAllowed),
        (
            Verb::Retrieve,
            "/.mef/certificate",
            b"",
            R::OperationNotAllowed,
        ),
        (
            Verb::Retrieve,
            "/.privacy/rotate-ae-id",
            b"",
            R::OperationNotAllowed,
        ),
        (Verb::Change, "/.privacy/rotate-ae-id", b"{}", R::BadRequest),
        // This CSE hosts no MEF and no MAF.
        (Verb::Change, "/.mef/enrol", b"{}", R::NotFound),
        (Verb::Change, "/.maf/keys", b"{}", R::NotFound),
        // A MAF path that is not UTF-8 once decoded.
        (Verb::Retrieve, "/.maf/keys/%FF", b"", R::BadRequest),
        // A CRL is retrieved, and only a published one.
        (
            Verb::Change,
            "/.well-known/crl/ca.crl",
            b"",
            R::OperationNotAllowed,
        ),
    ];
    for (verb, path, body, rsc) in cases {
        assert_eq!(
            manage(&t, verb, path, "", body).await,
            rsc,
            "{verb:?} {path}"
        );
    }
    assert_eq!(
        manage(&t, Verb::Retrieve, "/.well-known/crl/ca.crl", "", b"").await,
        R::NotFound
    );
    // A path that names no operation is no operation.
    assert_eq!(
        manage(&t, Verb::Retrieve, "/cse-in", "", b"").await,
        R::NotFound
    );
}

#[tokio::test]
async fn a_published_crl_is_a_document() {
    let config = cse::CseConfig {
        published_crls: vec![("ca.crl".to_owned(), vec![0x30, 0x03, 1, 2, 3])],
        ..Default::default()
    };
    let t = TestCse::with_config(config).await;
    match t
        .plaintext()
        .manage(Verb::Retrieve, "/.well-known/crl/ca.crl", "", None, b"")
        .await
    {
        Answer::Document { media_type, bytes } => {
            assert_eq!(media_type, "application/pkix-crl");
            assert_eq!(bytes, vec![0x30, 0x03, 1, 2, 3]);
        }
        Answer::Response(r) => panic!("a response: {:?}", r.rsc),
        Answer::Waiting(_) => panic!("a waiting request"),
    }
}
