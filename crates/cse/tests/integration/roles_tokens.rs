//! `<role>` and `<token>` through `Cse::handle` (TS-0003 clause 7.4): this CSE as Role and
//! Token Repository. A role or a token named by ID grants what it says while it exists and
//! is valid, to its holder only; deletion, the end of its period and expiry revoke it;
//! only the admin creates them; every change is audited; bad input gets its precise code
//! and changes nothing.
use crate::common;

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use model::clock::ManualClock;
use model::{Operation, Request, ResourceType as T, Response, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

const SECRET: &[u8] = b"a-test-secret-of-32-bytes-at-least!!";
const DATA: &str = "cse-in/owner/data";

fn config(clock: &ManualClock) -> cse::CseConfig {
    let mut issuers = security::token::Issuers::new();
    issuers
        .add_hs256_secret("das-hs", Zeroizing::new(SECRET.to_vec()))
        .expect("secret");
    let mut c = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    c.dynamic_authorization.issuers = Arc::new(issuers);
    c
}

fn stamp(clock: &ManualClock, secs: i64) -> String {
    model::time::format(clock.clock().now() + chrono::Duration::seconds(secs))
}

fn hs(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign")
}

/// Claims of a token `tkid` for `holder` granting RETRIEVE on everything.
fn claims(clock: &ManualClock, tkid: &str, holder: &str) -> Value {
    let now = clock.clock().now().timestamp();
    json!({"iss": "das-hs", "aud": ["id-in"], "sub": holder, "exp": now + 3600,
           "nbf": now - 5, "jti": tkid, "tknm": "reader",
           "tkps": {"pm": [{"pv": {"acr": [{"acor": [holder], "acop": 2}]}}]}})
}

/// A CSE with an audit trail (its file returned), two AEs and the owner's container
/// `cse-in/owner/data`, readable only by holders of the role `operator`.
async fn setup(clock: &ManualClock) -> (TestCse, std::path::PathBuf, String, String) {
    let (t, path) = TestCse::with_audit(config(clock)).await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    t.guarded_container(
        &owner,
        "cse-in/owner",
        "roles",
        json!([{"acor": ["operator"], "acop": 2}]),
    )
    .await;
    (t, path, owner, other)
}

fn role(clock: &ManualClock, holder: &str) -> Value {
    json!({"m2m:rol": {"rn": "op", "rlid": "operator", "tkis": "/id-in", "tkhd": holder,
        "tknb": stamp(clock, -60), "tkna": stamp(clock, 3600), "rlnm": "Operator"}})
}

async fn read_as(t: &TestCse, fr: &str, rids: &[&str], tids: &[&str]) -> R {
    let mut req = Request::new(Operation::Retrieve, DATA, Some(fr.to_owned()));
    req.rids = rids.iter().map(|s| s.to_string()).collect();
    req.tids = tids.iter().map(|s| s.to_string()).collect();
    t.send(req).await.rsc
}

async fn count(t: &TestCse, ty: T) -> usize {
    t.cse
        .store()
        .children("id-in", Some(ty))
        .expect("children")
        .len()
}

#[tokio::test]
async fn a_role_resource_grants_its_holder_and_deletion_revokes() {
    let clock = ManualClock::new();
    let (t, path, owner, other) = setup(&clock).await;
    assert_eq!(
        read_as(&t, &other, &["operator"], &[]).await,
        R::OriginatorHasNoPrivilege
    );
    let r = t
        .created(ADMIN, "cse-in", T::Role, role(&clock, &other))
        .await;
    assert_eq!(attr(&r, "ty"), json!(31));
    assert_eq!(attr(&r, "rlid"), json!("operator"));
    let ri = attr(&r, "ri").as_str().expect("ri").to_owned();
    // The holder, naming the role: granted. Not naming it, or naming another: refused.
    assert_eq!(read_as(&t, &other, &["operator"], &[]).await, R::Ok);
    assert_eq!(
        read_as(&t, &other, &[], &[]).await,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        read_as(&t, &other, &["auditor"], &[]).await,
        R::OriginatorHasNoPrivilege
    );
    // Someone else naming it does not hold it.
    let third = t.register("third").await;
    assert_eq!(
        read_as(&t, &third, &["operator"], &[]).await,
        R::OriginatorHasNoPrivilege
    );
    // The holder in its absolute form is the same holder.
    t.created(
        ADMIN,
        "cse-in",
        T::Role,
        json!({"m2m:rol": {"rn": "abs", "rlid": "operator", "tkis": "id-in",
                "tkhd": format!("//secure-cse.example/id-in/{third}"),
                "tknb": stamp(&clock, -60), "tkna": stamp(&clock, 60)}}),
    )
    .await;
    // Two roles with one Role-ID, for two holders: each holds it.
    assert_eq!(read_as(&t, &third, &["operator"], &[]).await, R::Ok);
    assert_eq!(
        read_as(&t, &other, &["auditor", "operator"], &[]).await,
        R::Ok
    );
    // Only the admin reads a role by default (its policies decide, as for any resource).
    assert_eq!(
        t.retrieve(&other, "cse-in/op").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(t.retrieve(ADMIN, "cse-in/op").await.rsc, R::Ok);
    let _ = owner;
    // Deletion revokes at once.
    assert_eq!(t.delete(ADMIN, "cse-in/op").await.rsc, R::Deleted);
    assert_eq!(
        read_as(&t, &other, &["operator"], &[]).await,
        R::OriginatorHasNoPrivilege
    );
    let actions: Vec<String> = admin_actions(&path).into_iter().map(|(a, _)| a).collect();
    assert_eq!(actions, ["rol-create", "rol-create", "rol-delete"]);
    assert!(
        admin_actions(&path)[2].1.starts_with(&ri),
        "{:?}",
        admin_actions(&path)
    );
}

#[tokio::test]
async fn a_role_counts_only_within_its_period_and_lifetime() {
    let clock = ManualClock::new();
    let (t, path, _, other) = setup(&clock).await;
    // Not yet valid: stored, not honoured.
    let mut later = role(&clock, &other);
    later["m2m:rol"]["rn"] = json!("later");
    later["m2m:rol"]["tknb"] = json!(stamp(&clock, 600));
    assert_eq!(
        t.create(ADMIN, "cse-in", T::Role, later).await.rsc,
        R::Created
    );
    assert_eq!(
        read_as(&t, &other, &["operator"], &[]).await,
        R::OriginatorHasNoPrivilege
    );
    // Valid now for an hour, the resource expiring in ten minutes.
    let mut now = role(&clock, &other);
    now["m2m:rol"]["et"] = json!(stamp(&clock, 600));
    assert_eq!(
        t.create(ADMIN, "cse-in", T::Role, now).await.rsc,
        R::Created
    );
    assert_eq!(read_as(&t, &other, &["operator"], &[]).await, R::Ok);
    // Eleven minutes on: the first role's period has begun, the second has expired.
    clock.advance(Duration::from_secs(660));
    assert_eq!(read_as(&t, &other, &["operator"], &[]).await, R::Ok);
    assert_eq!(cse::expiry::sweep(&t.cse).await, 1);
    assert_eq!(t.retrieve(ADMIN, "cse-in/op").await.rsc, R::NotFound);
    // Past the end of the first role's period: nothing is left.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        read_as(&t, &other, &["operator"], &[]).await,
        R::OriginatorHasNoPrivilege
    );
    let actions: Vec<String> = admin_actions(&path).into_iter().map(|(a, _)| a).collect();
    assert_eq!(actions, ["rol-create", "rol-create", "rol-expire"]);
}

#[tokio::test]
async fn only_the_admin_creates_roles_and_tokens() {
    let clock = ManualClock::new();
    let (t, path, _, other) = setup(&clock).await;
    // A token granting every operation on every resource, CREATE on the CSEBase included,
    // still does not let an AE assign itself a role or store a token.
    let mut c = claims(&clock, "all", &other);
    c["tkps"] = json!({"pm": [{"pv": {"acr": [{"acor": [other], "acop": 63}]}}]});
    let all = hs(&c);
    for (ty, pc) in [
        (T::Role, role(&clock, &other)),
        (
            T::Token,
            json!({"m2m:tk": {"tkid": "t9", "tkob": hs(&claims(&clock, "t9", &other))}}),
        ),
    ] {
        let mut req = Request::new(Operation::Create, "cse-in", Some(other.clone()));
        req.ty = Some(ty);
        req.pc = Some(pc);
        req.tkns = vec![all.clone()];
        assert_eq!(t.send(req).await.rsc, R::OriginatorHasNoPrivilege, "{ty:?}");
        let plain = t.create(&other, "cse-in", ty, json!({})).await;
        assert_eq!(plain.rsc, R::BadRequest, "{ty:?}");
    }
    assert_eq!(
        (count(&t, T::Role).await, count(&t, T::Token).await),
        (0, 0)
    );
    assert_eq!(
        read_as(&t, &other, &["operator"], &[]).await,
        R::OriginatorHasNoPrivilege
    );
    assert!(admin_actions(&path).is_empty());
}

#[tokio::test]
async fn bad_roles_are_refused_with_their_code_and_change_nothing() {
    let clock = ManualClock::new();
    let (t, _, owner, other) = setup(&clock).await;
    let good = role(&clock, &other);
    let with = |k: &str, v: Value| {
        let mut r = good.clone();
        r["m2m:rol"][k] = v;
        r
    };
    let without = |k: &str| {
        let mut r = good.clone();
        r["m2m:rol"].as_object_mut().map(|m| m.remove(k));
        r
    };
    let cases = [
        ("no rlid", without("rlid"), R::BadRequest),
        ("no holder", without("tkhd"), R::BadRequest),
        ("no issuer", without("tkis"), R::BadRequest),
        ("no period end", without("tkna"), R::BadRequest),
        ("empty rlid", with("rlid", json!("")), R::BadRequest),
        ("rlid not a string", with("rlid", json!(7)), R::BadRequest),
        ("bad time", with("tknb", json!("soon")), R::BadRequest),
        (
            "reversed",
            with("tknb", json!(stamp(&clock, 7200))),
            R::BadRequest,
        ),
        ("unknown attribute", with("zz", json!(1)), R::BadRequest),
        (
            "read-only",
            with("ct", json!(stamp(&clock, 0))),
            R::BadRequest,
        ),
        (
            "other issuer",
            with("tkis", json!("/id-other")),
            R::ContentsUnacceptable,
        ),
        (
            "past et",
            with("et", json!(stamp(&clock, -10))),
            R::BadRequest,
        ),
    ];
    for (what, pc, rsc) in cases {
        assert_eq!(
            t.create(ADMIN, "cse-in", T::Role, pc).await.rsc,
            rsc,
            "{what}"
        );
    }
    // Only under the CSEBase.
    let r = t.create(ADMIN, "cse-in/owner", T::Role, good.clone()).await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    assert_eq!(count(&t, T::Role).await, 0);
    // What is assigned is fixed; tokenLink, labels and policies may change.
    assert_eq!(
        t.create(ADMIN, "cse-in", T::Role, good).await.rsc,
        R::Created
    );
    for (k, v) in [
        ("rlid", json!("admin")),
        ("tkhd", json!(owner)),
        ("tkna", json!(stamp(&clock, 99999))),
        ("rlnm", json!("x")),
    ] {
        let r = t
            .update(ADMIN, "cse-in/op", json!({"m2m:rol": { k: v }}))
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{k}");
    }
    let r = t.retrieve(ADMIN, "cse-in/op").await;
    assert_eq!(
        (attr(&r, "rlid"), attr(&r, "tkhd")),
        (json!("operator"), json!(other))
    );
    let r = t
        .update(
            ADMIN,
            "cse-in/op",
            json!({"m2m:rol": {"rltl": "cse-in/tok", "lbl": ["a"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "rltl"), json!("cse-in/tok"));
}

#[tokio::test]
async fn a_token_named_by_id_grants_its_holder_and_deletion_revokes() {
    let clock = ManualClock::new();
    let (t, path, owner, other) = setup(&clock).await;
    let object = hs(&claims(&clock, "tk1", &other));
    let r = t
        .created(
            ADMIN,
            "cse-in",
            T::Token,
            json!({"m2m:tk": {"rn": "tok", "tkid": "tk1", "tkob": object}}),
        )
        .await;
    // The claims are shown in plaintext.
    assert_eq!(attr(&r, "ty"), json!(32));
    assert_eq!(attr(&r, "tkis"), json!("das-hs"));
    assert_eq!(attr(&r, "tkhd"), json!(other));
    assert_eq!(attr(&r, "tkau"), json!(["id-in"]));
    assert_eq!(attr(&r, "tknm"), json!("reader"));
    assert!(attr(&r, "tkna").is_string() && attr(&r, "tknb").is_string());
    assert_eq!(attr(&r, "tkps")["pm"][0]["pv"]["acr"][0]["acop"], json!(2));
    // The holder naming it: granted; an unknown ID: refused; another originator: refused.
    assert_eq!(read_as(&t, &other, &[], &["tk1"]).await, R::Ok);
    assert_eq!(
        read_as(&t, &other, &[], &[]).await,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        read_as(&t, &other, &[], &["tk2"]).await,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        read_as(&t, &owner, &[], &["tk1"]).await,
        R::OriginatorHasNoPrivilege
    );
    // A token ID that is not known refuses even what the policies grant.
    assert_eq!(
        read_as(&t, &owner, &[], &["nope"]).await,
        R::OriginatorHasNoPrivilege
    );
    // Roles a stored token grants count as a carried token's do.
    let mut c = claims(&clock, "tk-role", &other);
    c["tkps"] = json!({"pm": [{"rids": ["operator"]}]});
    t.created(
        ADMIN,
        "cse-in",
        T::Token,
        json!({"m2m:tk": {"tkid": "tk-role", "tkob": hs(&c)}}),
    )
    .await;
    assert_eq!(
        read_as(&t, &other, &["operator"], &["tk-role"]).await,
        R::Ok
    );
    // Deletion revokes.
    assert_eq!(t.delete(ADMIN, "cse-in/tok").await.rsc, R::Deleted);
    assert_eq!(
        read_as(&t, &other, &[], &["tk1"]).await,
        R::OriginatorHasNoPrivilege
    );
    // After its expiry, a stored token grants nothing either.
    clock.advance(Duration::from_secs(3601));
    assert_eq!(
        read_as(&t, &other, &["operator"], &["tk-role"]).await,
        R::OriginatorHasNoPrivilege
    );
    let entries = admin_actions(&path);
    let actions: Vec<&str> = entries.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["tk-create", "tk-create", "tk-delete"]);
    // The audit trail names the token, never carries it.
    let text = std::fs::read_to_string(&path).expect("log");
    assert!(
        entries.iter().any(|(_, t)| t.contains(r#""tkid":"tk1""#)),
        "{entries:?}"
    );
    assert!(!text.contains(&object));
}

#[tokio::test]
async fn bad_tokens_are_refused_with_their_code_and_change_nothing() {
    let clock = ManualClock::new();
    let (t, _, owner, other) = setup(&clock).await;
    let good = claims(&clock, "tk1", &other);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"not-the-secret-not-the-secret-!!"),
    )
    .expect("sign");
    let tk = |tkid: &str, tkob: &str| json!({"m2m:tk": {"tkid": tkid, "tkob": tkob}});
    let now = clock.clock().now().timestamp();
    let cases = [
        ("malformed", tk("tk1", "not-a-token"), R::BadRequest),
        ("forged", tk("tk1", &forged), R::ContentsUnacceptable),
        (
            "unknown issuer",
            tk("tk1", &hs(&with("iss", json!("das-x")))),
            R::ContentsUnacceptable,
        ),
        (
            "expired",
            tk("tk1", &hs(&with("exp", json!(now - 10)))),
            R::ContentsUnacceptable,
        ),
        (
            "no audience",
            tk("tk1", &hs(&with("aud", json!([])))),
            R::ContentsUnacceptable,
        ),
        (
            "no holder",
            tk("tk1", &hs(&with("sub", Value::Null))),
            R::BadRequest,
        ),
        ("other tkid", tk("tk2", &hs(&good)), R::BadRequest),
        ("no tkob", json!({"m2m:tk": {"tkid": "tk1"}}), R::BadRequest),
        (
            "no tkid",
            json!({"m2m:tk": {"tkob": hs(&good)}}),
            R::BadRequest,
        ),
        (
            "holder differs",
            json!({"m2m:tk": {"tkid": "tk1", "tkob": hs(&good), "tkhd": owner}}),
            R::BadRequest,
        ),
        (
            "a claim the token lacks",
            json!({"m2m:tk": {"tkid": "tk1", "tkob": hs(&good), "tkex": "x"}}),
            R::BadRequest,
        ),
    ];
    for (what, pc, rsc) in cases {
        let r = t.create(ADMIN, "cse-in", T::Token, pc).await;
        assert_eq!(r.rsc, rsc, "{what}: {:?}", r.pc);
    }
    assert_eq!(count(&t, T::Token).await, 0);
    // Claims sent that agree with the token are accepted.
    t.created(ADMIN,
            "cse-in",
            T::Token,
            json!({"m2m:tk": {"rn": "tok", "tkid": "tk1", "tkob": hs(&good), "tkhd": other, "tkis": "das-hs"}})).await;
    // One Token-ID names one token.
    let again = t
        .create(ADMIN, "cse-in", T::Token, tk("tk1", &hs(&good)))
        .await;
    assert_eq!(again.rsc, R::Conflict);
    // A token is replaced, never edited.
    let r = t
        .update(ADMIN, "cse-in/tok", json!({"m2m:tk": {"tkob": hs(&good)}}))
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    assert_eq!(count(&t, T::Token).await, 1);
    // Deleting it frees its Token-ID.
    assert_eq!(t.delete(ADMIN, "cse-in/tok").await.rsc, R::Deleted);
    t.created(ADMIN, "cse-in", T::Token, tk("tk1", &hs(&good)))
        .await;
}

#[tokio::test]
async fn roles_and_tokens_survive_a_restart_and_are_discovered_and_subscribed_to() {
    let clock = ManualClock::new();
    let (mut t, path, _, other) = setup(&clock).await;
    assert_eq!(
        t.create(ADMIN, "cse-in", T::Role, role(&clock, &other))
            .await
            .rsc,
        R::Created
    );
    let object = hs(&claims(&clock, "tk1", &other));
    t.created(
        ADMIN,
        "cse-in",
        T::Token,
        json!({"m2m:tk": {"rn": "tok", "tkid": "tk1", "tkob": object}}),
    )
    .await;
    // Both types are announced as supported.
    let srt = attr(&t.retrieve(ADMIN, "cse-in").await, "srt");
    assert!(srt
        .as_array()
        .is_some_and(|a| a.contains(&json!(31)) && a.contains(&json!(32))));
    // Discovery by type.
    for (ty, found) in [(31, "cse-in/op"), (32, "cse-in/tok")] {
        let mut req = Request::new(Operation::Retrieve, "cse-in", Some(ADMIN.to_owned()));
        req.fc.fu = Some(1);
        req.fc.ty = vec![T::from_code(ty).expect("ty")];
        let r = t.send(req).await;
        assert_eq!(r.rsc, R::Ok);
        assert_eq!(r.pc, Some(json!({"m2m:uril": [found]})), "{ty}");
    }
    // A subscription to a role reports its changes.
    let receiver = Receiver::start(2000).await;
    t.created(
        ADMIN,
        "cse-in/op",
        T::Subscription,
        json!({"m2m:sub": {"rn": "watch", "nu": [receiver.url], "enc": {"net": [1]}}}),
    )
    .await;
    let r = t
        .update(
            ADMIN,
            "cse-in/op",
            json!({"m2m:rol": {"rltl": "cse-in/tok"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    let got = receiver.wait_for(2).await;
    assert!(
        got.iter()
            .any(|n| n["m2m:sgn"]["nev"]["rep"]["m2m:rol"]["rltl"] == json!("cse-in/tok")),
        "{got:?}"
    );
    // Reopened on the same store: both still grant.
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    t.cse = cse::Cse::open(config(&clock), Arc::new(store))
        .await
        .expect("cse");
    assert_eq!(read_as(&t, &other, &["operator"], &[]).await, R::Ok);
    assert_eq!(read_as(&t, &other, &[], &["tk1"]).await, R::Ok);
    let actions: Vec<String> = admin_actions(&path).into_iter().map(|(a, _)| a).collect();
    assert_eq!(actions, ["rol-create", "tk-create", "rol-update"]);
}

#[tokio::test]
async fn an_unknown_token_id_is_refused_whoever_names_it() {
    // Even the admin, whom access control does not hold: a request that names a token this
    // CSE does not keep asks for privileges that do not exist, and is refused.
    let clock = ManualClock::new();
    let (t, _, _, _) = setup(&clock).await;
    let mut req = Request::new(Operation::Retrieve, DATA, Some(ADMIN.to_owned()));
    req.tids = vec!["nope".into()];
    let r: Response = t.send(req).await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
}

/// A tmpfs mounted on `dir` (root only), unmounted (lazily) when dropped.
struct SmallVolume(std::path::PathBuf);

impl SmallVolume {
    /// `None` (the test skipped, with the reason printed) unless this runs as root; with
    /// `SECURE_CSE_REQUIRE_SERVICES` set, a failure instead.
    fn mount(dir: &std::path::Path) -> Option<Self> {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            assert!(
                std::env::var_os("SECURE_CSE_REQUIRE_SERVICES").is_none(),
                "root (mounting a tmpfs) is required"
            );
            eprintln!("SKIPPED: root (mounting a tmpfs) is missing");
            return None;
        }
        std::fs::create_dir_all(dir).expect("mount point");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount a tmpfs on {}", dir.display());
        Some(Self(dir.to_owned()))
    }

    /// Writes a filler file until the volume refuses more.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|()| f.sync_data()).is_ok() {}
    }
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_change_the_audit_log_cannot_record_is_refused_and_nothing_changes() {
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(volume) = SmallVolume::mount(&dir.path().join("audit")) else {
        return;
    };
    // Every entry starts a new segment file, so a full volume refuses the next one whatever
    // room the last page of the current file has left.
    let path = dir.path().join("audit").join("audit.log");
    let layout = manager::audit::Layout {
        segment_bytes: 1,
        keep_segments: 0,
        ..manager::audit::Layout::for_log(&path)
    };
    let log = manager::audit::AuditLog::open_with(&path, None, layout).expect("log");
    let t = TestCse::with_audit_log(config(&clock), dir, log).await;
    let other = t.register("other").await;
    assert_eq!(
        t.create(ADMIN, "cse-in", T::Role, role(&clock, &other))
            .await
            .rsc,
        R::Created
    );
    volume.fill();
    // CREATE, UPDATE and DELETE of a role, CREATE of an app rule: 5000, nothing changed.
    let mut second = role(&clock, &other);
    second["m2m:rol"]["rn"] = json!("second");
    let r = t.create(ADMIN, "cse-in", T::Role, second).await;
    assert_eq!(r.rsc, R::InternalServerError, "{:?}", r.pc);
    assert_eq!(count(&t, T::Role).await, 1);
    let r = t
        .update(ADMIN, "cse-in/op", json!({"m2m:rol": {"lbl": ["changed"]}}))
        .await;
    assert_eq!(r.rsc, R::InternalServerError, "{:?}", r.pc);
    let op = t.retrieve(ADMIN, "cse-in/op").await;
    assert_eq!(attr(&op, "lbl"), Value::Null);
    assert_eq!(
        t.delete(ADMIN, "cse-in/op").await.rsc,
        R::InternalServerError
    );
    assert_eq!(t.retrieve(ADMIN, "cse-in/op").await.rsc, R::Ok);
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::ServiceSubscribedAppRule,
            json!({"m2m:asar": {"rn": "rule", "aai": ["Nx"], "aae": ["C*"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::InternalServerError, "{:?}", r.pc);
    assert_eq!(count(&t, T::ServiceSubscribedAppRule).await, 0);
}

#[tokio::test]
async fn a_role_or_token_lives_no_longer_than_its_validity() {
    let clock = ManualClock::new();
    let (t, _, _, other) = setup(&clock).await;
    let tkna = |r: &Response, wrapper: &str| r.pc.as_ref().expect("pc")[wrapper]["tkna"].clone();
    // Without et: its end of validity (an hour), not the CSE's default lifetime.
    let r = t
        .created(ADMIN, "cse-in", T::Role, role(&clock, &other))
        .await;
    assert_eq!(attr(&r, "et"), tkna(&r, "m2m:rol"));
    // An et after it is a hint the CSE brings back to it, on CREATE and UPDATE.
    let mut later = role(&clock, &other);
    later["m2m:rol"]["rn"] = json!("later");
    later["m2m:rol"]["et"] = json!(stamp(&clock, 7200));
    let r = t.created(ADMIN, "cse-in", T::Role, later).await;
    assert_eq!(attr(&r, "et"), tkna(&r, "m2m:rol"));
    let r = t
        .update(
            ADMIN,
            "cse-in/later",
            json!({"m2m:rol": {"et": stamp(&clock, 7200)}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "et"), tkna(&r, "m2m:rol"));
    // An et before it is kept.
    let sooner = stamp(&clock, 600);
    let r = t
        .update(ADMIN, "cse-in/later", json!({"m2m:rol": {"et": sooner}}))
        .await;
    assert_eq!(attr(&r, "et"), json!(sooner));
    // A token: its end of validity is the token's own (exp, an hour).
    let r = t
        .created(
            ADMIN,
            "cse-in",
            T::Token,
            json!({"m2m:tk": {"tkid": "tk-life", "tkob": hs(&claims(&clock, "tk-life", &other))}}),
        )
        .await;
    assert_eq!(attr(&r, "et"), tkna(&r, "m2m:tk"));
    // Past it, the expiry sweep removes both roles and the token.
    clock.advance(Duration::from_secs(3601));
    assert_eq!(cse::expiry::sweep(&t.cse).await, 3);
    assert_eq!(count(&t, T::Role).await, 0);
    assert_eq!(count(&t, T::Token).await, 0);
}
