//! Subscriptions and notifications over HTTP against the real binary (issue 12 group 5):
//! batches (`bn`, `ln`), the checks TS-0004 clause 7.4.8.2 gives, the content of each
//! notification, and how the NOTIFY request goes on the wire.
use crate::common;

use common::*;
use model::codec::{self, Format};
use model::{Operation, ResourceType as T, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One NOTIFY as it arrived: the request head (request line and headers, bytes as sent),
/// the body, and the status code the target answered.
#[derive(Debug, Clone)]
pub(crate) struct Arrived {
    head: String,
    body: Vec<u8>,
    answered: u16,
}

impl Arrived {
    /// The header's value, whatever the case of its name.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The bodies of `arrived`, as JSON (`null` for one that is not).
    pub(crate) fn bodies(arrived: &[Arrived]) -> Vec<Value> {
        arrived
            .iter()
            .map(|a| serde_json::from_slice(&a.body).unwrap_or(Value::Null))
            .collect()
    }
}

/// A plain HTTP notification target that records each request and answers 2000, or the
/// code set with [`Target::answer`].
pub(crate) struct Target {
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Arrived>>>,
    answer: Arc<AtomicU16>,
}

impl Target {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/n", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(AtomicU16::new(2000));
        let sink = got.clone();
        let code = answer.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = sink.clone();
                let code = code.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut head = String::new();
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            head.push_str(&line);
                        }
                        let answered = code.load(Ordering::SeqCst);
                        let arrived = Arrived {
                            head,
                            body: vec![],
                            answered,
                        };
                        let length = arrived
                            .header("content-length")
                            .and_then(|l| l.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let ri = arrived.header("x-m2m-ri").unwrap_or_default();
                        sink.lock().expect("lock").push(Arrived { body, ..arrived });
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nX-M2M-RSC: {answered}\r\nX-M2M-RI: {ri}\r\nContent-Length: 0\r\n\r\n"
                        );
                        if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, got, answer }
    }

    /// Answers `code` from now on.
    pub(crate) fn answer(&self, code: u16) {
        self.answer.store(code, Ordering::SeqCst);
    }

    /// Waits (at most 10 s) until a request arrives that `wanted` accepts.
    pub(crate) fn wait_until(&self, wanted: impl Fn(&Arrived) -> bool) -> Option<Arrived> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(a) = self.got.lock().expect("lock").iter().find(|a| wanted(a)) {
                return Some(a.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most 10 s) until `n` requests have arrived.
    pub(crate) fn wait_for(&self, n: usize) -> Vec<Arrived> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.got.lock().expect("lock").clone();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn count(&self) -> usize {
        self.got.lock().expect("lock").len()
    }
}

struct Cse {
    _dir: tempfile::TempDir,
    _server: Server,
    client: client::Client,
    ae: String,
}

