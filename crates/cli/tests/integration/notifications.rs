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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One NOTIFY as it arrived: the request head (request line and headers) and the body.
#[derive(Debug, Clone)]
struct Arrived {
    head: String,
    body: Vec<u8>,
}

impl Arrived {
    /// The header's value, whatever the case of its name.
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A plain HTTP notification target that records each request and answers 2000.
struct Target {
    url: String,
    got: Arc<Mutex<Vec<Arrived>>>,
}

impl Target {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/n", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = sink.clone();
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
                        let arrived = Arrived { head, body: vec![] };
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
                            "HTTP/1.1 200 OK\r\nX-M2M-RSC: 2000\r\nX-M2M-RI: {ri}\r\nContent-Length: 0\r\n\r\n"
                        );
                        if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, got }
    }

    /// Waits (at most 10 s) until `n` requests have arrived.
    fn wait_for(&self, n: usize) -> Vec<Arrived> {
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
// an emptied `nu` are each refused with BAD_REQUEST (4000); so are the notification
// policies this CSE does not enforce (`rl`, `nec`, ...).
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
        assert_eq!(r.rsc, R::BadRequest, "{bad}: {:?}", r.pc);
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
