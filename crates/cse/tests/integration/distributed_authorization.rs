//! `<authorizationDecision>` through `Cse::handle` (TS-0003 clause 7.5.2, TS-0004 clause
//! 7.4.43): this CSE as Policy Decision Point. A PEP allowed to UPDATE the resource asks
//! whether `fr` may do `op` on `to` and gets the decision its policies give; nothing of
//! the question or the answer is kept; only the admin creates one; every change and every
//! decision is audited; a malformed question is 4000 and changes nothing. Then
//! `<authorizationPolicy>` and `<authorizationInformation>` (TS-0003 clauses 7.5.3 and 7.5.4,
//! TS-0004 clauses 7.4.44 and 7.4.45): this CSE as PRP and PIP, and as the CSE that asks
//! the PRPs and PIPs an ACP names in `apri`/`airi`, locally and on a second CSE.
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
    // apri and airi name PRPs and PIPs: a PDP's URL is neither (it is not listed as one),
    // and apri cannot sit beside adri (TS-0001 clause 9.6.2.0): 4000, nothing changed.
    for name in ["apri", "airi"] {
        let r = t
            .update(
                &owner,
                &acp,
                json!({"m2m:acp": { name: [listed.url.clone()] }}),
            )
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{name}");
    }
    assert_eq!(t.retrieve(&owner, &acp).await.pc, before);
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

// === <authorizationPolicy> (PRP) and <authorizationInformation> (PIP) ===

const PRP: &str = "cse-in/prp";
const PIP: &str = "cse-in/pip";

/// The admin's PRP `cse-in/prp` and PIP `cse-in/pip` on `t`, governed by the policy `acp`
/// (who may ask them). Only the admin creates them (TS-0003 clause 7.5.5).
async fn points(t: &TestCse, not_admin: &str, acp: &Value) {
    for (ty, body) in [
        (
            T::AuthorizationPolicy,
            json!({"m2m:aupy": {"rn": "prp", "acpi": [acp]}}),
        ),
        (
            T::AuthorizationInformation,
            json!({"m2m:auif": {"rn": "pip", "acpi": [acp]}}),
        ),
    ] {
        let r = t.create(not_admin, "cse-in", ty, body.clone()).await;
        assert_eq!(r.rsc, R::OriginatorHasNoPrivilege, "{:?}", r.pc);
        let r = t.create(ADMIN, "cse-in", ty, body).await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        assert_eq!(attr(&r, "ty"), json!(ty.code()));
    }
}

/// The `peps` policy of [`setup`] (`pep` may RETRIEVE and UPDATE).
async fn peps(s: &Setup) -> Value {
    attr(&s.t.retrieve(ADMIN, "cse-in/peps").await, "ri")
}