impl Cse {
    /// A running CSE with an AE `ae` and its container `ae/c`.
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let server = Server::start(dir.path());
        let client = server.client();
        let r = request(
            &client,
            Operation::Create,
            "C",
            "cse-in",
            Some(T::Ae),
            Some(json!({"m2m:ae": {"rn": "ae", "api": "Nnotify", "rr": true, "srv": ["3"]}})),
        )
        .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        let ae = r.pc.as_ref().expect("pc")["m2m:ae"]["aei"]
            .as_str()
            .expect("aei")
            .to_owned();
        let cse = Self {
            _dir: dir,
            _server: server,
            client,
            ae,
        };
        let c = cse
            .create("cse-in/ae", T::Container, json!({"m2m:cnt": {"rn": "c"}}))
            .await;
        assert_eq!(c.rsc, R::Created, "{:?}", c.pc);
        cse
    }

    async fn create(&self, to: &str, ty: T, pc: Value) -> model::Response {
        request(
            &self.client,
            Operation::Create,
            &self.ae,
            to,
            Some(ty),
            Some(pc),
        )
        .await
    }

    async fn update(&self, to: &str, pc: Value) -> model::Response {
        request(
            &self.client,
            Operation::Update,
            &self.ae,
            to,
            None,
            Some(pc),
        )
        .await
    }

    async fn delete(&self, to: &str) -> model::Response {
        request(&self.client, Operation::Delete, &self.ae, to, None, None).await
    }

    async fn cin(&self, con: &str) -> model::Response {
        let r = self
            .create(
                "cse-in/ae/c",
                T::ContentInstance,
                json!({"m2m:cin": {"con": con}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        r
    }
}

fn sub_attr(r: &model::Response, name: &str) -> Value {
    r.pc.as_ref().expect("pc")["m2m:sub"][name].clone()
}

fn cons(agn: &Value) -> Vec<Value> {
    agn["m2m:agn"]["m2m:sgn"]
        .as_array()
        .expect("an aggregated notification")
        .iter()
        .map(|sgn| sgn["nev"]["rep"]["m2m:cin"]["con"].clone())
        .collect()
}

// TS-0001 clause 10.2.10.7 and TS-0004 clauses 7.4.8.2.1, 7.5.1.2.2 and 7.5.1.2.4:
// `bn/num` notifications are sent together as one m2m:agn, in order; without `bn/dur` the
// hosting CSE stores its default duration; with `ln` only the latest of a batch goes out;
// a deleted subscription's subscriber (`su`) is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_sent_as_one_aggregated_notification() {
    let cse = Cse::start().await;
    let target = Target::start();
    let subscriber = Target::start();
    let by_number = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"rn": "num", "nu": [target.url], "enc": {"net": [3]},
                "bn": {"num": 2}, "su": subscriber.url}}),
        )
        .await;
    assert_eq!(by_number.rsc, R::Created, "{:?}", by_number.pc);
    assert_eq!(sub_attr(&by_number, "bn"), json!({"num": 2, "dur": "PT1M"}));
    assert_eq!(
        sub_attr(&by_number, "nct"),
        json!(1),
        "the default of table 9.6.8-4"
    );
    assert_eq!(target.wait_for(1).len(), 1, "the verification request");
    cse.cin("a").await;
    cse.cin("b").await;
    let got = target.wait_for(2);
    assert_eq!(got.len(), 2, "one aggregated notification");
    assert_eq!(cons(&got[1].json()), vec![json!("a"), json!("b")]);
    let sgn = &got[1].json()["m2m:agn"]["m2m:sgn"][0];
    assert_eq!(sgn["sur"], json!("cse-in/ae/c/num"));
    assert_eq!(sgn["cr"], json!(cse.ae), "the subscription's creator");
    assert_eq!(cse.delete("cse-in/ae/c/num").await.rsc, R::Deleted);
    let notice = subscriber.wait_for(1);
    assert_eq!(notice.len(), 1);
    assert_eq!(
        notice[0].json(),
        json!({"m2m:sgn": {"sud": true, "sur": "cse-in/ae/c/num"}})
    );

    let latest = Target::start();
    let by_time = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"rn": "dur", "nu": [latest.url], "enc": {"net": [3]},
                "bn": {"dur": "PT0.5S"}, "ln": true}}),
        )
        .await;
    assert_eq!(by_time.rsc, R::Created, "{:?}", by_time.pc);
    latest.wait_for(1);
    for con in ["x", "y", "z"] {
        cse.cin(con).await;
    }
    let got = latest.wait_for(2);
    assert_eq!(
        got.len(),
        2,
        "one notification when the duration has passed"
    );
    assert_eq!(cons(&got[1].json()), vec![json!("z")], "only the latest");
    assert_eq!(latest.count(), 2);
}

