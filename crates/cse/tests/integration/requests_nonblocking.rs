//! Non-blocking requests and `<request>` resources (TS-0004 clauses 7.3.2.2 to 7.3.2.5,
//! 7.4.12, 7.5.1.2.5): the acknowledgement with the `<request>` reference, the result
//! fetched (rt=1) or notified (rt=2), `oet`, `rset` and `rp`, who may reach the
//! `<request>`, recall by DELETE, the bound per originator, and a restart.

use crate::common::*;
use model::{Operation, Request, ResourceType as T, Response, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// A request from `fr` with response type `rt`.
fn non_blocking(op: Operation, fr: &str, to: &str, rt: u8) -> Request {
    let mut req = Request::new(op, to, Some(fr.to_owned()));
    req.rt = Some(rt);
    req
}

fn container(fr: &str, to: &str, rn: &str, rt: u8) -> Request {
    let mut req = non_blocking(Operation::Create, fr, to, rt);
    req.ty = Some(T::Container);
    req.pc = Some(json!({"m2m:cnt": {"rn": rn}}));
    req
}

/// The `<request>` reference of an acknowledgement.
fn reference(resp: &Response) -> String {
    resp.pc
        .as_ref()
        .and_then(|pc| pc.get("m2m:uri"))
        .and_then(Value::as_str)
        .expect("an m2m:uri")
        .to_owned()
}

/// Reads the `<request>` as `fr` until its status is no longer PENDING (bounded).
async fn finished(t: &TestCse, fr: &str, ri: &str) -> Value {
    for _ in 0..500 {
        let r = t.retrieve(fr, ri).await;
        assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
        let req = r.pc.as_ref().map(|pc| pc["m2m:req"].clone());
        if let Some(req) = req.filter(|q| q["rs"] != json!(3)) {
            return req;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("<request> {ri} still pending");
}

fn requests_held(t: &TestCse) -> usize {
    t.cse
        .store()
        .children("id-in", Some(T::Request))
        .expect("children")
        .len()
}

#[tokio::test]
async fn a_synchronous_request_is_acknowledged_then_its_result_is_fetched() {
    let (t, owner, _) = owner_and_other(cse::CseConfig::default()).await;
    let mut req = container(&owner, "cse-in/owner", "later", 1);
    req.rqi = "nb-1".into();
    let ack = t.send(req).await;
    // TS-0004 clause 7.3.2.3: ACCEPTED with the <request>'s reference.
    assert_eq!(ack.rsc, R::AcceptedNonBlockingSynch, "{:?}", ack.pc);
    assert_eq!(ack.rqi, "nb-1");
    let ri = reference(&ack);
    let done = finished(&t, &owner, &ri).await;
    // TS-0004 table 7.3.2.2-2 and 7.3.2.5-2.
    assert_eq!(done["ty"], json!(17));
    assert_eq!(done["pi"], json!("id-in"));
    assert_eq!(done["op"], json!(1));
    assert_eq!(done["tg"], json!("cse-in/owner"));
    assert_eq!(done["org"], json!(owner));
    assert_eq!(done["rid"], json!("nb-1"));
    assert_eq!(done["lbl"], json!([owner]));
    assert_eq!(done["mi"]["rt"], json!({"rtv": 1}));
    assert_eq!(done["mi"]["ty"], json!(3));
    assert_eq!(done["pc"], json!({"m2m:cnt": {"rn": "later"}}));
    assert_eq!(done["rs"], json!(1), "COMPLETED");
    assert_eq!(done["ors"]["rsc"], json!(2001));
    assert_eq!(done["ors"]["rqi"], json!("nb-1"));
    assert_eq!(done["ors"]["pc"]["m2m:cnt"]["rn"], json!("later"));
    // The operation really took place, as the originator.
    let r = t.retrieve(&owner, "cse-in/owner/later").await;
    assert_eq!(r.rsc, R::Ok);
    // A refused operation is a completed request whose result is the refusal.
    let ack = t
        .send(non_blocking(
            Operation::Retrieve,
            &owner,
            "cse-in/owner/none",
            1,
        ))
        .await;
    let done = finished(&t, &owner, &reference(&ack)).await;
    assert_eq!(
        (done["rs"].clone(), done["ors"]["rsc"].clone()),
        (json!(1), json!(4004))
    );
}

#[tokio::test]
async fn only_the_originator_reaches_its_request() {
    let (t, owner, other) = owner_and_other(cse::CseConfig::default()).await;
    let ack = t
        .send(non_blocking(
            Operation::Retrieve,
            &owner,
            "cse-in/owner/data",
            1,
        ))
        .await;
    let ri = reference(&ack);
    let done = finished(&t, &owner, &ri).await;
    assert_eq!(done["ors"]["rsc"], json!(2000));
    // Another originator: 4103 for every operation, and nothing changes.
    assert_eq!(
        t.retrieve(&other, &ri).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(t.delete(&other, &ri).await.rsc, R::OriginatorHasNoPrivilege);
    let r = t
        .update(&other, &ri, json!({"m2m:req": {"lbl": ["x"]}}))
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    // Discovery does not show it to the other either.
    let mut disc = Request::new(Operation::Retrieve, "cse-in", Some(other.clone()));
    disc.fc.fu = Some(1);
    disc.fc.ty = vec![T::Request];
    let r = t.send(disc.clone()).await;
    assert!(!serde_json::to_string(&r.pc).expect("json").contains(&ri));
    disc.fr = Some(ADMIN.to_owned());
    let r = t.send(disc).await;
    assert_eq!(r.rsc, R::Ok);
    assert!(serde_json::to_string(&r.pc).expect("json").contains(&ri));
    // The originator itself may not update it (4005), and the admin reads it.
    let r = t
        .update(&owner, &ri, json!({"m2m:req": {"lbl": ["x"]}}))
        .await;
    assert_eq!(r.rsc, R::OperationNotAllowed);
    assert_eq!(
        t.retrieve(&owner, &ri).await.pc.expect("pc")["m2m:req"],
        done
    );
    assert_eq!(t.retrieve(ADMIN, &ri).await.rsc, R::Ok);
    // The originator deletes it.
    assert_eq!(t.delete(&owner, &ri).await.rsc, R::Deleted);
    assert_eq!(t.retrieve(&owner, &ri).await.rsc, R::NotFound);
}

#[tokio::test]
async fn an_asynchronous_result_goes_to_the_targets_named_or_to_nobody() {
    let (t, owner, _) = owner_and_other(cse::CseConfig::default()).await;
    let rx = Receiver::start(2000).await;
    // An empty list of targets: no notification at all (TS-0004 clause 7.5.1.2.5).
    let mut quiet = non_blocking(Operation::Retrieve, &owner, "cse-in/owner/data", 2);
    quiet.rtu = Some(Vec::new());
    let ack = t.send(quiet).await;
    assert_eq!(ack.rsc, R::AcceptedNonBlockingAsynch, "{:?}", ack.pc);
    let done = finished(&t, &owner, &reference(&ack)).await;
    assert_eq!(done["mi"]["rt"], json!({"rtv": 2, "nu": []}));
    // Then one with the receiver as its target: the only notification it gets.
    let mut req = non_blocking(Operation::Retrieve, &owner, "cse-in/owner/data", 2);
    req.rqi = "nb-async".into();
    req.rtu = Some(vec![rx.url.clone()]);
    let ack = t.send(req).await;
    assert_eq!(ack.rsc, R::AcceptedNonBlockingAsynch);
    // A target other than the originator is verified before the acknowledgement, as a
    // subscription's is; then it gets the result.
    let got = rx.wait_for(2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["m2m:sgn"]["vrq"], json!(true), "{got:?}");
    assert_eq!(got[0]["m2m:sgn"]["cr"], json!(owner));
    assert_eq!(
        got[0]["m2m:sgn"]["sur"],
        json!(format!("cse-in/{}", reference(&ack)))
    );
    // The content is the response primitive (clause 7.5.1.2.5 d).
    let rsp = &got[1]["m2m:rsp"];
    assert_eq!(rsp["rsc"], json!(2000));
    assert_eq!(rsp["rqi"], json!("nb-async"));
    assert_eq!(rsp["pc"]["m2m:cnt"]["rn"], json!("data"));
    assert_eq!(rsp["to"], json!(owner));
    // The <request> holds the same result.
    let done = finished(&t, &owner, &reference(&ack)).await;
    assert_eq!(&done["ors"], rsp);
}

#[tokio::test]
async fn an_asynchronous_result_without_targets_goes_to_the_originator() {
    let t = TestCse::new().await;
    let rx = Receiver::start(2000).await;
    let owner = t.register_with("owner", json!({"poa": [rx.url]})).await;
    let mut req = container(&owner, "cse-in/owner", "c", 2);
    req.rqi = "nb-poa".into();
    let ack = t.send(req).await;
    assert_eq!(ack.rsc, R::AcceptedNonBlockingAsynch);
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["m2m:rsp"]["rsc"], json!(2001));
    assert_eq!(got[0]["m2m:rsp"]["rqi"], json!("nb-poa"));
}

#[tokio::test]
async fn the_operation_waits_for_its_execution_time_and_can_be_recalled_until_then() {
    let clock = model::clock::ManualClock::new();
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    let (t, owner, _) = owner_and_other(config).await;
    let mut held = container(&owner, "cse-in/owner", "at-oet", 1);
    held.oet = Some("3600000".into());
    let ack = t.send(held).await;
    assert_eq!(ack.rsc, R::AcceptedNonBlockingSynch, "{:?}", ack.pc);
    let ri = reference(&ack);
    let r = t.retrieve(&owner, &ri).await;
    let pending = r.pc.expect("pc")["m2m:req"].clone();
    assert_eq!(pending["rs"], json!(3), "PENDING");
    assert_eq!(pending["ors"], json!({"rsc": 1001, "rqi": ack.rqi}));
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/at-oet").await.rsc,
        R::NotFound
    );
    // A second one, recalled by deleting its <request> before its time.
    let mut recalled = container(&owner, "cse-in/owner", "never", 1);
    recalled.oet = Some("3600000".into());
    let gone = reference(&t.send(recalled).await);
    assert_eq!(t.delete(&owner, &gone).await.rsc, R::Deleted);
    clock.advance(Duration::from_secs(3601));
    let done = finished(&t, &owner, &ri).await;
    assert_eq!(done["ors"]["rsc"], json!(2001));
    assert_eq!(t.retrieve(&owner, "cse-in/owner/at-oet").await.rsc, R::Ok);
    // The recalled one's task woke too (same time, same tick) and did nothing.
    let probe = reference(&t.send(container(&owner, "cse-in/owner", "probe", 1)).await);
    finished(&t, &owner, &probe).await;
    assert_eq!(t.retrieve(&owner, &gone).await.rsc, R::NotFound);
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/never").await.rsc,
        R::NotFound
    );
}

#[tokio::test]
async fn a_result_due_before_the_operation_could_run_is_a_failure_and_rp_sets_the_lifetime() {
    let clock = model::clock::ManualClock::new();
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    let (t, owner, _) = owner_and_other(config).await;
    let mut req = container(&owner, "cse-in/owner", "late", 1);
    req.oet = Some("60000".into());
    req.rset = Some("120000".into());
    req.rp = Some("PT10M".into());
    let ack = t.send(req).await;
    let ri = reference(&ack);
    let r = t.retrieve(&owner, &ri).await;
    let et = model::time::parse(r.pc.expect("pc")["m2m:req"]["et"].as_str().expect("et"))
        .expect("timestamp");
    // Due at rset (2 min), kept 10 min after: 12 min from acceptance.
    let from_now = (et - clock.clock().now()).num_seconds();
    assert!((715..=720).contains(&from_now), "{from_now}");
    // The clock jumps past rset before the task sees oet: FAILED, 4008, not executed.
    clock.advance(Duration::from_secs(180));
    let done = finished(&t, &owner, &ri).await;
    assert_eq!(done["rs"], json!(2), "FAILED");
    assert_eq!(done["ors"]["rsc"], json!(4008));
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/late").await.rsc,
        R::NotFound
    );
    // It expires at its et.
    clock.advance(Duration::from_secs(600));
    assert_eq!(t.retrieve(&owner, &ri).await.rsc, R::NotFound);
    assert!(cse::expiry::sweep(&t.cse).await >= 1);
}

