//! Dynamic authorization through `Cse::handle` (TS-0003 clause 7.3): consultation of a DAS
//! when the policies refuse (grant, deny, unreachable, cached and expiring grants), and
//! tokens (each way a token can be wrong, and a valid token granting exactly its rules).
use crate::common;

use common::*;
use cse::outbound::DeliveryError;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use model::{Operation, Request, ResourceType as T, Response, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

const SECRET: &[u8] = b"a-test-secret-of-32-bytes-at-least!!";
// A P-256 key pair made for these tests only.
const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3OjX9Ah/aAiY0fSJ
58C7LzvSuCp8myMfiQTUW16S7UyhRANCAATcgBPKQAv19nLriXryVwMidrXRoLTa
HU8cYZp/TFtcptF1HBThJx6TnIXqg55wbJrFvxW5p1iQ0dknm9JK9qJ9
-----END PRIVATE KEY-----
";
const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3IATykAL9fZy64l68lcDIna10aC0
2h1PHGGaf0xbXKbRdRwU4Scek5yF6oOecGyaxb8VuadYkNHZJ5vSSvaifQ==
-----END PUBLIC KEY-----
";

/// The configuration of [`config`] with `das` as the one DAS the CSE may consult.
fn config_for(das: &str) -> cse::CseConfig {
    let mut c = config();
    c.dynamic_authorization.das_urls = cse::config::DasUrls::new([das.to_owned()]);
    c
}

fn config() -> cse::CseConfig {
    let mut issuers = security::token::Issuers::new();
    issuers
        .add_hs256_secret("das-hs", Zeroizing::new(SECRET.to_vec()))
        .expect("secret");
    issuers
        .add_es256_pem("das-ec", EC_PUBLIC.as_bytes())
        .expect("ec key");
    let mut c = cse::CseConfig::default();
    c.dynamic_authorization.issuers = Arc::new(issuers);
    c.dynamic_authorization.timeout_ms = 300;
    c
}

/// A stand-in DAS: answers every consultation with `answer` (or sleeps past the CSE's
/// timeout when `slow`), and records what it was asked.
struct Das {
    url: String,
    asked: Arc<Mutex<Vec<Value>>>,
    answer: Arc<Mutex<Value>>,
}

impl Das {
    async fn start(answer: Value, slow: bool) -> Self {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(answer));
        let (log, reply) = (asked.clone(), answer.clone());
        let url = listen(
            "das",
            Arc::new(move |req: Request| {
                if let Some(pc) = &req.pc {
                    log.lock().expect("lock").push(pc.clone());
                }
                let out = reply.lock().expect("lock").clone();
                common::answer(async move {
                    if slow {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    match out {
                        // What a body that is not JSON comes to.
                        Value::String(s) => Err(DeliveryError::NoPrimitive {
                            accepted: false,
                            reason: format!("undecodable response content: {s}"),
                        }),
                        v => Ok(Response::new(R::Ok, &req.rqi, Some(v))),
                    }
                })
            }),
        );
        Self { url, asked, answer }
    }

    fn count(&self) -> usize {
        self.asked.lock().expect("lock").len()
    }
}

fn grant(acor: &str, acop: u64, pl: Value) -> Value {
    json!({"m2m:seci": {"sit": 2, "dres": {"dai": {
        "gp": {"acr": [{"acor": [acor], "acop": acop}]}, "pl": pl}}}})
}

/// An owner with `cse-in/owner/data` (one instance), closed to `other` by an ACP that only
/// names the owner, and linked to a `<dynamicAuthorizationConsultation>` pointing at `das`.
async fn guarded(t: &TestCse, das: &str, dal: Option<Value>) -> (String, String) {
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "own", "pv": {"acr": [{"acor": [owner], "acop": 63}]},
                               "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    let acp = attr(&r, "ri");
    let mut dac = json!({"rn": "das", "dae": true, "dap": [das]});
    if let Some(dal) = dal {
        dac["dal"] = dal;
    }
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::DynamicAuthorizationConsultation,
            json!({ "m2m:dac": dac }),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    // Without `cr` on the wire (not asked for): the trust in the `<dac>` rests on the
    // creator record (issue 12, group 8).
    assert_eq!(attr(&r, "cr"), Value::Null);
    let dac = attr(&r, "ri");
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": "data", "acpi": [acp], "daci": [dac]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    (owner, other)
}

#[tokio::test]
async fn the_resource_is_created_and_validated() {
    let t = TestCse::with_config(config_for("http://127.0.0.1:1/das")).await;
    let owner = t.register("owner").await;
    let ok = t
        .create(
            &owner,
            "cse-in/owner",
            T::DynamicAuthorizationConsultation,
            json!({"m2m:dac": {"rn": "d", "dae": false, "dap": ["http://127.0.0.1:1/das"], "dal": 60000}}),
        )
        .await;
    assert_eq!(ok.rsc, R::Created);
    assert_eq!(attr(&ok, "dae"), json!(false));
    let back = t.retrieve(&owner, "cse-in/owner/d").await;
    assert_eq!(back.rsc, R::Ok);
    assert!(back
        .pc
        .as_ref()
        .is_some_and(|pc| pc.get("m2m:dac").is_some()));
    for bad in [
        json!({"m2m:dac": {"dap": ["http://x"]}}),
        json!({"m2m:dac": {"dae": true, "dap": []}}),
        json!({"m2m:dac": {"dae": true, "dap": ["mqtt://x"]}}),
        json!({"m2m:dac": {"dae": true, "dap": ["http://x"], "dal": "later"}}),
    ] {
        let r = t
            .create(
                &owner,
                "cse-in/owner",
                T::DynamicAuthorizationConsultation,
                bad.clone(),
            )
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}");
    }
    let r = t
        .update(
            &owner,
            "cse-in/owner/d",
            json!({"m2m:dac": {"dap": ["ftp://x"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
}

#[tokio::test]
async fn a_das_grant_admits_what_the_policies_refuse_and_is_cached() {
    let das = Das::start(json!(null), false).await;
    let t = TestCse::with_config(config_for(&das.url)).await;
    let (owner, other) = guarded(&t, &das.url, None).await;
    *das.answer.lock().expect("lock") = grant(&other, 2, json!(60000));
    // The owner is granted by the ACP: the DAS is not asked.
    assert_eq!(t.retrieve(&owner, "cse-in/owner/data").await.rsc, R::Ok);
    assert_eq!(das.count(), 0);
    assert_eq!(t.retrieve(&other, "cse-in/owner/data").await.rsc, R::Ok);
    assert_eq!(das.count(), 1);
    let asked = das.asked.lock().expect("lock")[0].clone();
    let dreq = &asked["m2m:seci"]["dreq"];
    assert_eq!(asked["m2m:seci"]["sit"], json!(1));
    assert_eq!(dreq["op"], json!(2));
    assert_eq!(dreq["trt"], json!(3));
    assert!(dreq["or"].as_str().is_some_and(|o| o.ends_with(&other)));
    // The grant is kept for its lifetime: asked once for two requests.
    assert_eq!(t.retrieve(&other, "cse-in/owner/data").await.rsc, R::Ok);
    assert_eq!(das.count(), 1);
    // It grants only what it says: RETRIEVE, not DELETE (asked again, refused).
    assert_eq!(
        t.delete(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(t.retrieve(&owner, "cse-in/owner/data").await.rsc, R::Ok);
}

#[tokio::test]
async fn a_grant_without_lifetime_or_past_dal_is_not_reused() {
    let das = Das::start(json!(null), false).await;
    let t = TestCse::with_config(config_for(&das.url)).await;
    // dal 0: the CSE keeps nothing, whatever the DAS proposes.
    let (_, other) = guarded(&t, &das.url, Some(json!(0))).await;
    *das.answer.lock().expect("lock") = grant(&other, 2, json!(60000));
    assert_eq!(t.retrieve(&other, "cse-in/owner/data").await.rsc, R::Ok);
    assert_eq!(t.retrieve(&other, "cse-in/owner/data").await.rsc, R::Ok);
    assert_eq!(das.count(), 2);
    assert_eq!(t.cse.consultant().cached(), 0);
}

#[tokio::test]
async fn an_expired_grant_is_asked_for_again() {
    let das = Das::start(json!(null), false).await;
    let clock = model::clock::ManualClock::new();
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..config_for(&das.url)
    };
    let t = TestCse::with_config(config).await;
    let (_, other) = guarded(&t, &das.url, None).await;
    *das.answer.lock().expect("lock") = grant(&other, 2, json!(60_000));
    assert_eq!(t.retrieve(&other, "cse-in/owner/data").await.rsc, R::Ok);
    assert_eq!(das.count(), 1);
    // Within its minute the grant is served from the cache.
    assert_eq!(t.retrieve(&other, "cse-in/owner/data").await.rsc, R::Ok);
    assert_eq!(das.count(), 1);
    clock.advance(Duration::from_secs(61));
    *das.answer.lock().expect("lock") = json!({"m2m:seci": {"sit": 2, "dres": {}}});
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(das.count(), 2);
}

#[tokio::test]
async fn a_das_that_denies_or_fails_leaves_the_refusal() {
    for (answer, slow) in [
        (json!({"m2m:seci": {"sit": 2, "dres": {}}}), false),
        (json!("this is not json"), false),
        (
            json!({"m2m:seci": {"sit": 1, "dres": {"dai": {"gp": {"acr": [{"acor": ["all"], "acop": 63}]}}}}}),
            false,
        ),
        (grant("all", 63, json!(60000)), true),
    ] {
        let das = Das::start(answer.clone(), slow).await;
        let t = TestCse::with_config(config_for(&das.url)).await;
        let (_, other) = guarded(&t, &das.url, None).await;
        assert_eq!(
            t.delete(&other, "cse-in/owner/data").await.rsc,
            R::OriginatorHasNoPrivilege,
            "{answer}"
        );
        assert_eq!(das.count(), 1, "{answer}");
        assert_eq!(t.cse.consultant().cached(), 0);
        assert_eq!(t.retrieve(ADMIN, "cse-in/owner/data").await.rsc, R::Ok);
    }
}

#[tokio::test]
async fn an_unreachable_das_means_deny_and_nothing_changes() {
    // A URL nothing listens at.
    let url = "http://127.0.0.1:1/das".to_owned();
    let t = TestCse::with_config(config_for(&url)).await;
    let (owner, other) = guarded(&t, &url, None).await;
    assert_eq!(
        t.update(
            &other,
            "cse-in/owner/data",
            json!({"m2m:cnt": {"lbl": ["x"]}})
        )
        .await
        .rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.delete(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let r = t.retrieve(&owner, "cse-in/owner/data").await;
    assert_eq!(r.rsc, R::Ok);
    assert!(r
        .pc
        .as_ref()
        .is_some_and(|pc| pc["m2m:cnt"].get("lbl").is_none()));
}

#[tokio::test]
async fn a_disabled_consultation_is_not_asked() {
    let das = Das::start(json!(null), false).await;
    let t = TestCse::with_config(config_for(&das.url)).await;
    let (owner, other) = guarded(&t, &das.url, None).await;
    *das.answer.lock().expect("lock") = grant(&other, 2, json!(60000));
    let r = t
        .update(
            &owner,
            "cse-in/owner/das",
            json!({"m2m:dac": {"dae": false}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(das.count(), 0);
}

// === who may make the CSE consult, and whom ===

/// `owner`'s container `cse-in/owner/data` with one instance, under an ACP whose `pv` gives
/// `other` UPDATE only (acop 4) and whose `pvs` names the owner alone; and `other`'s own
/// `<dac>` (`cse-in/other/mine`) pointing at `das`, which grants everything to anyone.
async fn update_only(t: &TestCse, das: &Das) -> (String, String, String) {
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    *das.answer.lock().expect("lock") = grant("all", 63, json!(60000));
    t.guarded_container(
        &owner,
        "cse-in/owner",
        "own",
        json!([{"acor": [owner], "acop": 63}, {"acor": [other], "acop": 4}]),
    )
    .await;
    let r = t
        .create(
            &owner,
            "cse-in/owner/data",
            T::ContentInstance,
            json!({"m2m:cin": {"con": "secret"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    let r = t
        .create(
            &other,
            "cse-in/other",
            T::DynamicAuthorizationConsultation,
            json!({"m2m:dac": {"rn": "mine", "dae": true, "dap": [das.url]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let dac = attr(&r, "ri").as_str().expect("ri").to_owned();
    (owner, other, dac)
}

#[tokio::test]
async fn update_rights_do_not_reach_daci() {
    // The review's proof: UPDATE (acop 4) on another AE's container, a <dac> of one's own
    // pointing at one's own DAS, daci set to it, then read and delete.
    let das = Das::start(json!(null), false).await;
    let t = TestCse::with_config(config_for(&das.url)).await;
    let (owner, other, dac) = update_only(&t, &das).await;
    // UPDATE of ordinary attributes is what the ACP grants...
    let r = t
        .update(
            &other,
            "cse-in/owner/data",
            json!({"m2m:cnt": {"lbl": ["ok"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    // ... but daci decides who may access, so it needs the self-privileges: refused here.
    for change in [
        json!({"m2m:cnt": {"daci": [dac]}}),
        json!({"m2m:cnt": {"daci": [dac], "lbl": ["x"]}}),
    ] {
        let r = t.update(&other, "cse-in/owner/data", change.clone()).await;
        assert_eq!(r.rsc, R::OriginatorHasNoPrivilege, "{change}");
    }
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/data/la").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.delete(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(das.count(), 0, "the other AE's DAS was never asked");
    let r = t.retrieve(&owner, "cse-in/owner/data").await;
    assert_eq!(r.rsc, R::Ok);
    assert_eq!(attr(&r, "daci"), Value::Null);
    assert_eq!(attr(&r, "lbl"), json!(["ok"]));
    // The owner holds the self-privileges; a daci entry must name a <dac> (4000).
    let r = t
        .update(
            &owner,
            "cse-in/owner/data",
            json!({"m2m:cnt": {"daci": ["nothing"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": "x", "daci": ["nothing"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
}

#[tokio::test]
async fn a_dac_the_policies_do_not_trust_is_not_consulted() {
    let das = Das::start(json!(null), false).await;
    let t = TestCse::with_config(config_for(&das.url)).await;
    let (owner, other, dac) = update_only(&t, &das).await;
    // The owner links the other AE's <dac> (by mistake, or talked into it): its creator
    // holds no self-privileges on the container, so its DAS is not trusted for it.
    let r = t
        .update(
            &owner,
            "cse-in/owner/data",
            json!({"m2m:cnt": {"daci": [dac]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/data/la").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(das.count(), 0);
    // Once the policy trusts the other AE with its self-privileges, its <dac> counts.
    let r = t
        .update(
            &owner,
            "cse-in/owner/own",
            json!({"m2m:acp": {"pvs": {"acr": [{"acor": [owner, other], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(t.retrieve(&other, "cse-in/owner/data/la").await.rsc, R::Ok);
    assert_eq!(das.count(), 1);
}

/// A target that only counts the requests sent to it and never answers with a primitive.
struct Recorder {
    url: String,
    sent: Arc<Mutex<usize>>,
}

impl Recorder {
    async fn start() -> Self {
        let sent = Arc::new(Mutex::new(0));
        let count = sent.clone();
        let url = listen(
            "das",
            Arc::new(move |_: Request| {
                *count.lock().expect("lock") += 1;
                common::answer(async { Err(DeliveryError::Unreachable("closed".into())) })
            }),
        );
        Self { url, sent }
    }

    /// The requests sent to it so far (the in-memory network delivers before `send` ends).
    async fn others(&self) -> usize {
        *self.sent.lock().expect("lock")
    }
}

#[tokio::test]
async fn a_das_outside_the_allow_list_is_never_contacted() {
    let recorder = Recorder::start().await;
    // Nothing listed (the default): a <dac> naming the URL is refused when created...
    let t = TestCse::with_config(config()).await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::DynamicAuthorizationConsultation,
            json!({"m2m:dac": {"rn": "d", "dae": true, "dap": [recorder.url]}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest, "{:?}", r.pc);
    // ... and one stored while the URL was allowed is not contacted once it no longer is.
    let mut allowed = config_for(&recorder.url);
    allowed.dynamic_authorization.das_urls =
        cse::config::DasUrls::new([recorder.url.clone(), "http://127.0.0.1:1/das".into()]);
    let before = TestCse::with_config(allowed).await;
    let owner = before.register("owner").await;
    let other_before = before.register("other").await;
    let r = before
        .create(
            &owner,
            "cse-in/owner",
            T::DynamicAuthorizationConsultation,
            json!({"m2m:dac": {"rn": "d", "dae": true, "dap": [recorder.url]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let dac = attr(&r, "ri");
    let r = before
        .create(
            &owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": "data", "daci": [dac]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    // Changing dap to a URL that is not listed is refused too.
    let r = before
        .update(
            &owner,
            "cse-in/owner/d",
            json!({"m2m:dac": {"dap": ["http://169.254.169.254/latest"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    assert_eq!(recorder.others().await, 0);
    // The same data, a CSE whose allow-list no longer has the URL.
    let store = store::SqliteStore::open(before.dir.path(), store::SqliteOptions::default())
        .expect("store");
    let after = open_cse(config(), Arc::new(store)).await;
    let client = cse::testing::MemoryBinding::plaintext(
        &after,
        "test",
        Some("127.0.0.1:40000".parse().expect("addr")),
    );
    for op in [Operation::Retrieve, Operation::Delete] {
        let req = Request::new(op, "cse-in/owner/data", Some(other_before.clone()));
        assert_eq!(client.send(req).await.rsc, R::OriginatorHasNoPrivilege);
    }
    assert_eq!(recorder.others().await, 0, "the unlisted DAS was contacted");
    drop(other);
}

// === tokens ===

fn now() -> i64 {
    model::time::now().timestamp()
}

fn hs(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign")
}

fn es(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::ES256),
        claims,
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("key"),
    )
    .expect("sign")
}

fn claims(holder: &str, pv: Value) -> Value {
    json!({"iss": "das-hs", "aud": "id-in", "sub": holder, "exp": now() + 300,
           "nbf": now() - 5, "jti": "tk1", "tkps": {"pm": [{"pv": pv}]}})
}

async fn with_token(
    t: &TestCse,
    op: Operation,
    fr: &str,
    to: &str,
    token: &str,
) -> model::Response {
    let mut req = Request::new(op, to, Some(fr.to_owned()));
    req.tkns = vec![token.to_owned()];
    if op == Operation::Update {
        req.pc = Some(json!({"m2m:cnt": {"lbl": ["x"]}}));
    }
    t.send(req).await
}

async fn owned() -> (TestCse, String, String) {
    common::owner_and_other(config()).await
}

#[tokio::test]
async fn a_valid_token_grants_exactly_its_permissions() {
    let (t, _, other) = owned().await;
    let read = json!({"acr": [{"acor": [other], "acop": 2}]});
    for token in [hs(&claims(&other, read.clone())), {
        let mut c = claims(&other, read.clone());
        c["iss"] = json!("das-ec");
        es(&c)
    }] {
        let r = with_token(&t, Operation::Retrieve, &other, "cse-in/owner/data", &token).await;
        assert_eq!(r.rsc, R::Ok);
        for op in [Operation::Update, Operation::Delete] {
            assert_eq!(
                with_token(&t, op, &other, "cse-in/owner/data", &token)
                    .await
                    .rsc,
                R::OriginatorHasNoPrivilege,
                "{op:?}"
            );
        }
    }
    // Without the token, nothing.
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // Scoped by ris: a token for another resource grants nothing here.
    let mut c = claims(&other, read.clone());
    c["tkps"] = json!({"pm": [{"ris": ["cnt-elsewhere"], "pv": read}]});
    assert_eq!(
        with_token(
            &t,
            Operation::Retrieve,
            &other,
            "cse-in/owner/data",
            &hs(&c)
        )
        .await
        .rsc,
        R::OriginatorHasNoPrivilege
    );
}

#[tokio::test]
async fn roles_count_only_when_a_token_grants_them() {
    let t = TestCse::with_config(config()).await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    t.guarded_container(
        &owner,
        "cse-in/owner",
        "roles",
        json!([{"acor": ["operator"], "acop": 2}]),
    )
    .await;
    // Claiming the role is not holding it.
    let mut req = Request::new(
        Operation::Retrieve,
        "cse-in/owner/data",
        Some(other.clone()),
    );
    req.rids = vec!["operator".into()];
    assert_eq!(t.send(req).await.rsc, R::OriginatorHasNoPrivilege);
    // A token that grants it: held.
    let mut c = claims(&other, json!(null));
    c["tkps"] = json!({"pm": [{"rids": ["operator"]}]});
    let token = hs(&c);
    let mut req = Request::new(
        Operation::Retrieve,
        "cse-in/owner/data",
        Some(other.clone()),
    );
    req.tkns = vec![token.clone()];
    assert_eq!(t.send(req).await.rsc, R::Ok);
    // Asking for other roles only narrows to those: the token's role is not used.
    let mut req = Request::new(
        Operation::Retrieve,
        "cse-in/owner/data",
        Some(other.clone()),
    );
    req.tkns = vec![token];
    req.rids = vec!["auditor".into()];
    assert_eq!(t.send(req).await.rsc, R::OriginatorHasNoPrivilege);
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_code() {
    let (t, owner, other) = owned().await;
    // The owner may read by the default policy: a bad token still refuses the request.
    let all = json!({"acr": [{"acor": ["all"], "acop": 63}]});
    let good = claims(&owner, all.clone());
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let forged = {
        let mut c = good.clone();
        c["iss"] = json!("das-hs");
        encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(b"not-the-secret-not-the-secret-!!"),
        )
        .expect("sign")
    };
    let cases = [
        ("forged", forged, R::OriginatorHasNoPrivilege),
        (
            "expired",
            hs(&with("exp", json!(now() - 10))),
            R::OriginatorHasNoPrivilege,
        ),
        (
            "not yet valid",
            hs(&with("nbf", json!(now() + 600))),
            R::OriginatorHasNoPrivilege,
        ),
        (
            "wrong audience",
            hs(&with("aud", json!(["id-other"]))),
            R::OriginatorHasNoPrivilege,
        ),
        (
            "wrong holder",
            hs(&with("sub", json!(other))),
            R::OriginatorHasNoPrivilege,
        ),
        (
            "unknown issuer",
            hs(&with("iss", json!("das-unknown"))),
            R::OriginatorHasNoPrivilege,
        ),
        (
            "hs256 for an es256 issuer",
            hs(&with("iss", json!("das-ec"))),
            R::OriginatorHasNoPrivilege,
        ),
        ("malformed", "not-a-token".to_owned(), R::BadRequest),
        (
            "malformed claims",
            hs(&with("exp", json!("tomorrow"))),
            R::BadRequest,
        ),
    ];
    for (name, token, want) in cases {
        let r = with_token(&t, Operation::Retrieve, &owner, "cse-in/owner/data", &token).await;
        assert_eq!(r.rsc, want, "{name}");
    }
    // Another originator presenting the owner's valid token gets nothing from it.
    let r = with_token(
        &t,
        Operation::Retrieve,
        &other,
        "cse-in/owner/data",
        &hs(&good),
    )
    .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    // The same good token works for its holder.
    let r = with_token(
        &t,
        Operation::Retrieve,
        &owner,
        "cse-in/owner/data",
        &hs(&good),
    )
    .await;
    assert_eq!(r.rsc, R::Ok);
}

/// A token that names one content instance admits that one into a discovery result and none
/// of its siblings: with a token, instances are decided one by one, not once per container.
#[tokio::test]
async fn a_token_for_one_instance_admits_it_alone_into_discovery() {
    let (t, owner, other) = owned().await;
    let acp = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "find", "pv": {"acr": [{"acor": [other], "acop": 32},
                {"acor": [owner], "acop": 63}]}, "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}}),
        )
        .await;
    let acp = acp.pc.as_ref().map(|pc| pc["m2m:acp"]["ri"].clone());
    let r = t
        .update(&owner, "cse-in/owner", json!({"m2m:ae": {"acpi": [acp]}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    let mut named = String::new();
    for rn in ["a", "b", "c"] {
        let r = t
            .create(
                &owner,
                "cse-in/owner/data",
                T::ContentInstance,
                json!({"m2m:cin": {"rn": rn, "con": rn}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created);
        if rn == "b" {
            named = attr(&r, "ri").as_str().unwrap_or_default().to_owned();
        }
    }
    let discover = |token: Option<String>| {
        let mut req = Request::new(Operation::Retrieve, "cse-in/owner", Some(other.clone()));
        req.fc.add("fu", "1").expect("fu");
        req.fc.add("ty", "4").expect("ty");
        req.tkns = token.into_iter().collect();
        req
    };
    let uris = |r: model::Response| r.pc.map(|pc| pc["m2m:uril"].clone());
    assert_eq!(uris(t.send(discover(None)).await), Some(json!([])));
    let mut c = claims(&other, json!({"acr": [{"acor": [other], "acop": 32}]}));
    c["tkps"] = json!({"pm": [{"ris": [named], "pv": {"acr": [{"acor": [other], "acop": 32}]}}]});
    assert_eq!(
        uris(t.send(discover(Some(hs(&c)))).await),
        Some(json!(["cse-in/owner/data/b"]))
    );
}