// TS-0004 clause 7.4.8.2.1/7.4.8.2.3: a `chty` that is not a child type of the subscribed-to
// resource, an `nct` TS-0001 table 9.6.8-4 does not allow with `net`, a malformed `bn`, and
// an emptied `nu` are each refused with BAD_REQUEST (4000); the notification policies this
// CSE does not enforce (`rl`, `nec`, ...) with NOT_IMPLEMENTED (5001, clause 7.3.3.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_subscriptions_are_refused() {
    let cse = Cse::start().await;
    let target = Target::start();
    for bad in [
        json!({"enc": {"net": [3], "chty": [2]}}),
        json!({"enc": {"net": [3], "chty": [9999]}}),
        json!({"enc": {"net": [3]}, "nct": 2}),
        json!({"nct": 4}),
        json!({"bn": {"num": 0}}),
        json!({"bn": {"dur": "P1Y"}}),
        json!({"bn": {"dur": 5}}),
        json!({"bn": {"size": 5}}),
        json!({"rl": {"mne": 1, "tww": "PT1S"}}),
        json!({"nec": 2}),
    ] {
        let mut sub = bad.clone();
        sub["nu"] = json!([target.url]);
        let r = cse
            .create("cse-in/ae/c", T::Subscription, json!({ "m2m:sub": sub }))
            .await;
        let want = if bad.get("rl").or(bad.get("nec")).is_some() {
            R::NotImplemented
        } else {
            R::BadRequest
        };
        assert_eq!(r.rsc, want, "{bad}: {:?}", r.pc);
    }
    let ok = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"rn": "s", "nu": [target.url], "enc": {"net": [3], "chty": [4]}}}),
        )
        .await;
    assert_eq!(ok.rsc, R::Created, "{:?}", ok.pc);
    for bad in [
        json!({"nu": []}),
        json!({"nct": 2}),
        json!({"enc": {"net": [3], "chty": [3, 2]}}),
    ] {
        let r = cse.update("cse-in/ae/c/s", json!({ "m2m:sub": bad })).await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}: {:?}", r.pc);
    }
}

// TS-0004 clause 7.5.1.2.2 step 2.5: `ct=cbor` in a notification URI chooses CBOR and is
// removed from the target; table 6.3.5.62-1: `nct` 3 carries the resource's ID as m2m:uri;
// clause 7.3.1.1: the NOTIFY carries the Release Version Indicator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notification_uri_chooses_cbor_and_nct_3_sends_the_resource_id() {
    let cse = Cse::start().await;
    let target = Target::start();
    let r = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [format!("{}?ct=cbor", target.url)],
                "enc": {"net": [3]}, "nct": 3}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let cin = cse.cin("1").await;
    let got = target.wait_for(2);
    assert_eq!(got.len(), 2);
    for n in &got {
        assert!(n.head.starts_with("POST /n HTTP/1.1\r\n"), "{}", n.head);
        assert_eq!(
            n.header("content-type").as_deref(),
            Some("application/cbor")
        );
        assert_eq!(n.header("x-m2m-rvi").as_deref(), Some("3"), "{}", n.head);
    }
    let sgn = codec::decode(&got[1].body, Format::Cbor).expect("CBOR");
    let ri = cin.pc.as_ref().expect("pc")["m2m:cin"]["ri"].clone();
    assert_eq!(sgn["m2m:sgn"]["nev"]["rep"], json!({ "m2m:uri": ri }));
    assert_eq!(sgn["m2m:sgn"]["nev"]["net"], json!(3));
}

// TS-0004 clause 7.5.1.2.2 step 2.5 with TS-0001 table 9.6.5-2: an AE target's `csz` (its
// serializations in order of preference) chooses how notifications to it are serialized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ae_targets_csz_chooses_the_serialization() {
    let cse = Cse::start().await;
    let target = Target::start();
    let r = request(
        &cse.client,
        Operation::Create,
        "C",
        "cse-in",
        Some(T::Ae),
        Some(
            json!({"m2m:ae": {"rn": "listener", "api": "Nlistener", "rr": true, "srv": ["3"],
            "poa": [target.url], "csz": ["application/cbor", "application/json"]}}),
        ),
    )
    .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let listener = r.pc.as_ref().expect("pc")["m2m:ae"]["aei"]
        .as_str()
        .expect("aei")
        .to_owned();
    let sub = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [listener], "enc": {"net": [3]}}}),
        )
        .await;
    assert_eq!(sub.rsc, R::Created, "{:?}", sub.pc);
    cse.cin("cbor please").await;
    let got = target.wait_for(2);
    assert_eq!(got.len(), 2, "verification and notification");
    for n in &got {
        assert!(n.head.starts_with("POST /n HTTP/1.1\r\n"), "{}", n.head);
        assert_eq!(
            n.header("content-type").as_deref(),
            Some("application/cbor")
        );
    }
    let sgn = codec::decode(&got[1].body, Format::Cbor).expect("CBOR");
    assert_eq!(
        sgn["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"],
        json!("cbor please")
    );
}