#[tokio::test]
async fn misuses_are_refused_precisely_and_leave_nothing() {
    let config = cse::CseConfig {
        non_blocking: cse::config::NonBlocking {
            max_pending_per_originator: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let (t, owner, _) = owner_and_other(config).await;
    // A done <request> to aim at.
    let target = reference(
        &t.send(non_blocking(Operation::Retrieve, &owner, "cse-in", 1))
            .await,
    );
    finished(&t, &owner, &target).await;
    let before = requests_held(&t);
    let send = |req: Request| {
        let t = &t;
        async move { t.send(req).await.rsc }
    };
    // TS-0004 clause 7.4.12.2.1: never created through the API.
    let mut create = Request::new(Operation::Create, "cse-in", Some(owner.clone()));
    create.ty = Some(T::Request);
    create.pc = Some(json!({"m2m:req": {}}));
    assert_eq!(send(create).await, R::OperationNotAllowed);
    // Clauses 7.4.12.2.2 to 7.4.12.2.4: a <request> is addressed blocking.
    for op in [Operation::Retrieve, Operation::Delete] {
        assert_eq!(
            send(non_blocking(op, &owner, &target, 1)).await,
            R::BadRequest
        );
    }
    // Targets of a result belong to rt=2 (table 6.3.5.30-1).
    let mut rtu = non_blocking(Operation::Retrieve, &owner, "cse-in", 1);
    rtu.rtu = Some(vec!["http://127.0.0.1:9/n".into()]);
    assert_eq!(send(rtu).await, R::BadRequest);
    // Lifetimes beyond the CSE's limit, persistence in years, results due before the
    // execution time.
    for (oet, rset, rp) in [
        (None, None, Some("P2D")),
        (None, None, Some("P1Y")),
        (None, None, Some("later")),
        (Some("60000"), Some("30000"), None),
    ] {
        let mut req = non_blocking(Operation::Retrieve, &owner, "cse-in", 1);
        req.oet = oet.map(str::to_owned);
        req.rset = rset.map(str::to_owned);
        req.rp = rp.map(str::to_owned);
        assert_eq!(send(req).await, R::BadRequest, "{oet:?} {rset:?} {rp:?}");
    }
    // An AE registration is answered blocking only.
    let mut reg = non_blocking(Operation::Create, "C", "cse-in", 1);
    reg.ty = Some(T::Ae);
    reg.pc = Some(json!({"m2m:ae": {"rn": "nb", "api": "Nnb", "rr": true, "srv": ["3"]}}));
    assert_eq!(send(reg).await, R::BadRequest);
    // An undefined response type.
    assert_eq!(
        send(non_blocking(Operation::Retrieve, &owner, "cse-in", 5)).await,
        R::BadRequest
    );
    assert_eq!(requests_held(&t), before, "nothing was accepted");
    // The bound per originator: one pending, the next is 5207 until it is done.
    let mut waiting = non_blocking(Operation::Retrieve, &owner, "cse-in", 1);
    waiting.oet = Some("3600000".into());
    let held = reference(&t.send(waiting).await);
    assert_eq!(
        send(non_blocking(Operation::Retrieve, &owner, "cse-in", 1)).await,
        R::NotAcceptable
    );
    assert_eq!(requests_held(&t), before + 1);
    // Recalled: the place is free again.
    assert_eq!(t.delete(&owner, &held).await.rsc, R::Deleted);
    assert_eq!(
        send(non_blocking(Operation::Retrieve, &owner, "cse-in", 1)).await,
        R::AcceptedNonBlockingSynch
    );
}

#[tokio::test]
async fn a_request_interrupted_by_a_restart_is_marked_failed_and_its_failure_notified() {
    let (mut t, owner, _) = owner_and_other(cse::CseConfig::default()).await;
    let rx = Receiver::start(2000).await;
    let mut req = container(&owner, "cse-in/owner", "interrupted", 2);
    req.oet = Some("3600000".into());
    req.rtu = Some(vec![rx.url.clone()]);
    req.rqi = "nb-restart".into();
    let ack = t.send(req).await;
    assert_eq!(ack.rsc, R::AcceptedNonBlockingAsynch);
    let ri = reference(&ack);
    // Acknowledged means on disk: a new CSE over the same data folder finds it.
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    t.cse = open_cse(cse::CseConfig::default(), Arc::new(store)).await;
    let r = t.retrieve(&owner, &ri).await;
    let failed = r.pc.expect("pc")["m2m:req"].clone();
    assert_eq!(failed["rs"], json!(2), "FAILED");
    assert_eq!(failed["ors"]["rsc"], json!(5000));
    assert_eq!(failed["ors"]["rqi"], json!("nb-restart"));
    // The verification at acceptance, then the failure.
    let got = rx.wait_for(2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["m2m:sgn"]["vrq"], json!(true));
    assert_eq!(got[1]["m2m:rsp"]["rsc"], json!(5000));
    assert_eq!(got[1]["m2m:rsp"]["rqi"], json!("nb-restart"));
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/interrupted").await.rsc,
        R::NotFound
    );
}

#[tokio::test]
async fn the_request_type_is_supported_and_the_old_refusals_are_gone() {
    let t = TestCse::new().await;
    let r = t.retrieve(ADMIN, "cse-in").await;
    let srt = r.pc.expect("pc")["m2m:cb"]["srt"].clone();
    assert!(srt.as_array().expect("list").contains(&json!(17)), "{srt}");
    // A blocking request with a future execution time is still refused (5001).
    let mut req = Request::new(Operation::Retrieve, "cse-in", Some(ADMIN.to_owned()));
    req.oet = Some("60000".into());
    assert_eq!(t.send(req).await.rsc, R::NotImplemented);
}

#[tokio::test]
async fn a_credential_withdrawn_before_the_execution_time_stops_its_pending_request() {
    use security::association::{Framework, PeerIdentity};
    let clock = model::clock::ManualClock::new();
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    let t = TestCse::with_config(config).await;
    // A certificate-bound AE, registered and asking over its association.
    let ctx = over(
        t.cse.associations(),
        cse::ListenerRole::Mca,
        established(
            Framework::Certificate,
            "33-device-certificate",
            PeerIdentity::Ae("//secure-cse.example/id-in/Cdevice".into()),
        ),
    );
    let mut reg = Request::new(Operation::Create, "cse-in", Some("Cdevice".to_owned()));
    reg.ty = Some(T::Ae);
    reg.pc = Some(json!({"m2m:ae": {"rn": "device", "api": "Ntest", "rr": true, "srv": ["3"]}}));
    assert_eq!(t.send_ctx(&ctx, reg).await.rsc, R::Created);
    let mut held = container("Cdevice", "cse-in/device", "later", 1);
    held.oet = Some("60000".into());
    let ack = t.send_ctx(&ctx, held).await;
    assert_eq!(ack.rsc, R::AcceptedNonBlockingSynch, "{:?}", ack.pc);
    let ri = reference(&ack);
    // The credential is suspended while the request waits: its association closes, and the
    // request runs as any request on it would, refused.
    t.cse
        .withdraw(
            ADMIN,
            cse::security_manager::withdrawal::Withdraw::Suspend,
            "33-device-certificate",
            "lost device",
        )
        .await
        .expect("withdrawn");
    clock.advance(Duration::from_secs(61));
    let done = finished(&t, ADMIN, &ri).await;
    assert_eq!(done["rs"], json!(1));
    assert_eq!(done["ors"]["rsc"], json!(4106), "{done}");
    assert_eq!(
        t.retrieve(ADMIN, "cse-in/device/later").await.rsc,
        R::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_operation_runs_cannot_be_recalled() {
    let t = TestCse::new().await;
    // A NOTIFY relayed to an AE whose endpoint holds the answer until released.
    let arrived = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (seen, gate) = (arrived.clone(), release.clone());
    let url = listen(
        "held",
        Arc::new(move |req: Request| {
            let (seen, gate) = (seen.clone(), gate.clone());
            answer(async move {
                seen.notify_one();
                gate.notified().await;
                Ok(Response::new(R::Ok, &req.rqi, None))
            })
        }),
    );
    let sink = t.register_with("sink", json!({"poa": [url]})).await;
    let mut notify = non_blocking(Operation::Notify, &sink, "cse-in/sink", 1);
    notify.pc = Some(json!({"m2m:sgn": {"sur": "x"}}));
    let ri = reference(&t.send(notify).await);
    tokio::time::timeout(Duration::from_secs(10), arrived.notified())
        .await
        .expect("the operation started");
    // TS-0004 clause 7.4.12.2.4: running, so 5220, and the <request> stays.
    assert_eq!(t.delete(&sink, &ri).await.rsc, R::UnableToRecallRequest);
    release.notify_one();
    let done = finished(&t, &sink, &ri).await;
    assert_eq!(
        (done["rs"].clone(), done["ors"]["rsc"].clone()),
        (json!(1), json!(2000))
    );
    // Nothing can be subscribed under a <request> (5203).
    let r = t
        .create(
            &sink,
            &ri,
            T::Subscription,
            json!({"m2m:sub": {"nu": [url], "enc": {"net": [1]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::TargetNotSubscribable);
}

#[tokio::test]
async fn a_non_blocking_request_counts_once_on_its_association() {
    use security::association::{Framework, PeerIdentity};
    let t = TestCse::new().await;
    let ctx = over(
        t.cse.associations(),
        cse::ListenerRole::Mca,
        established(
            Framework::Certificate,
            "33-counted-certificate",
            PeerIdentity::Ae("//secure-cse.example/id-in/Ccounted".into()),
        ),
    );
    let counted = || {
        ctx.security_association()
            .expect("an association")
            .requests()
    };
    let mut reg = Request::new(Operation::Create, "cse-in", Some("Ccounted".to_owned()));
    reg.ty = Some(T::Ae);
    reg.pc = Some(json!({"m2m:ae": {"rn": "counted", "api": "Ntest", "rr": true, "srv": ["3"]}}));
    assert_eq!(t.send_ctx(&ctx, reg).await.rsc, R::Created);
    assert_eq!(counted(), 1);
    let ack = t
        .send_ctx(&ctx, container("Ccounted", "cse-in/counted", "c", 1))
        .await;
    assert_eq!(ack.rsc, R::AcceptedNonBlockingSynch, "{:?}", ack.pc);
    // Read by the administrator, outside the association, until the operation ran.
    let done = finished(&t, ADMIN, &reference(&ack)).await;
    assert_eq!(done["ors"]["rsc"], json!(2001), "{done}");
    // Accepted and executed: one request of the association, not two.
    assert_eq!(counted(), 2);
}

#[tokio::test]
async fn a_result_target_that_does_not_agree_is_refused_and_nothing_is_accepted() {
    let (t, owner, _) = owner_and_other(cse::CseConfig::default()).await;
    let before = requests_held(&t);
    // A target that refuses the verification request, one that cannot be reached, and one
    // of two where the other agrees: 5204 (a subscription's code), no <request>, no result.
    let refusing = Receiver::start(4103).await;
    let agreeing = Receiver::start(2000).await;
    for rtu in [
        vec![refusing.url.clone()],
        vec!["http://127.0.0.1:9/unreachable".to_owned()],
        vec![agreeing.url.clone(), refusing.url.clone()],
    ] {
        let mut req = container(&owner, "cse-in/owner", "forged", 2);
        req.rtu = Some(rtu.clone());
        let r = t.send(req).await;
        assert_eq!(
            r.rsc,
            R::SubscriptionVerificationInitiationFailed,
            "{rtu:?}: {:?}",
            r.pc
        );
    }
    assert_eq!(requests_held(&t), before);
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/forged").await.rsc,
        R::NotFound
    );
    // Only the verification requests went out: one each time the refusing target was asked
    // and one to the agreeing target, nothing else.
    let refused = refusing.wait_for(2).await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|n| n["m2m:sgn"]["vrq"] == json!(true)));
    assert_eq!(agreeing.count(), 1);
    assert_eq!(agreeing.wait_for(1).await[0]["m2m:sgn"]["vrq"], json!(true));
}

#[tokio::test]
async fn the_originator_named_as_result_target_is_not_verified() {
    let t = TestCse::new().await;
    let rx = Receiver::start(2000).await;
    let owner = t.register_with("owner", json!({"poa": [rx.url]})).await;
    let mut req = container(&owner, "cse-in/owner", "c", 2);
    req.rtu = Some(vec![owner.clone()]);
    req.rqi = "nb-self".into();
    let ack = t.send(req).await;
    assert_eq!(ack.rsc, R::AcceptedNonBlockingAsynch, "{:?}", ack.pc);
    finished(&t, &owner, &reference(&ack)).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1, "no verification, only the result: {got:?}");
    assert_eq!(got[0]["m2m:rsp"]["rqi"], json!("nb-self"));
}
