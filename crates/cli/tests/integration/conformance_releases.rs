//! Issue 12, groups 8 and 9, over HTTP against the real binary: the releases the CSE claims
//! (`srv`, `rvi`; TS-0004 clause 7.3.2.1) and nothing accepted that is not enforced
//! (TS-0004 clause 7.3.3.3), `disr` (disableRetrieval, Release 4) enforced, and the creator
//! (`cr` only when asked, TS-0004 clause 7.3.3.5) kept apart from the creator record that
//! the default access policy relies on, through an AE-ID rotation.
use crate::common;

use common::*;
use model::{FilterCriteria, ResultContent};
use model::{Operation, Request, ResourceType as T, Response, ResponseStatusCode as R};
use serde_json::{json, Value};

struct Cse {
    _dir: tempfile::TempDir,
    _server: Server,
    client: client::Client,
}

impl Cse {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let server = Server::start(&dir.path().join("data"));
        let client = server.client();
        Self {
            _dir: dir,
            _server: server,
            client,
        }
    }

    async fn send(&self, req: Request) -> Response {
        self.client.send(&req).await.expect("an answer")
    }

    async fn op(&self, op: Operation, fr: &str, to: &str, pc: Option<Value>) -> Response {
        let mut req = Request::new(op, to, Some(fr.to_owned()));
        req.pc = pc;
        self.send(req).await
    }

    async fn create(&self, fr: &str, to: &str, ty: T, pc: Value) -> Response {
        let mut req = Request::new(Operation::Create, to, Some(fr.to_owned()));
        req.ty = Some(ty);
        req.pc = Some(pc);
        self.send(req).await
    }

    async fn get(&self, fr: &str, to: &str) -> Response {
        self.op(Operation::Retrieve, fr, to, None).await
    }

    async fn update(&self, fr: &str, to: &str, pc: Value) -> Response {
        self.op(Operation::Update, fr, to, Some(pc)).await
    }

    /// Registers an AE and returns its AE-ID.
    async fn register(&self, rn: &str) -> String {
        let r = self
            .create(
                "C",
                "cse-in",
                T::Ae,
                json!({"m2m:ae": {"rn": rn, "api": "Nreleases", "rr": false, "srv": ["3"]}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        attr(&r, "aei").as_str().expect("aei").to_owned()
    }
}

/// An attribute of the single resource in a response (`Null` when absent).
fn attr(r: &Response, name: &str) -> Value {
    r.pc.as_ref()
        .and_then(Value::as_object)
        .and_then(|m| m.values().next())
        .and_then(|res| res.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_cse_claims_only_the_releases_it_implements() {
    let cse = Cse::start();
    let me = cse.register("me").await;
    // TS-0001 table 9.6.3.2-1: `srv` lists the releases implemented, no more.
    let cb = cse.get(&me, "cse-in").await;
    assert_eq!((cb.rsc, attr(&cb, "srv")), (R::Ok, json!(["2a", "3"])));
    // A release the CSE does not claim: RELEASE_VERSION_NOT_SUPPORTED (TS-0004 clause
    // 7.3.2.1), and the request is not executed.
    for rvi in ["4", "5", "1"] {
        let mut req = Request::new(Operation::Create, "cse-in/me", Some(me.clone()));
        req.ty = Some(T::Container);
        req.pc = Some(json!({"m2m:cnt": {"rn": format!("r{rvi}")}}));
        req.rvi = Some(rvi.to_owned());
        let r = cse.send(req).await;
        assert_eq!(r.rsc, R::ReleaseVersionNotSupported, "rvi {rvi}");
        assert_eq!(
            cse.get(&me, &format!("cse-in/me/r{rvi}")).await.rsc,
            R::NotFound
        );
    }
    for rvi in ["2a", "3"] {
        let mut req = Request::new(Operation::Retrieve, "cse-in/me", Some(me.clone()));
        req.rvi = Some(rvi.to_owned());
        assert_eq!(cse.send(req).await.rsc, R::Ok, "rvi {rvi}");
    }
    cse.create(
        &me,
        "cse-in/me",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    // Attributes of Release 4 and 5: refused as attributes the resource type does not have
    // here (4000); attributes of Release 3 this CSE would not enforce (announcement, links
    // to types it does not host, end-to-end security): NOT_IMPLEMENTED (5001, TS-0004
    // clause 7.3.3.3), or 4000 where the table makes them NP (`li`). Nothing created.
    let refused = [
        (
            T::Container,
            "cse-in/me",
            json!({"m2m:cnt": {"rn": "x", "cstn": me}}),
        ),
        (
            T::Container,
            "cse-in/me",
            json!({"m2m:cnt": {"rn": "x", "at": ["/id-mn"]}}),
        ),
        (
            T::Container,
            "cse-in/me",
            json!({"m2m:cnt": {"rn": "x", "li": "cse-in/loc"}}),
        ),
        (
            T::ContentInstance,
            "cse-in/me/c",
            json!({"m2m:cin": {"rn": "x", "con": "v", "dgt": "20261207T100000"}}),
        ),
        (
            T::ContentInstance,
            "cse-in/me/c",
            json!({"m2m:cin": {"rn": "x", "con": "v", "dcnt": 1}}),
        ),
        (
            T::Subscription,
            "cse-in/me/c",
            json!({"m2m:sub": {"rn": "x", "nu": [me], "nse": true}}),
        ),
        (
            T::Subscription,
            "cse-in/me/c",
            json!({"m2m:sub": {"rn": "x", "nu": [me], "om": {"ops": 1}}}),
        ),
        (
            T::Ae,
            "cse-in",
            json!({"m2m:ae": {"rn": "x", "api": "Nx", "rr": false, "esi": {"esct": [1]}}}),
        ),
        (
            T::Ae,
            "cse-in",
            json!({"m2m:ae": {"rn": "x", "api": "Nx", "rr": false, "nl": "cse-in/node"}}),
        ),
    ];
    for (ty, to, body) in refused {
        let from = if ty == T::Ae { "C" } else { me.as_str() };
        let r = cse.create(from, to, ty, body.clone()).await;
        // `nl` naming no `<node>` is 4000 (see device_management); at/esi are 5001.
        let unsupported = ["at", "esi"].iter().any(|a| {
            body.as_object()
                .and_then(|o| o.values().next())
                .and_then(|v| v.get(a))
                .is_some()
        });
        let want = if unsupported {
            R::NotImplemented
        } else {
            R::BadRequest
        };
        assert_eq!(r.rsc, want, "{body}");
        assert_eq!(
            cse.get(&me, &format!("{to}/x")).await.rsc,
            R::NotFound,
            "{body}"
        );
    }
    let r = cse
        .update(&me, "cse-in/me/c", json!({"m2m:cnt": {"cstn": me}}))
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    assert_eq!(
        attr(&cse.get(&me, "cse-in/me/c").await, "cstn"),
        Value::Null
    );
}

/// A RETRIEVE of `to` with a result content and filter criteria.
async fn get_with(
    cse: &Cse,
    fr: &str,
    to: &str,
    rcn: ResultContent,
    fc: &[(&str, &str)],
) -> Response {
    let mut req = Request::new(Operation::Retrieve, to, Some(fr.to_owned()));
    req.rcn = Some(rcn);
    let mut criteria = FilterCriteria::default();
    for (k, v) in fc {
        criteria.add(k, v).expect("criterion");
    }
    req.fc = criteria;
    cse.send(req).await
}

#[tokio::test]
async fn disable_retrieval_keeps_the_content_instances_unread() {
    let cse = Cse::start();
    let me = cse.register("me").await;
    let other = cse.register("other").await;
    let r = cse
        .create(
            &me,
            "cse-in/me",
            T::Container,
            json!({"m2m:cnt": {"rn": "sealed", "disr": true}}),
        )
        .await;
    assert_eq!((r.rsc, attr(&r, "disr")), (R::Created, json!(true)));
    cse.create(
        &me,
        "cse-in/me",
        T::Container,
        json!({"m2m:cnt": {"rn": "open"}}),
    )
    .await;
    for (cnt, rn) in [("sealed", "s1"), ("sealed", "s2"), ("open", "o1")] {
        let r = cse
            .create(
                &me,
                &format!("cse-in/me/{cnt}"),
                T::ContentInstance,
                json!({"m2m:cin": {"rn": rn, "con": "secret"}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created, "writing stays allowed");
    }
    // A content instance of the container is not read, by any path: OPERATION_NOT_ALLOWED.
    for path in [
        "cse-in/me/sealed/s1",
        "cse-in/me/sealed/la",
        "cse-in/me/sealed/ol",
    ] {
        let r = cse.get(&me, path).await;
        assert_eq!(r.rsc, R::OperationNotAllowed, "{path}");
        let leaked = r.pc.as_ref().is_some_and(|pc| pc.get("m2m:cin").is_some());
        assert!(!leaked, "{path}: {:?}", r.pc);
    }
    // Access control comes first: an originator without privilege learns nothing of disr.
    assert_eq!(
        cse.get(&other, "cse-in/me/sealed/s1").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // The container itself stays readable, and its counters count the instances.
    let c = cse.get(&me, "cse-in/me/sealed").await;
    assert_eq!((c.rsc, attr(&c, "cni")), (R::Ok, json!(2)));
    // No instance among child resources or discovery results.
    let r = get_with(
        &cse,
        &me,
        "cse-in/me/sealed",
        ResultContent::AttributesAndChildResources,
        &[],
    )
    .await;
    assert_eq!(r.rsc, R::Ok);
    assert!(
        r.pc.as_ref()
            .is_some_and(|pc| pc["m2m:cnt"].get("m2m:cin").is_none()),
        "{:?}",
        r.pc
    );
    let r = get_with(
        &cse,
        &me,
        "cse-in/me/sealed",
        ResultContent::ChildResourceReferences,
        &[],
    )
    .await;
    assert_eq!(r.pc, Some(json!({"m2m:rrl": {"rrf": []}})));
    let r = get_with(
        &cse,
        &me,
        "cse-in/me",
        ResultContent::DiscoveryResultReferences,
        &[("fu", "1"), ("ty", "4")],
    )
    .await;
    assert_eq!(r.pc, Some(json!({"m2m:uril": ["cse-in/me/open/o1"]})));
    // A DELETE that would answer with the instance is a read too; one that answers nothing
    // is not.
    let mut delete = Request::new(Operation::Delete, "cse-in/me/sealed/s1", Some(me.clone()));
    delete.rcn = Some(ResultContent::Attributes);
    assert_eq!(cse.send(delete).await.rsc, R::OperationNotAllowed);
    assert_eq!(
        attr(&cse.get(&me, "cse-in/me/sealed").await, "cni"),
        json!(2)
    );
    assert_eq!(
        cse.op(Operation::Delete, &me, "cse-in/me/sealed/s1", None)
            .await
            .rsc,
        R::Deleted
    );

    // Turned off (false, or removed with null), the instances written meanwhile are
    // deleted, so they never become readable; instances written after are read as usual.
    let r = cse
        .update(&me, "cse-in/me/sealed", json!({"m2m:cnt": {"disr": false}}))
        .await;
    assert_eq!(
        (r.rsc, attr(&r, "cni"), attr(&r, "cbs")),
        (R::Updated, json!(0), json!(0))
    );
    assert_eq!(cse.get(&me, "cse-in/me/sealed/s2").await.rsc, R::NotFound);
    assert_eq!(cse.get(&me, "cse-in/me/sealed/la").await.rsc, R::NotFound);
    cse.create(
        &me,
        "cse-in/me/sealed",
        T::ContentInstance,
        json!({"m2m:cin": {"rn": "after", "con": "v"}}),
    )
    .await;
    assert_eq!(cse.get(&me, "cse-in/me/sealed/after").await.rsc, R::Ok);
    cse.update(&me, "cse-in/me/sealed", json!({"m2m:cnt": {"disr": true}}))
        .await;
    cse.create(
        &me,
        "cse-in/me/sealed",
        T::ContentInstance,
        json!({"m2m:cin": {"rn": "hidden", "con": "v"}}),
    )
    .await;
    let r = cse
        .update(&me, "cse-in/me/sealed", json!({"m2m:cnt": {"disr": null}}))
        .await;
    assert_eq!(
        (r.rsc, attr(&r, "cni"), attr(&r, "disr")),
        (R::Updated, json!(0), Value::Null)
    );
    assert_eq!(
        cse.get(&me, "cse-in/me/sealed/hidden").await.rsc,
        R::NotFound
    );
    // Setting it (or keeping it) deletes nothing.
    cse.create(
        &me,
        "cse-in/me/open",
        T::ContentInstance,
        json!({"m2m:cin": {"con": "w"}}),
    )
    .await;
    let r = cse
        .update(&me, "cse-in/me/open", json!({"m2m:cnt": {"disr": true}}))
        .await;
    assert_eq!((r.rsc, attr(&r, "cni")), (R::Updated, json!(2)));
}

#[tokio::test]
async fn the_creator_is_recorded_apart_from_cr_and_follows_a_rotation() {
    let cse = Cse::start();
    let me = cse.register("me").await;
    let other = cse.register("other").await;
    let plain = cse
        .create(
            &me,
            "cse-in/me",
            T::Container,
            json!({"m2m:cnt": {"rn": "plain"}}),
        )
        .await;
    assert_eq!((plain.rsc, attr(&plain, "cr")), (R::Created, Value::Null));
    let asked = cse
        .create(
            &me,
            "cse-in/me",
            T::Container,
            json!({"m2m:cnt": {"rn": "asked", "cr": null}}),
        )
        .await;
    assert_eq!((asked.rsc, attr(&asked, "cr")), (R::Created, json!(me)));
    let spoofed = cse
        .create(
            &me,
            "cse-in/me",
            T::Container,
            json!({"m2m:cnt": {"rn": "spoofed", "cr": other}}),
        )
        .await;
    assert_eq!(spoofed.rsc, R::BadRequest);
    let cin = cse
        .create(
            &me,
            "cse-in/me/plain",
            T::ContentInstance,
            json!({"m2m:cin": {"rn": "i", "con": "v"}}),
        )
        .await;
    assert_eq!((cin.rsc, attr(&cin, "cr")), (R::Created, Value::Null));
    // Neither container names `acpi`: the default policy gives its creator every privilege
    // and nobody else any, with or without `cr`.
    for rn in ["plain", "asked"] {
        let path = format!("cse-in/me/{rn}");
        assert_eq!(cse.get(&me, &path).await.rsc, R::Ok);
        assert_eq!(
            cse.get(&other, &path).await.rsc,
            R::OriginatorHasNoPrivilege
        );
    }

    // The AE rotates its AE-ID (plaintext listener: trusted, no association needed): the
    // creator records follow, and so does the `cr` that was asked for.
    let mut rotate = Request::new(Operation::Create, ".privacy/rotate-ae-id", Some(me.clone()));
    rotate.ty = None;
    let answer = cse.send(rotate).await;
    assert_eq!(answer.rsc, R::Ok, "{:?}", answer.pc);
    let new = attr(&answer, "aei").as_str().expect("new AE-ID").to_owned();
    assert_ne!(new, me);
    for rn in ["plain", "asked"] {
        let path = format!("cse-in/me/{rn}");
        assert_eq!(cse.get(&new, &path).await.rsc, R::Ok, "{path}");
        assert_eq!(
            cse.update(&new, &path, json!({"m2m:cnt": {"lbl": ["kept"]}}))
                .await
                .rsc,
            R::Updated,
            "{path}"
        );
        assert_eq!(
            cse.get(&other, &path).await.rsc,
            R::OriginatorHasNoPrivilege
        );
    }
    assert_eq!(
        attr(&cse.get(&new, "cse-in/me/asked").await, "cr"),
        json!(new)
    );
    assert_eq!(
        attr(&cse.get(&new, "cse-in/me/plain").await, "cr"),
        Value::Null
    );
    assert_eq!(cse.get(&new, "cse-in/me/plain/i").await.rsc, R::Ok);
}