impl Cse {
    /// Gives the test AE the point of access `poa`, so it can be a notification target.
    async fn reachable_at(&self, poa: &str) {
        let r = self
            .update("cse-in/ae", json!({"m2m:ae": {"poa": [poa]}}))
            .await;
        assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    }

    /// Registers another AE (`rr`, `srv` as given) reached at `poa`; returns its AE-ID.
    async fn register(&self, rn: &str, poa: &str, srv: Value) -> String {
        let r = request(
            &self.client,
            Operation::Create,
            "C",
            "cse-in",
            Some(T::Ae),
            Some(
                json!({"m2m:ae": {"rn": rn, "api": "Nother", "rr": true, "srv": srv,
                "poa": [poa]}}),
            ),
        )
        .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        r.pc.as_ref().expect("pc")["m2m:ae"]["aei"]
            .as_str()
            .expect("aei")
            .to_owned()
    }

    async fn retrieve(&self, to: &str, rcn: Option<model::ResultContent>) -> model::Response {
        let mut r = model::Request::new(Operation::Retrieve, to, Some(self.ae.clone()));
        r.rcn = rcn;
        self.client.send(&r).await.expect("a response")
    }

    async fn labels(&self) -> Value {
        let r = self.retrieve("cse-in/ae/c", None).await;
        r.pc.as_ref().expect("pc")["m2m:cnt"]["lbl"].clone()
    }
}

