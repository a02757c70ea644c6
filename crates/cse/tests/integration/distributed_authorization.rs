//! `<authorizationDecision>` through `Cse::handle` (TS-0003 clause 7.5.2, TS-0004 clause
//! 7.4.43): this CSE as Policy Decision Point. A PEP allowed to UPDATE the resource asks
//! whether `fr` may do `op` on `to` and gets the decision its policies give; nothing of
//! the question or the answer is kept; only the admin creates one; every change and every
//! decision is audited; a malformed question is 4000 and changes nothing.
use crate::common;

use common::*;
use model::clock::ManualClock;
use model::{Operation, Request, ResourceType as T, Response, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::Arc;

const DATA: &str = "cse-in/owner/data";
const PDP: &str = "cse-in/pdp";

/// A CSE with an audit trail (its file), AEs `owner`, `other` and `pep`, the owner's
/// container readable by `other` and updatable by holders of the role `operator`, and the
/// admin's `<authorizationDecision>` `cse-in/pdp` that `pep` may UPDATE.
struct Setup {
    t: TestCse,
    audit: std::path::PathBuf,
    owner: String,
    other: String,
    pep: String,
}

async fn setup(clock: &ManualClock) -> Setup {
    let (t, path) = TestCse::with_audit(clocked(clock)).await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    let pep = t.register("pep").await;
    t.guarded_container(
        &owner,
        "cse-in/owner",
        "rules",
        json!([{"acor": [other.clone()], "acop": 2}, {"acor": ["operator"], "acop": 4}]),
    )
    .await;
    let r = t
        .created(
            ADMIN,
            "cse-in",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "peps", "pv": {"acr": [{"acor": [pep.clone()], "acop": 6}]},
                "pvs": {"acr": [{"acor": [ADMIN], "acop": 63}]}}}),
        )
        .await;
    let acp = attr(&r, "ri");
    let r = t
        .created(
            ADMIN,
            "cse-in",
            T::AuthorizationDecision,
            json!({"m2m:auds": {"rn": "pdp", "acpi": [acp]}}),
        )
        .await;
    assert_eq!(attr(&r, "ty"), json!(35));
    Setup {
        t,
        audit: path,
        owner,
        other,
        pep,
    }
}

fn decisions(path: &std::path::Path) -> Vec<String> {
    admin_actions(path)
        .into_iter()
        .filter(|(a, _)| a == "auds-decide")
        .map(|(_, t)| t)
        .collect()
}

async fn ask(s: &Setup, question: Value) -> Response {
    s.t.update(&s.pep, PDP, json!({ "m2m:auds": question }))
        .await
}

/// `(dec, sus)` of an answer.
fn answer(r: &Response) -> (Value, Value) {
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    (attr(r, "dec"), attr(r, "sus"))
}

/// What a RETRIEVE of the PDP shows, for "nothing was kept" and "nothing changed".
async fn stored(s: &Setup) -> Value {
    let r = s.t.retrieve(ADMIN, PDP).await;
    assert_eq!(r.rsc, R::Ok);
    r.pc.and_then(|pc| pc.get("m2m:auds").cloned())
        .expect("representation")
}