/// An admin policy of the `<CSEBase>` filed in the PRP's repository for `target`.
async fn file_policy(t: &TestCse, rn: &str, target: &str, rules: Value) -> String {
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": rn, "lbl": [format!("prp-target={target}")],
                "pv": {"acr": rules}, "pvs": {"acr": [{"acor": [ADMIN], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    attr(&r, "ri").as_str().expect("ri").to_owned()
}

fn actions(s: &Setup, action: &str) -> usize {
    admin_actions(&s.audit)
        .into_iter()
        .filter(|(a, _)| a == action)
        .count()
}

/// TS-0003 clause 7.5.3, TS-0004 clause 7.4.44.2.3: the PRP answers `ps`, `ca` and `sus`
/// for `to`, keeps nothing, and audits every answer.
#[tokio::test]
async fn the_prp_answers_the_policies_that_apply_to_a_target() {
    let clock = ManualClock::new();
    let s = &setup(&clock).await;
    points(&s.t, &s.pep, &peps(s).await).await;
    let far = json!([{"acor": ["/id-mn/Creader"], "acop": 2}]);
    file_policy(&s.t, "filed", "/id-mn", far.clone()).await;
    let ask_prp = |to: Value| async move {
        s.t.update(&s.pep, PRP, json!({"m2m:aupy": {"to": to}}))
            .await
    };
    // A target on another CSE: the policies filed for it.
    let r = ask_prp(json!("/id-mn/cnt1")).await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!((attr(&r, "sus"), attr(&r, "ca")), (json!(1), json!(1)));
    assert_eq!(attr(&r, "ps"), json!({"pv": [{"acr": far}]}));
    // A target hosted here: the policies that govern it.
    let r = ask_prp(json!(DATA)).await;
    assert_eq!(attr(&r, "sus"), json!(1));
    assert_eq!(attr(&r, "ps")["pv"][0]["acr"][0]["acor"], json!([s.other]));
    // Nothing filed or hosted: NOT_APPLICABLE, no policies (an address is covered whole).
    for to in ["/id-other/x", "/id-mnx/cnt1", "cse-in/nothing"] {
        let r = ask_prp(json!(to)).await;
        assert_eq!(r.rsc, R::Updated, "{to}");
        assert_eq!(
            (attr(&r, "sus"), attr(&r, "ps")),
            (json!(2), Value::Null),
            "{to}"
        );
    }
    assert_eq!(actions(s, "aupy-retrieve"), 5);
    // Misuse: 4000 (or 4103), nothing kept, nothing audited.
    let before = s.t.retrieve(ADMIN, PRP).await.pc;
    for bad in [
        json!({"to": DATA, "lbl": ["x"]}),
        json!({"to": ""}),
        json!({"to": null}),
        json!({"to": DATA, "ps": {"pv": []}}),
        json!({"sus": 1}),
        json!({"to": 5}),
    ] {
        let r = s.t.update(&s.pep, PRP, json!({ "m2m:aupy": bad })).await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}: {:?}", r.pc);
    }
    let r =
        s.t.update(&s.other, PRP, json!({"m2m:aupy": {"to": DATA}}))
            .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    let r =
        s.t.create(
            ADMIN,
            "cse-in",
            T::AuthorizationPolicy,
            json!({"m2m:aupy": {"to": DATA}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    let after = s.t.retrieve(ADMIN, PRP).await.pc;
    assert_eq!(before, after);
    let shown = after
        .and_then(|pc| pc.get("m2m:aupy").cloned())
        .expect("aupy");
    for name in ["to", "ps", "ca", "sus"] {
        assert!(shown.get(name).is_none(), "{name}: {shown}");
    }
    assert_eq!(actions(s, "aupy-retrieve"), 5);
    // Changes of the resource itself are audited; deleted, it answers nothing.
    let r =
        s.t.update(ADMIN, PRP, json!({"m2m:aupy": {"lbl": ["prp"]}}))
            .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(s.t.delete(ADMIN, PRP).await.rsc, R::Deleted);
    for action in ["aupy-create", "aupy-update", "aupy-delete"] {
        assert_eq!(actions(s, action), 1, "{action}");
    }
    assert_eq!(ask_prp(json!(DATA)).await.rsc, R::NotFound);
}

/// TS-0003 clause 7.5.4, TS-0004 clause 7.4.45.2.3: the PIP answers the `<role>`s an
/// originator holds (and the `<token>`s named), keeps nothing, and audits every answer.
#[tokio::test]
async fn the_pip_answers_the_roles_an_originator_holds() {
    let clock = ManualClock::new();
    let s = &setup(&clock).await;
    points(&s.t, &s.pep, &peps(s).await).await;
    let stamp =
        |secs: i64| model::time::format(clock.clock().now() + chrono::Duration::seconds(secs));
    for (rn, rlid, holder) in [
        ("op", "operator", s.pep.clone()),
        ("far", "auditor", "/id-mn/Cfar".to_owned()),
    ] {
        let r =
            s.t.create(
                ADMIN,
                "cse-in",
                T::Role,
                json!({"m2m:rol": {"rn": rn, "rlid": rlid, "tkis": "/id-in",
                    "tkhd": holder, "tknb": stamp(-60), "tkna": stamp(3600)}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    }
    let ask_pip = |q: Value| async move {
        let r = s.t.update(&s.pep, PIP, json!({ "m2m:auif": q })).await;
        assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
        r
    };
    let rlids = |r: &Response| -> Vec<Value> {
        attr(r, "m2m:rol")
            .as_array()
            .map(|a| a.iter().map(|role| role["rlid"].clone()).collect())
            .unwrap_or_default()
    };
    let r = ask_pip(json!({"fr": s.pep})).await;
    assert_eq!(
        (attr(&r, "sus"), rlids(&r)),
        (json!(1), vec![json!("operator")])
    );
    let r = ask_pip(json!({"fr": format!("/id-in/{}", s.pep), "rids": ["operator"]})).await;
    assert_eq!(
        (attr(&r, "sus"), rlids(&r)),
        (json!(1), vec![json!("operator")])
    );
    let r = ask_pip(json!({"fr": "/id-mn/Cfar"})).await;
    assert_eq!(rlids(&r), vec![json!("auditor")]);
    // A role not held, one not named, an unknown token: NOT_APPLICABLE, nothing shown.
    for q in [
        json!({"fr": s.other}),
        json!({"fr": s.pep, "rids": ["auditor"]}),
        json!({"fr": s.pep, "rids": ["nope"], "tids": ["nope"]}),
    ] {
        let r = ask_pip(q.clone()).await;
        assert_eq!((attr(&r, "sus"), rlids(&r)), (json!(2), vec![]), "{q}");
    }
    // Out of the role's period: not held.
    clock.advance(std::time::Duration::from_secs(7200));
    let r = ask_pip(json!({"fr": s.pep})).await;
    assert_eq!(attr(&r, "sus"), json!(2));
    assert_eq!(actions(s, "auif-retrieve"), 7);
    // Misuse: 4000 (or 4103), nothing kept, nothing audited.
    let before = s.t.retrieve(ADMIN, PIP).await.pc;
    for bad in [
        json!({"rids": ["operator"]}),
        json!({"fr": ""}),
        json!({"fr": s.pep, "lbl": ["x"]}),
        json!({"fr": s.pep, "rids": "operator"}),
        json!({"fr": s.pep, "sus": 1}),
        json!({"fr": s.pep, "m2m:rol": []}),
    ] {
        let r = s.t.update(&s.pep, PIP, json!({ "m2m:auif": bad })).await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}: {:?}", r.pc);
    }
    let r =
        s.t.update(&s.other, PIP, json!({"m2m:auif": {"fr": s.pep}}))
            .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    let after = s.t.retrieve(ADMIN, PIP).await.pc;
    assert_eq!(before, after);
    let shown = after
        .and_then(|pc| pc.get("m2m:auif").cloned())
        .expect("auif");
    for name in ["fr", "rids", "tids", "sus", "m2m:rol", "m2m:tk"] {
        assert!(shown.get(name).is_none(), "{name}: {shown}");
    }
    assert_eq!(actions(s, "auif-retrieve"), 7);
    assert_eq!(actions(s, "auif-create"), 1);
}

/// TS-0001 clause 9.6.2.0, TS-0003 clauses 7.5.3 and 7.5.4: a policy whose `pv` grants
/// nothing and that names this CSE's own PRP and PIP grants what the policies filed for the
/// target grant, with the roles the PIP finds; the PDP decides the same way.
#[tokio::test]
async fn a_policy_naming_local_points_grants_what_they_retrieve() {
    let clock = ManualClock::new();
    let s = setup(&clock).await;
    points(&s.t, &s.pep, &peps(&s).await).await;
    let r =
        s.t.create(
            &s.owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "far-acp", "pv": {"acr": []}, "apri": [PRP], "airi": [PIP],
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
            json!({"m2m:cnt": {"rn": "far", "acpi": [acp]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let far = "cse-in/owner/far";
    // Nothing filed yet: refused.
    assert_eq!(
        s.t.retrieve(&s.other, far).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let filed = file_policy(
        &s.t,
        "filed",
        "/id-in/cse-in/owner/far",
        json!([{"acor": [s.other.clone()], "acop": 2}, {"acor": ["operator"], "acop": 4}]),
    )
    .await;
    assert_eq!(s.t.retrieve(&s.other, far).await.rsc, R::Ok);
    assert_eq!(
        s.t.retrieve(&s.pep, far).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // The role the PIP finds for `pep` grants the UPDATE the filed policy gives it.
    let stamp =
        |secs: i64| model::time::format(clock.clock().now() + chrono::Duration::seconds(secs));
    let update = json!({"m2m:cnt": {"lbl": ["x"]}});
    assert_eq!(
        s.t.update(&s.pep, far, update.clone()).await.rsc,
        R::OriginatorHasNoPrivilege
    );
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
    assert_eq!(
        s.t.update(&s.pep, far, update.clone()).await.rsc,
        R::Updated
    );
    assert_eq!(
        s.t.update(&s.other, far, update).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // The PDP decides with them too.
    let r = ask(&s, json!({"to": far, "fr": s.other, "op": 2})).await;
    assert_eq!(answer(&r), (json!(1), json!(1)));
    let r = ask(&s, json!({"to": far, "fr": s.other, "op": 4})).await;
    assert_eq!(answer(&r), (json!(2), json!(1)));
    // Unfiled, the policy grants nothing at the next request (nothing is cached).
    let r =
        s.t.update(ADMIN, &filed, json!({"m2m:acp": {"lbl": ["elsewhere"]}}))
            .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(
        s.t.retrieve(&s.other, far).await.rsc,
        R::OriginatorHasNoPrivilege
    );
}

/// What an `apri`/`airi` entry may name is checked when it is written (4000, nothing
/// changed): a PRP/PIP of this CSE of the right type, or a URL the configuration lists;
/// `apri` never beside `adri` (TS-0001 clause 9.6.2.0).
#[tokio::test]
async fn apri_and_airi_name_points_of_the_right_kind_only() {
    let clock = ManualClock::new();
    let s = setup(&clock).await;
    points(&s.t, &s.pep, &peps(&s).await).await;
    let r =
        s.t.create(
            &s.owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "named", "pv": {"acr": []},
                "pvs": {"acr": [{"acor": [s.owner.clone()], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let acp = attr(&r, "ri").as_str().expect("ri").to_owned();
    let before = s.t.retrieve(&s.owner, &acp).await.pc;
    for bad in [
        json!({"apri": [PIP]}),
        json!({"airi": [PRP]}),
        json!({"apri": [PDP]}),
        json!({"apri": ["cse-in/nothing"]}),
        json!({"apri": ["http://127.0.0.1:9/cse-in/prp"]}),
        json!({"airi": ["https://pip.example/cse-in/pip"]}),
        json!({"apri": [PRP], "adri": ["http://127.0.0.1:9/cse-in/pdp"]}),
    ] {
        let r = s.t.update(&s.owner, &acp, json!({ "m2m:acp": bad })).await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}: {:?}", r.pc);
    }
    assert_eq!(s.t.retrieve(&s.owner, &acp).await.pc, before);
    let r =
        s.t.update(
            &s.owner,
            &acp,
            json!({"m2m:acp": {"apri": [PRP], "airi": [PIP]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "apri"), json!([PRP]));
    // Only who holds the policy's self-privileges names them.
    let r =
        s.t.update(&s.other, &acp, json!({"m2m:acp": {"apri": []}}))
            .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
}

/// A CSE acting as PRP and PIP for another (communication modes c and e of TS-0003 clause
/// 7.5): `b` is a second CSE reached over the network, as the authenticated CSE `/id-mn`.
struct Remote {
    b: Arc<TestCse>,
    prp: String,
    pip: String,
}

impl Remote {
    /// `b` with its PRP and PIP (that `/id-mn` may ask) and the policy filed for `/id-mn`:
    /// holders of the role `reader` may RETRIEVE.
    async fn start() -> Self {
        let b = Arc::new(TestCse::new().await);
        let r = b
            .create(
                ADMIN,
                "cse-in",
                T::AccessControlPolicy,
                json!({"m2m:acp": {"rn": "peers", "pv": {"acr": [{"acor": ["/id-mn"], "acop": 4}]},
                    "pvs": {"acr": [{"acor": [ADMIN], "acop": 63}]}}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        let peers = attr(&r, "ri");
        let nobody = b.register("nobody").await;
        points(&b, &nobody, &peers).await;
        file_policy(&b, "mn", "/id-mn", json!([{"acor": ["reader"], "acop": 2}])).await;
        let mut remote = Self {
            b,
            prp: String::new(),
            pip: String::new(),
        };
        remote.prp = remote.route(PRP);
        remote.pip = remote.route(PIP);
        remote
    }

    /// A URL on the in-memory network whose requests reach `to` on `b`, as from the
    /// authenticated CSE `/id-mn`.
    fn route(&self, to: &'static str) -> String {
        let b = self.b.clone();
        let reg = Arc::new(security::association::Registry::default());
        let ctx = over(
            &reg,
            cse::ListenerRole::Mca,
            established(
                security::association::Framework::Certificate,
                "mn-cert",
                security::association::PeerIdentity::Cse("/id-mn".into()),
            ),
        );
        listen(
            to,
            Arc::new(move |mut req: Request| {
                req.to = to.to_owned();
                let (b, ctx) = (b.clone(), ctx.clone());
                common::answer(async move { Ok(b.send_ctx(&ctx, req).await) })
            }),
        )
    }

    /// The role `reader`, issued by `b` to `holder` for the next hour.
    async fn assign_reader(&self, holder: &str) {
        let now = model::time::now();
        let r = self
            .b
            .create(
                ADMIN,
                "cse-in",
                T::Role,
                json!({"m2m:rol": {"rlid": "reader", "tkis": "/id-in", "tkhd": holder,
                    "tknb": model::time::format(now - chrono::Duration::minutes(1)),
                    "tkna": model::time::format(now + chrono::Duration::hours(1))}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    }
}

/// `id-mn`, a CSE listing `prps` and `pips`, with `owner`, `other` and the owner's
/// container `far` whose policy grants nothing and names `apri` and `airi`. Returns the
/// CSE and `other`.
async fn host(prps: &[&str], pips: &[&str], apri: &[&str], airi: &[&str]) -> (TestCse, String) {
    let mut config = cse::CseConfig {
        cse_id: "id-mn".into(),
        ..Default::default()
    };
    config.dynamic_authorization.prp_urls =
        cse::config::DasUrls::new(prps.iter().map(|u| u.to_string()));
    config.dynamic_authorization.pip_urls =
        cse::config::DasUrls::new(pips.iter().map(|u| u.to_string()));
    let t = TestCse::with_config(config).await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "far-acp", "pv": {"acr": []}, "apri": apri, "airi": airi,
                "pvs": {"acr": [{"acor": [owner.clone()], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let acp = attr(&r, "ri");
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": "far", "acpi": [acp]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    (t, other)
}

async fn read_far(t: &TestCse, fr: &str, rids: &[&str]) -> R {
    let mut req = Request::new(Operation::Retrieve, "cse-in/owner/far", Some(fr.to_owned()));
    req.rids = rids.iter().map(|r| r.to_string()).collect();
    t.send(req).await.rsc
}

/// TS-0003 clause 7.5, modes c and e: the hosting CSE `id-mn` retrieves the policies for its
/// container from the PRP of another CSE and the originator's roles from that CSE's PIP,
/// and grants what they grant together.
#[tokio::test]
async fn a_remote_prp_and_pip_are_asked_when_the_rules_refuse() {
    let remote = Remote::start().await;
    let (prp, pip) = (remote.prp.as_str(), remote.pip.as_str());
    let (t, other) = host(&[prp], &[pip], &[prp], &[pip]).await;
    // The remote policy grants holders of `reader`; `other` holds none yet.
    assert_eq!(
        read_far(&t, &other, &["reader"]).await,
        R::OriginatorHasNoPrivilege
    );
    remote.assign_reader(&format!("/id-mn/{other}")).await;
    assert_eq!(read_far(&t, &other, &["reader"]).await, R::Ok);
    assert_eq!(read_far(&t, &other, &[]).await, R::Ok);
    // A request naming other roles does not use this one; another AE holds none.
    assert_eq!(
        read_far(&t, &other, &["writer"]).await,
        R::OriginatorHasNoPrivilege
    );
    let stranger = t.register("stranger").await;
    assert_eq!(
        read_far(&t, &stranger, &["reader"]).await,
        R::OriginatorHasNoPrivilege
    );
    // The PRP grants RETRIEVE only.
    let r = t
        .update(
            &other,
            "cse-in/owner/far",
            json!({"m2m:cnt": {"lbl": ["x"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
}

#[tokio::test]
async fn a_prp_or_pip_that_fails_leaves_the_refusal() {
    let acr = json!({"acr": [{"acor": ["all"], "acop": 63}]});
    let answers = [
        RemotePdp::start(Err(())),
        RemotePdp::start(Ok((R::Updated, json!({"m2m:aupy": {"sus": 1, "ps": "x"}})))),
        RemotePdp::start(Ok((
            R::Updated,
            json!({"m2m:aupy": {"sus": 1, "ca": 7, "ps": {"pv": [acr]}}}),
        ))),
        RemotePdp::start(Ok((R::Updated, json!({"m2m:aupy": {"sus": 5}})))),
        RemotePdp::start(Ok((R::OriginatorHasNoPrivilege, json!({"m2m:dbg": "no"})))),
        RemotePdp::start(Ok((
            R::Ok,
            json!({"m2m:aupy": {"sus": 1, "ca": 1, "ps": {"pv": [acr]}}}),
        ))),
    ];
    for prp in &answers {
        let url = prp.url.as_str();
        let (t, other) = host(&[url], &[], &[url], &[]).await;
        assert_eq!(read_far(&t, &other, &[]).await, R::OriginatorHasNoPrivilege);
        assert_eq!(prp.asked().len(), 1);
        let q = &prp.asked()[0];
        assert_eq!(
            (q["op"].clone(), q["fr"].clone()),
            (json!(3), json!("/id-mn"))
        );
        assert!(q["pc"]["m2m:aupy"]["to"]
            .as_str()
            .is_some_and(|to| to.starts_with("/id-mn/")));
    }
    // NOT_APPLICABLE or no answer moves to the next; a well-formed OK answer grants.
    let down = RemotePdp::start(Err(()));
    let none = RemotePdp::start(Ok((R::Updated, json!({"m2m:aupy": {"sus": 2}}))));
    let ok = RemotePdp::start(Ok((
        R::Updated,
        json!({"m2m:aupy": {"sus": 1, "ca": 1,
        "ps": {"pv": [{"acr": [{"acor": ["all"], "acop": 2}]}]}}}),
    )));
    let all = [down.url.as_str(), none.url.as_str(), ok.url.as_str()];
    let (t, other) = host(&all, &[], &all, &[]).await;
    assert_eq!(read_far(&t, &other, &[]).await, R::Ok);
    assert_eq!(
        (down.asked().len(), none.asked().len(), ok.asked().len()),
        (1, 1, 1)
    );
    // A PIP answering garbage gives no role.
    let pip = RemotePdp::start(Ok((
        R::Updated,
        json!({"m2m:auif": {"sus": 1, "m2m:rol": "x"}}),
    )));
    let prp = RemotePdp::start(Ok((
        R::Updated,
        json!({"m2m:aupy": {"sus": 1, "ca": 1,
        "ps": {"pv": [{"acr": [{"acor": ["reader"], "acop": 2}]}]}}}),
    )));
    let (prp_url, pip_url) = (prp.url.as_str(), pip.url.as_str());
    let (t, other) = host(&[prp_url], &[pip_url], &[prp_url], &[pip_url]).await;
    assert_eq!(
        read_far(&t, &other, &["reader"]).await,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(pip.asked()[0]["pc"]["m2m:auif"]["rids"], json!(["reader"]));
}

/// TS-0003 clause 7.5.2, communication mode a between two CSEs: the PEP `id-mn` asks the PDP
/// of another CSE about its own container; that PDP decides by the policies its repository
/// files for `/id-mn` and the roles it assigns, named by the request.
#[tokio::test]
async fn a_pep_asks_the_pdp_of_another_cse_which_decides_from_its_repository() {
    let remote = Remote::start().await;
    let peers = attr(&remote.b.retrieve(ADMIN, "cse-in/peers").await, "ri");
    let r = remote
        .b
        .create(
            ADMIN,
            "cse-in",
            T::AuthorizationDecision,
            json!({"m2m:auds": {"rn": "pdp", "acpi": [peers]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let pdp = remote.route(PDP);
    let mut config = cse::CseConfig {
        cse_id: "id-mn".into(),
        ..Default::default()
    };
    config.dynamic_authorization.pdp_urls = cse::config::DasUrls::new([pdp.clone()]);
    let t = TestCse::with_config(config).await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "far-acp", "pv": {"acr": []}, "adri": [pdp],
                "pvs": {"acr": [{"acor": [owner.clone()], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let acp = attr(&r, "ri");
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": "far", "acpi": [acp]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert_eq!(
        read_far(&t, &other, &["reader"]).await,
        R::OriginatorHasNoPrivilege
    );
    remote.assign_reader(&format!("/id-mn/{other}")).await;
    assert_eq!(read_far(&t, &other, &["reader"]).await, R::Ok);
    // The PDP counts a role only when the request names it; RETRIEVE only.
    assert_eq!(read_far(&t, &other, &[]).await, R::OriginatorHasNoPrivilege);
    let r = t
        .update(
            &other,
            "cse-in/owner/far",
            json!({"m2m:cnt": {"lbl": ["x"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
}