// TS-0004 clauses 7.4.8.2.1 and 7.4.8.2.3 with TS-0001 table 9.6.8-2: a blocking-update
// subscription (net 7) has one notification target, a registered AE that may UPDATE the
// subscribed-to resource, no other event type, condition or notification policy, and is
// the only one of its resource (4124); the hosting CSE sets nct 2 (table 9.6.8-4); an
// UPDATE cannot make a subscription blocking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_update_subscriptions_are_checked() {
    let cse = Cse::start().await;
    let target = Target::start();
    cse.reachable_at(&target.url).await;
    let other = cse.register("other", &target.url, json!(["3"])).await;
    let ae = cse.ae.clone();
    for (bad, rsc) in [
        (json!({"nu": [ae], "enc": {"net": [7, 1]}}), R::BadRequest),
        (
            json!({"nu": [ae], "enc": {"net": [7], "chty": [4]}}),
            R::BadRequest,
        ),
        (
            json!({"nu": [ae, other], "enc": {"net": [7]}}),
            R::BadRequest,
        ),
        (
            json!({"nu": [target.url], "enc": {"net": [7]}}),
            R::BadRequest,
        ),
        (
            json!({"nu": [ae], "enc": {"net": [7]}, "nct": 2}),
            R::BadRequest,
        ),
        (
            json!({"nu": [ae], "enc": {"net": [7]}, "exc": 3}),
            R::BadRequest,
        ),
        (
            json!({"nu": [ae], "enc": {"net": [7]}, "ln": true}),
            R::BadRequest,
        ),
        (
            json!({"nu": [ae], "enc": {"net": [7]}, "bn": {"num": 2}}),
            R::BadRequest,
        ),
        (
            json!({"nu": ["cse-in/ae/c"], "enc": {"net": [7]}}),
            R::BadRequest,
        ),
        // TS-0001 table 10.2.10.2-1: the target must be able to UPDATE what it approves.
        (
            json!({"nu": [other], "enc": {"net": [7]}}),
            R::OriginatorHasNoPrivilege,
        ),
    ] {
        let r = cse
            .create("cse-in/ae/c", T::Subscription, json!({ "m2m:sub": bad }))
            .await;
        assert_eq!(r.rsc, rsc, "{bad}: {:?}", r.pc);
    }
    let ok = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"rn": "block", "nu": [ae], "enc": {"net": [7], "atr": ["lbl"]}}}),
        )
        .await;
    assert_eq!(ok.rsc, R::Created, "{:?}", ok.pc);
    assert_eq!(sub_attr(&ok, "nct"), json!(2), "modified attributes");
    let again = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [ae], "enc": {"net": [7]}}}),
        )
        .await;
    assert_eq!(
        again.rsc,
        R::BlockingSubscriptionAlreadyExists,
        "{:?}",
        again.pc
    );
    let plain = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"rn": "plain", "nu": [ae]}}),
        )
        .await;
    assert_eq!(plain.rsc, R::Created, "{:?}", plain.pc);
    let r = cse
        .update(
            "cse-in/ae/c/plain",
            json!({"m2m:sub": {"enc": {"net": [7]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest, "{:?}", r.pc);
    // Once the blocking subscription is gone, another may take its place.
    assert_eq!(cse.delete("cse-in/ae/c/block").await.rsc, R::Deleted);
    let r = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [ae], "enc": {"net": [7]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
}

// TS-0004 clauses 7.5.1.2.19 and 7.3.2.9 (TS-0001 table 9.6.8-2): an UPDATE of a resource
// with a blocking-update subscription waits for the target's answer to a notification
// carrying what the UPDATE would change (net 7, the modified attributes). A successful
// answer lets it through; OPERATION_NOT_ALLOWED or any other refusal is
// OPERATION_DENIED_BY_REMOTE_ENTITY (4127), TARGET_NOT_REACHABLE or no answer is
// REMOTE_ENTITY_NOT_REACHABLE (5107), and the resource is left unchanged. An UPDATE of
// attributes outside `atr` is not held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_update_waits_for_the_targets_answer() {
    let cse = Cse::start().await;
    let target = Target::start();
    cse.reachable_at(&target.url).await;
    let sub = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [cse.ae], "enc": {"net": [7], "atr": ["lbl"]}}}),
        )
        .await;
    assert_eq!(sub.rsc, R::Created, "{:?}", sub.pc);
    assert_eq!(target.count(), 0, "the originator itself is not verified");

    let r = cse
        .update("cse-in/ae/c", json!({"m2m:cnt": {"lbl": ["approved"]}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    let got = target.wait_for(1);
    assert_eq!(got.len(), 1);
    let sgn = &got[0].json()["m2m:sgn"];
    assert_eq!(sgn["nev"]["net"], json!(7));
    assert_eq!(sgn["nev"]["rep"], json!({"m2m:cnt": {"lbl": ["approved"]}}));
    assert_eq!(cse.labels().await, json!(["approved"]));

    for (answer, rsc) in [
        (4005, R::OperationDeniedByRemoteEntity),
        (4103, R::OperationDeniedByRemoteEntity),
        (5103, R::RemoteEntityNotReachable),
    ] {
        target.answer(answer);
        let r = cse
            .update("cse-in/ae/c", json!({"m2m:cnt": {"lbl": ["refused"]}}))
            .await;
        assert_eq!(r.rsc, rsc, "target answered {answer}: {:?}", r.pc);
        assert_eq!(cse.labels().await, json!(["approved"]), "unchanged");
    }
    // Attributes outside atr are not held, whatever the target would say.
    let r = cse
        .update("cse-in/ae/c", json!({"m2m:cnt": {"mni": 5}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    // A target that cannot be reached refuses the update too.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone = format!("http://{}/n", closed.local_addr().expect("addr"));
    drop(closed);
    cse.reachable_at(&gone).await;
    let r = cse
        .update("cse-in/ae/c", json!({"m2m:cnt": {"lbl": ["unreached"]}}))
        .await;
    assert_eq!(r.rsc, R::RemoteEntityNotReachable, "{:?}", r.pc);
    assert_eq!(cse.labels().await, json!(["approved"]));
}

// TS-0004 table 6.3.4.2.19-1 and TS-0001 table 9.6.8-2: net 5 notifies a RETRIEVE of a
// subscribed-to <container> asking for its children (rcn 4 or 8) while it has no content
// instance; it needs a <container> (4000 elsewhere). Net 6 (trigger received) needs device
// triggering, which this CSE does not implement (5001 on an <AE>, 4000 elsewhere); net 8
// needs `md` on a <timeSeries> (4000 on a <container>). nct 2 is not allowed with net 5
// (table 9.6.8-4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieving_an_empty_container_notifies_net_5() {
    let cse = Cse::start().await;
    let target = Target::start();
    for (to, enc, rsc) in [
        ("cse-in/ae", json!({"net": [5]}), R::BadRequest),
        ("cse-in/ae/c", json!({"net": [6]}), R::BadRequest),
        ("cse-in/ae", json!({"net": [6]}), R::NotImplemented),
        ("cse-in/ae/c", json!({"net": [8]}), R::BadRequest),
        ("cse-in/ae/c", json!({"net": [9]}), R::BadRequest),
    ] {
        let r = cse
            .create(
                to,
                T::Subscription,
                json!({"m2m:sub": {"nu": [target.url], "enc": enc}}),
            )
            .await;
        assert_eq!(r.rsc, rsc, "{to} {enc}: {:?}", r.pc);
    }
    let r = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [target.url], "enc": {"net": [5]}, "nct": 2}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest, "{:?}", r.pc);
    let r = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [target.url], "enc": {"net": [5, 3]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert_eq!(target.wait_for(1).len(), 1, "the verification request");

    let plain = cse.retrieve("cse-in/ae/c", None).await;
    assert_eq!(plain.rsc, R::Ok);
    let r = cse
        .retrieve("cse-in/ae/c", Some(model::ResultContent::ChildResources))
        .await;
    assert_eq!(r.rsc, R::Ok);
    let got = target.wait_for(2);
    assert_eq!(
        got.len(),
        2,
        "one notification: the plain retrieve asked for no children"
    );
    assert_eq!(got[1].json()["m2m:sgn"]["nev"]["net"], json!(5));
    assert_eq!(
        got[1].json()["m2m:sgn"]["nev"]["rep"]["m2m:cnt"]["ri"],
        plain.pc.as_ref().expect("pc")["m2m:cnt"]["ri"]
    );
    // With a content instance, a retrieve of the children is not notified: the next
    // notification is the creation of the second instance.
    cse.cin("first").await;
    let r = cse
        .retrieve(
            "cse-in/ae/c",
            Some(model::ResultContent::AttributesAndChildResources),
        )
        .await;
    assert_eq!(r.rsc, R::Ok);
    cse.cin("second").await;
    let got = target.wait_for(4);
    let nets: Vec<Value> = got
        .iter()
        .skip(1)
        .map(|a| a.json()["m2m:sgn"]["nev"]["net"].clone())
        .collect();
    assert_eq!(nets, vec![json!(5), json!(3), json!(3)]);
}

// TS-0009 clause 6.4 spells the request headers X-M2M-Origin, X-M2M-RI, X-M2M-RVI and
// Content-Type; notifications go out with the names spelled so (checked on the bytes), and
// TS-0004 clause 7.3.1.1 (with TS-0001 table 9.6.5-1, `srv`): the Release Version Indicator
// is the latest release the receiving AE supports, this CSE's own for a URL target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_spell_header_names_and_match_the_targets_release() {
    let cse = Cse::start().await;
    let by_url = Target::start();
    let older = Target::start();
    let listener = cse.register("older", &older.url, json!(["2", "2a"])).await;
    let r = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [by_url.url, listener], "enc": {"net": [3]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    cse.cin("x").await;
    for (target, rvi) in [(&by_url, "3"), (&older, "2a")] {
        let got = target.wait_for(2);
        assert_eq!(got.len(), 2, "verification and notification");
        for n in &got {
            for name in [
                "X-M2M-Origin: /",
                "X-M2M-RI: ",
                "Content-Type: application/json",
            ] {
                assert!(
                    n.head.contains(&format!("\r\n{name}")),
                    "{name}: {}",
                    n.head
                );
            }
            assert!(
                n.head.contains(&format!("\r\nX-M2M-RVI: {rvi}\r\n")),
                "{rvi}: {}",
                n.head
            );
        }
    }
}

// TS-0004 clause 7.5.1.2.2 steps 2.3 and 4.0: a subscription with `ln` sends its
// notifications with Event Category "latest" (X-M2M-EC: 4), and while one waits for
// delivery (its target refuses it, it is retried), a newer one of the same subscription
// replaces it: the target is never sent the one in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_notify_replaces_a_pending_notification() {
    let cse = Cse::start().await;
    let target = Target::start();
    let r = cse
        .create(
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [target.url], "enc": {"net": [3]}, "ln": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert_eq!(target.wait_for(1).len(), 1, "the verification request");
    target.answer(5103);
    cse.cin("1").await;
    let refused = target.wait_until(|a| a.answered == 5103 && !a.body.is_empty());
    assert!(
        refused.is_some(),
        "the first notification is tried and refused"
    );
    cse.cin("2").await;
    cse.cin("3").await;
    target.answer(2000);
    let con = |a: &Arrived| a.json()["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"].clone();
    let delivered = target
        .wait_until(|a| a.answered == 2000 && a.header("x-m2m-ec").is_some())
        .expect("delivered once the target accepts");
    assert_eq!(
        con(&delivered),
        json!("3"),
        "the latest replaced the pending ones"
    );
    assert_eq!(delivered.header("X-M2M-EC").as_deref(), Some("4"));
    let all = target.got.lock().expect("lock").clone();
    assert!(
        all.iter().skip(1).all(|a| con(a) != json!("2")),
        "the one in between is never sent"
    );
}

// TS-0001 clause 10.2.10.7: an event acknowledged into an open batch (`bn`) is still
// delivered after the CSE is killed (SIGKILL) and restarted, in the same aggregated
// notification as before, when what is left of the batch's duration has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_batch_survives_a_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    let target = Target::start();
    let mut server = Server::start(dir.path());
    let ae = {
        let client = server.client();
        let r = request(
            &client,
            Operation::Create,
            "C",
            "cse-in",
            Some(T::Ae),
            Some(json!({"m2m:ae": {"rn": "ae", "api": "Nnotify", "rr": true, "srv": ["3"]}})),
        )
        .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        let ae = r.pc.as_ref().expect("pc")["m2m:ae"]["aei"]
            .as_str()
            .expect("aei")
            .to_owned();
        let c = request(
            &client,
            Operation::Create,
            &ae,
            "cse-in/ae",
            Some(T::Container),
            Some(json!({"m2m:cnt": {"rn": "c"}})),
        )
        .await;
        assert_eq!(c.rsc, R::Created, "{:?}", c.pc);
        let s = request(
            &client,
            Operation::Create,
            &ae,
            "cse-in/ae/c",
            Some(T::Subscription),
            Some(json!({"m2m:sub": {"nu": [target.url], "enc": {"net": [3]},
                "bn": {"num": 10, "dur": "PT5S"}}})),
        )
        .await;
        assert_eq!(s.rsc, R::Created, "{:?}", s.pc);
        for con in ["a", "b"] {
            let r = request(
                &client,
                Operation::Create,
                &ae,
                "cse-in/ae/c",
                Some(T::ContentInstance),
                Some(json!({"m2m:cin": {"con": con}})),
            )
            .await;
            assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        }
        ae
    };
    assert_eq!(target.count(), 1, "only the verification request so far");
    server.kill9();
    let server = Server::start(dir.path());
    let got = target.wait_for(2);
    assert_eq!(got.len(), 2, "the batch is delivered after the restart");
    assert_eq!(cons(&got[1].json()), vec![json!("a"), json!("b")]);
    assert_eq!(got[1].json()["m2m:agn"]["m2m:sgn"][0]["cr"], json!(ae));
    drop(server);
}