#[tokio::test]
async fn the_pdp_decides_as_the_policies_of_the_target_would() {
    let clock = ManualClock::new();
    let s = setup(&clock).await;
    let srt = attr(&s.t.retrieve(ADMIN, "cse-in").await, "srt");
    assert!(
        srt.as_array().is_some_and(|a| a.contains(&json!(35))),
        "{srt}"
    );
    let permit = (json!(1), json!(1));
    let deny = (json!(2), json!(1));
    let r = ask(&s, json!({"to": DATA, "fr": s.other, "op": 2})).await;
    assert_eq!(answer(&r), permit);
    // And the real request agrees.
    assert_eq!(s.t.retrieve(&s.other, DATA).await.rsc, R::Ok);
    for (fr, op) in [(&s.other, 3), (&s.pep, 2), (&s.owner, 2), (&s.other, 4)] {
        let r = ask(&s, json!({"to": DATA, "fr": fr, "op": op})).await;
        assert_eq!(answer(&r), deny, "{fr} {op}");
    }
    assert_eq!(
        s.t.retrieve(&s.pep, DATA).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // The admin is privileged everywhere; the ri form of `to` works like the path.
    let ri = s.t.retrieve(ADMIN, DATA).await;
    let ri = attr(&ri, "ri");
    let r = ask(&s, json!({"to": ri, "fr": ADMIN, "op": 4})).await;
    assert_eq!(answer(&r), permit);
    // Discovery: a RETRIEVE with discovery filter usage needs the DISCOVERY privilege.
    let r = ask(
        &s,
        json!({"to": DATA, "fr": s.other, "op": 2, "fu": {"fu": 1}}),
    )
    .await;
    assert_eq!(answer(&r), deny);
    // Only the answer comes back with rcn=9.
    let mut req = Request::new(Operation::Update, PDP, Some(s.pep.clone()));
    req.pc = Some(json!({"m2m:auds": {"to": DATA, "fr": s.other, "op": 2}}));
    req.rcn = Some(model::ResultContent::ModifiedAttributes);
    let r = s.t.send(req).await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(r.pc, Some(json!({"m2m:auds": {"dec": 1, "sus": 1}})));
    // Nothing of the questions or the answers is kept.
    let kept = stored(&s).await;
    for name in ["to", "fr", "op", "dec", "sus", "fu"] {
        assert!(kept.get(name).is_none(), "{name} kept: {kept}");
    }
    // Every decision is on the audit trail, with its question and answer.
    let audited = decisions(&s.audit);
    assert_eq!(audited.len(), 8, "{audited:?}");
    assert!(audited[0].contains(&format!("fr={} op=2 dec=1 sus=1", s.other)));
    assert!(audited[1].contains("dec=2 sus=1"));
}

#[tokio::test]
async fn roles_and_addresses_count_as_in_a_request() {
    let clock = ManualClock::new();
    let s = setup(&clock).await;
    let stamp =
        |secs: i64| model::time::format(clock.clock().now() + chrono::Duration::seconds(secs));
    let r =
        s.t.create(
            ADMIN,
            "cse-in",
            T::Role,
            json!({"m2m:rol": {"rn": "op", "rlid": "operator", "tkis": "/id-in",
                "tkhd": s.pep, "tknb": stamp(-60), "tkna": stamp(3600)}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let update = |fr: &str, rids: Value| json!({"to": DATA, "fr": fr, "op": 3, "rids": rids});
    let r = ask(&s, update(&s.pep, json!(["operator"]))).await;
    assert_eq!(answer(&r), (json!(1), json!(1)));
    // Not naming the role, or naming it for an originator that does not hold it: denied.
    let r = ask(&s, update(&s.pep, json!([]))).await;
    assert_eq!(answer(&r), (json!(2), json!(1)));
    let r = ask(&s, update(&s.other, json!(["operator"]))).await;
    assert_eq!(answer(&r), (json!(2), json!(1)));
    // At a time outside the role's period: denied.
    let mut late = update(&s.pep, json!(["operator"]));
    late["rtm"] = json!(stamp(7200));
    let r = ask(&s, late).await;
    assert_eq!(answer(&r), (json!(2), json!(1)));
    // An originator address is a fact the rule's ipv4 condition reads.
    let r =
        s.t.create(
            &s.owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "lan-acp", "pv": {"acr": [{"acor": [s.pep.clone()], "acop": 2,
                "acco": [{"acip": {"ipv4": ["10.0.0.0/8"]}}]}]},
                "pvs": {"acr": [{"acor": [s.owner.clone()], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let acp = attr(&r, "ri");
    let r =
        s.t.create(
            &s.owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": "lan", "acpi": [acp]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let at = |ip: &str| json!({"to": "cse-in/owner/lan", "fr": s.pep, "op": 2, "oip": {"ipv4Address": ip}});
    assert_eq!(answer(&ask(&s, at("10.1.2.3")).await), (json!(1), json!(1)));
    assert_eq!(
        answer(&ask(&s, at("192.0.2.1")).await),
        (json!(2), json!(1))
    );
    let unknown = json!({"to": "cse-in/owner/lan", "fr": s.pep, "op": 2});
    assert_eq!(answer(&ask(&s, unknown).await), (json!(2), json!(1)));
}

#[tokio::test]
async fn what_the_pdp_cannot_decide_has_a_status_and_no_decision() {
    let clock = ManualClock::new();
    let s = setup(&clock).await;
    let cases = [
        // No such target, or one on another CSE: no policy applies.
        (json!({"to": "cse-in/nothing", "fr": s.other, "op": 2}), 2),
        (json!({"to": "/other-cse/x", "fr": s.other, "op": 2}), 2),
        // An originator this CSE does not know.
        (json!({"to": DATA, "fr": "Cnobody", "op": 2}), 2),
        // A CREATE without the type to create.
        (json!({"to": DATA, "fr": s.other, "op": 1}), 3),
        // A token that does not verify.
        (
            json!({"to": DATA, "fr": s.other, "op": 2, "tkns": ["not.a.jwt"]}),
            4,
        ),
        // A Token-ID nobody holds.
        (
            json!({"to": DATA, "fr": s.other, "op": 2, "tids": ["nope"]}),
            4,
        ),
    ];
    for (question, sus) in cases {
        let r = ask(&s, question.clone()).await;
        assert_eq!(answer(&r), (Value::Null, json!(sus)), "{question}");
    }
    let r = ask(
        &s,
        json!({"to": "cse-in/owner", "fr": s.other, "op": 1, "rrt": 3}),
    )
    .await;
    assert_eq!(answer(&r), (json!(2), json!(1)));
    assert_eq!(decisions(&s.audit).len(), 7);
}

#[tokio::test]
async fn misuse_is_refused_with_its_code_and_changes_nothing() {
    let clock = ManualClock::new();
    let s = setup(&clock).await;
    let before = stored(&s).await;
    // Only the admin creates one, under the <CSEBase> only.
    let r =
        s.t.create(
            &s.pep,
            "cse-in/pep",
            T::AuthorizationDecision,
            json!({"m2m:auds": {}}),
        )
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType, "{:?}", r.pc);
    let r =
        s.t.create(
            &s.pep,
            "cse-in",
            T::AuthorizationDecision,
            json!({"m2m:auds": {}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege, "{:?}", r.pc);
    // A question is not stored at creation; the answer is never written by a request.
    for bad in [
        json!({"m2m:auds": {"rn": "x", "to": DATA}}),
        json!({"m2m:auds": {"rn": "x", "dec": 1}}),
    ] {
        let r =
            s.t.create(ADMIN, "cse-in", T::AuthorizationDecision, bad.clone())
                .await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}");
    }
    // Asking without UPDATE privilege on the PDP.
    let r =
        s.t.update(
            &s.other,
            PDP,
            json!({"m2m:auds": {"to": DATA, "fr": s.other, "op": 2}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    // Malformed questions: 4000.
    for bad in [
        json!({"to": DATA, "fr": s.other}),
        json!({"to": DATA, "op": 2}),
        json!({"fr": s.other, "op": 2}),
        json!({"to": DATA, "fr": s.other, "op": 2, "lbl": ["x"]}),
        json!({"to": DATA, "fr": s.other, "op": 2, "et": "20991231T000000"}),
        json!({"to": DATA, "fr": s.other, "op": 2, "dec": 1}),
        json!({"to": DATA, "fr": s.other, "op": 9}),
        json!({"to": DATA, "fr": s.other, "op": 2, "rrt": 999}),
        json!({"to": DATA, "fr": s.other, "op": 2, "rtm": "yesterday"}),
        json!({"to": DATA, "fr": s.other, "op": 2, "rids": "operator"}),
        json!({"to": DATA, "fr": s.other, "op": 2, "tids": null}),
        json!({"to": DATA, "fr": s.other, "op": 2, "oip": {"ipv4Address": "fe80::1"}}),
        json!({"to": "a b", "fr": s.other, "op": 2}),
    ] {
        let r = ask(&s, bad.clone()).await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}: {:?}", r.pc);
    }
    assert_eq!(stored(&s).await, before);
    assert!(decisions(&s.audit).is_empty());
    assert_eq!(
        s.t.cse
            .store()
            .children("id-in", Some(T::AuthorizationDecision))
            .expect("children")
            .len(),
        1
    );
}

#[tokio::test]
async fn changes_to_the_resource_itself_are_audited() {
    let clock = ManualClock::new();
    let s = setup(&clock).await;
    let r =
        s.t.update(ADMIN, PDP, json!({"m2m:auds": {"lbl": ["lab"]}}))
            .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "lbl"), json!(["lab"]));
    assert_eq!(s.t.delete(ADMIN, PDP).await.rsc, R::Deleted);
    let actions: Vec<String> = admin_actions(&s.audit)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    for want in ["auds-create", "auds-update", "auds-delete"] {
        assert!(actions.iter().any(|a| a == want), "{want}: {actions:?}");
    }
    let r = ask(&s, json!({"to": DATA, "fr": s.other, "op": 2})).await;
    assert_eq!(r.rsc, R::NotFound);
}

/// A remote PDP on the in-memory network: records each question and gives the answer set.
struct RemotePdp {
    url: String,
    asked: Arc<std::sync::Mutex<Vec<Value>>>,
}

impl RemotePdp {
    /// `answer`: `Ok((rsc, pc))` sent back, or `Err(())` for an unreachable PDP.
    fn start(answer: std::result::Result<(R, Value), ()>) -> Self {
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        let url = listen(
            "cse-in/pdp",
            Arc::new(move |req: Request| {
                log.lock()
                    .expect("lock")
                    .push(json!({"op": req.op.code(), "fr": req.fr, "pc": req.pc}));
                let out = answer.clone();
                common::answer(async move {
                    match out {
                        Ok((rsc, pc)) => Ok(Response::new(rsc, &req.rqi, Some(pc))),
                        Err(()) => Err(cse::outbound::DeliveryError::Unreachable("closed".into())),
                    }
                })
            }),
        );
        Self { url, asked }
    }

    fn answering(dec: Option<u64>, sus: u64) -> Self {
        let mut auds = json!({"sus": sus});
        if let Some(dec) = dec {
            auds["dec"] = json!(dec);
        }
        Self::start(Ok((R::Updated, json!({ "m2m:auds": auds }))))
    }

    fn asked(&self) -> Vec<Value> {
        self.asked.lock().expect("lock").clone()
    }
}

/// A PEP whose configuration lists `pdps`, with AEs `owner` and `other` and the owner's
/// container whose policy grants nothing to `other` and names `adri` (its ri returned).
async fn pep(pdps: &[&RemotePdp], adri: &[&RemotePdp]) -> (TestCse, String, String, String) {
    let mut config = cse::CseConfig::default();
    config.dynamic_authorization.pdp_urls =
        cse::config::DasUrls::new(pdps.iter().map(|p| p.url.clone()));
    let t = TestCse::with_config(config).await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    let adri: Vec<String> = adri.iter().map(|p| p.url.clone()).collect();
    let r = t
        .created(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "remote", "adri": adri,
                "pv": {"acr": [{"acor": [owner.clone()], "acop": 63}]},
                "pvs": {"acr": [{"acor": [owner.clone()], "acop": 63}]}}}),
        )
        .await;
    let acp = attr(&r, "ri").as_str().expect("ri").to_owned();
    t.created(
        &owner,
        "cse-in/owner",
        T::Container,
        json!({"m2m:cnt": {"rn": "data", "acpi": [acp.clone()]}}),
    )
    .await;
    (t, owner, other, acp)
}

#[tokio::test]
async fn the_pep_asks_the_remote_pdp_its_policy_names_when_the_rules_refuse() {
    let pdp = RemotePdp::answering(Some(1), 1);
    let (t, owner, other, _) = pep(&[&pdp], &[&pdp]).await;
    // The owner's own rule grants: no PDP is asked.
    assert_eq!(t.retrieve(&owner, DATA).await.rsc, R::Ok);
    assert!(pdp.asked().is_empty());
    // `other` has no rule: the PDP is asked, by UPDATE from this CSE, and permits.
    assert_eq!(t.retrieve(&other, DATA).await.rsc, R::Ok);
    let asked = pdp.asked();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["op"], json!(3));
    assert_eq!(asked[0]["fr"], json!("/id-in"));
    let q = &asked[0]["pc"]["m2m:auds"];
    let ri = attr(&t.retrieve(&owner, DATA).await, "ri");
    assert_eq!(
        q["to"],
        json!(format!("/id-in/{}", ri.as_str().expect("ri")))
    );
    assert_eq!(q["fr"], json!(format!("/id-in/{other}")));
    assert_eq!(q["op"], json!(2));
    assert!(q.get("tkns").is_none());
    // A CREATE tells the type; a DELETE its operation.
    t.created(
        &other,
        DATA,
        T::ContentInstance,
        json!({"m2m:cin": {"con": "x"}}),
    )
    .await;
    let q = pdp.asked()[1]["pc"]["m2m:auds"].clone();
    assert_eq!((q["op"].clone(), q["rrt"].clone()), (json!(1), json!(4)));
}

#[tokio::test]
async fn anything_but_a_permit_with_status_ok_leaves_the_refusal() {
    let answers = [
        RemotePdp::answering(Some(2), 1),
        RemotePdp::answering(Some(1), 3),
        RemotePdp::answering(Some(1), 5),
        RemotePdp::answering(None, 1),
        RemotePdp::start(Ok((R::Updated, json!({"m2m:auds": {"dec": 1}})))),
        RemotePdp::start(Ok((R::Ok, json!({"m2m:auds": {"dec": 1, "sus": 1}})))),
        RemotePdp::start(Ok((R::OriginatorHasNoPrivilege, json!({"m2m:dbg": "no"})))),
        RemotePdp::start(Err(())),
    ];
    for pdp in &answers {
        let (t, _, other, _) = pep(&[pdp], &[pdp]).await;
        assert_eq!(
            t.retrieve(&other, DATA).await.rsc,
            R::OriginatorHasNoPrivilege
        );
        assert_eq!(pdp.asked().len(), 1);
    }
}

#[tokio::test]
async fn not_applicable_or_no_answer_moves_to_the_next_pdp() {
    let unreachable = RemotePdp::start(Err(()));
    let not_applicable = RemotePdp::answering(None, 2);
    let permit = RemotePdp::answering(Some(1), 1);
    let all = [&unreachable, &not_applicable, &permit];
    let (t, _, other, _) = pep(&all, &all).await;
    assert_eq!(t.retrieve(&other, DATA).await.rsc, R::Ok);
    for pdp in all {
        assert_eq!(pdp.asked().len(), 1);
    }
    // A DENY ends the consultation: the PDP after it is not asked.
    let deny = RemotePdp::answering(Some(2), 1);
    let after = RemotePdp::answering(Some(1), 1);
    let (t, _, other, _) = pep(&[&deny, &after], &[&deny, &after]).await;
    assert_eq!(
        t.retrieve(&other, DATA).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert!(after.asked().is_empty());
}

#[tokio::test]
async fn only_listed_pdps_may_be_named_or_asked() {
    let listed = RemotePdp::answering(Some(1), 1);
    let unlisted = RemotePdp::answering(Some(1), 1);
    let (t, owner, other, acp) = pep(&[&listed], &[]).await;
    let acp_body = |adri: &[&str]| {
        json!({"m2m:acp": {"rn": "again", "adri": adri,
            "pv": {"acr": [{"acor": [owner.clone()], "acop": 63}]},
            "pvs": {"acr": [{"acor": [owner.clone()], "acop": 63}]}}})
    };
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            acp_body(&[&unlisted.url]),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest, "{:?}", r.pc);
    let before = t.retrieve(&owner, &acp).await.pc;
    let r = t
        .update(
            &owner,
            &acp,
            json!({"m2m:acp": {"adri": [unlisted.url.clone()]}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest, "{:?}", r.pc);
    assert_eq!(t.retrieve(&owner, &acp).await.pc, before);
    // apri and airi are defined but not supported: 5001, not ignored (TS-0004 7.3.3.4).
    for name in ["apri", "airi"] {
        let r = t
            .update(
                &owner,
                &acp,
                json!({"m2m:acp": { name: [listed.url.clone()] }}),
            )
            .await;
        assert_eq!(r.rsc, R::NotImplemented, "{name}");
    }
    // Only who holds the policy's self-privileges names a PDP.
    let r = t
        .update(
            &other,
            &acp,
            json!({"m2m:acp": {"adri": [listed.url.clone()]}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    assert_eq!(
        t.retrieve(&other, DATA).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert!(listed.asked().is_empty() && unlisted.asked().is_empty());
    // Named by its owner, the listed PDP is asked.
    let r = t
        .update(
            &owner,
            &acp,
            json!({"m2m:acp": {"adri": [listed.url.clone()]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(t.retrieve(&other, DATA).await.rsc, R::Ok);
    assert_eq!(listed.asked().len(), 1);
}

#[tokio::test]
async fn at_most_four_pdps_are_asked_for_one_request() {
    let silent: Vec<RemotePdp> = (0..4).map(|_| RemotePdp::answering(None, 2)).collect();
    let fifth = RemotePdp::answering(Some(1), 1);
    let all: Vec<&RemotePdp> = silent.iter().chain([&fifth]).collect();
    let (t, _, other, _) = pep(&all, &all).await;
    assert_eq!(
        t.retrieve(&other, DATA).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    for pdp in &silent {
        assert_eq!(pdp.asked().len(), 1);
    }
    assert!(fifth.asked().is_empty());
}
