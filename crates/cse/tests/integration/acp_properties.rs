//! Property test of the access control decision: random policies and random requests, the
//! real decision (`Policy::compile` + `decide`, and the explainer's verdict) against a
//! reference model written here as a direct reading of TS-0003 clause 7.1.5 / TS-0001
//! clause 9.6.2 (permit-overrides: a rule grants when authn, origs, ops, ctxts and objd all
//! hold), with the choices recorded in `docs/security.md` (no wildcards in SP domains, an
//! absent context element holds, an unknown fact fails the element that needs it, a
//! malformed rule grants nothing).
//!
//! The model never calls the code under test: it has its own absolute forms of originators,
//! its own per-segment glob, its own cron fields, CIDR masks and regions.
#![allow(missing_docs)]

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use cse::access::decision::explain;
use cse::access::{decide, AccessRequest, Creation, Domain, GroupFact, Policy, Principal, RuleSet};
use cse::CseConfig;
use model::resources::acp::region::Location;
use model::{AccessOperation as Op, ResourceType as T};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

const SP: &str = "secure-cse.example";
const CSE: &str = "id-in";

// ---------------------------------------------------------------------------------------
// The inputs the generators draw from.

/// `acor` entries: every form of TS-0003 Table 7.1.3-2 (and a few that admit no one).
const ACOR: &[&str] = &[
    "all",
    "//secure-cse.example",
    "//SECURE-CSE.example",
    "//other.example",
    "//*",
    "Cabc",
    "C*",
    "Cab*",
    "C*c",
    "S*",
    "Sx",
    "/id-in/C*",
    "/id-in/Sx",
    "/id-mn/Cy",
    "/id-mn/*",
    "/*/C*",
    "//secure-cse.example/id-in/Cabc",
    "//secure-cse.example/Sx",
    "//secure-cse.example/S*",
    "//*/id-in/C*",
    "//other.example/id-x/*",
    "//other.example/*/Cz",
    "grp1",
    "/id-in/cse-in/g",
    "//secure-cse.example/id-in/cse-in/g",
    "role-op",
    "*",
];

/// `acor` entries that name a `<group>` (the caller resolves membership).
const GROUPS: &[&str] = &[
    "grp1",
    "/id-in/cse-in/g",
    "//secure-cse.example/id-in/cse-in/g",
];

/// Role-IDs an originator may hold.
const ROLES: &[&str] = &["role-op", "role-x"];

/// Originators: registered AEs (C and S stems) and entities behind other CSEs.
#[derive(Debug, Clone, Copy)]
enum Who {
    Ae(&'static str),
    Remote(&'static str),
}

const WHO: &[Who] = &[
    Who::Ae("Cabc"),
    Who::Ae("Cabd"),
    Who::Ae("Cxyc"),
    Who::Ae("Sx"),
    Who::Ae("Sxy"),
    Who::Remote("/id-mn/Cy"),
    Who::Remote("/id-mn/Cq"),
    Who::Remote("//other.example/id-x/Cz"),
    Who::Remote("//other.example/id-y/Cz"),
];

const OPS: [Op; 6] = [
    Op::CREATE,
    Op::RETRIEVE,
    Op::UPDATE,
    Op::DELETE,
    Op::NOTIFY,
    Op::DISCOVERY,
];

/// (type code, has a specialization) of targets and of created resources.
const TYPES: [T; 5] = [
    T::Container,
    T::ContentInstance,
    T::Ae,
    T::Subscription,
    T::Group,
];

/// `acip` blocks.
const BLOCKS: &[(&str, bool)] = &[
    ("10.0.0.0/8", true),
    ("10.1.2.0/24", true),
    ("10.1.2.3", true),
    ("192.168.0.0/16", true),
    ("0.0.0.0/0", true),
    ("2001:db8::/32", false),
    ("::1", false),
];

/// Peer addresses.
const IPS: &[&str] = &[
    "10.1.2.3",
    "10.1.2.200",
    "10.9.9.9",
    "192.168.4.4",
    "172.16.0.1",
    "2001:db8::7",
    "::1",
    "2001:db9::1",
];

/// Circles: (lat, lon, radius_m).
const CIRCLES: &[(f64, f64, f64)] = &[(0.0, 0.0, 1_000_000.0), (0.0, 0.0, 21_000_000.0)];

/// Positions, and for each circle whether it contains the position (known distances: (0,0)
/// is the centre; (10,10) is about 1,568 km from it; nothing on Earth is 21,000 km away).
const POSITIONS: &[((f64, f64), [bool; 2])] =
    &[((0.0, 0.0), [true, true]), ((10.0, 10.0), [false, true])];

const COUNTRIES: &[&str] = &["DE", "FR", "US", "de"];

// ---------------------------------------------------------------------------------------
// The model's own view of a policy.

/// One cron field element, as the model reads it.
#[derive(Debug, Clone)]
enum Elem {
    Any,
    Value(u32),
    Range(u32, u32, u32),
}

impl Elem {
    fn text(&self) -> String {
        match self {
            Elem::Any => "*".into(),
            Elem::Value(v) => v.to_string(),
            Elem::Range(a, b, 1) => format!("{a}-{b}"),
            Elem::Range(a, b, s) => format!("{a}-{b}/{s}"),
        }
    }
    // `is_multiple_of` needs Rust 1.87; the workspace supports 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    fn holds(&self, v: u32) -> bool {
        match *self {
            Elem::Any => true,
            Elem::Value(x) => v == x,
            Elem::Range(a, b, s) => a <= v && v <= b && (v - a) % s == 0,
        }
    }
}

/// A time window: minute, hour, day of week and month restricted (the rest `*`).
#[derive(Debug, Clone)]
struct Window {
    minute: Vec<Elem>,
    hour: Vec<Elem>,
    dow: Vec<Elem>,
    month: Vec<Elem>,
}

fn field(elems: &[Elem]) -> String {
    elems.iter().map(Elem::text).collect::<Vec<_>>().join(",")
}

fn field_holds(elems: &[Elem], v: u32) -> bool {
    elems.iter().any(|e| e.holds(v))
}

impl Window {
    fn text(&self) -> String {
        format!(
            "* {} {} * {} {} *",
            field(&self.minute),
            field(&self.hour),
            field(&self.month),
            field(&self.dow)
        )
    }
    fn holds(&self, t: DateTime<Utc>) -> bool {
        field_holds(&self.minute, t.minute())
            && field_holds(&self.hour, t.hour())
            && field_holds(&self.month, t.month())
            && field_holds(&self.dow, t.weekday().num_days_from_sunday())
    }
}

#[derive(Debug, Clone)]
enum ModelRegion {
    Circle(usize),
    Countries(Vec<&'static str>),
}

#[derive(Debug, Clone)]
struct Context {
    windows: Vec<Window>,
    blocks: Option<Vec<usize>>,
    region: Option<ModelRegion>,
    level: Option<u8>,
}

#[derive(Debug, Clone)]
struct ObjDetail {
    ty: Option<u16>,
    chty: Vec<u16>,
}

#[derive(Debug, Clone)]
struct Rule {
    acor: Vec<&'static str>,
    /// 1..=63, or out of range (a malformed rule: grants nothing).
    acop: u8,
    acaf: Option<bool>,
    acco: Option<Vec<Context>>,
    acod: Option<Vec<ObjDetail>>,
}

#[derive(Debug, Clone)]
struct Request {
    who: Who,
    op: Op,
    target: T,
    create: T,
    authenticated: bool,
    time: DateTime<Utc>,
    ip: Option<&'static str>,
    position: Option<usize>,
    country: Option<&'static str>,
    level: Option<u8>,
    roles: Vec<&'static str>,
    member_of: Vec<bool>,
}

// ---------------------------------------------------------------------------------------
// Rendering the model's policy as the JSON the CSE stores.

fn render_rule(r: &Rule) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("acor".into(), json!(r.acor));
    o.insert("acop".into(), json!(r.acop));
    if let Some(f) = r.acaf {
        o.insert("acaf".into(), json!(f));
    }
    if let Some(ctxs) = &r.acco {
        let list: Vec<Value> = ctxs
            .iter()
            .map(|c| {
                let mut m = serde_json::Map::new();
                if !c.windows.is_empty() {
                    let w: Vec<String> = c.windows.iter().map(Window::text).collect();
                    m.insert("actw".into(), json!(w));
                }
                if let Some(blocks) = &c.blocks {
                    let v4: Vec<&str> = blocks
                        .iter()
                        .filter(|&&i| BLOCKS[i].1)
                        .map(|&i| BLOCKS[i].0)
                        .collect();
                    let v6: Vec<&str> = blocks
                        .iter()
                        .filter(|&&i| !BLOCKS[i].1)
                        .map(|&i| BLOCKS[i].0)
                        .collect();
                    let mut a = serde_json::Map::new();
                    if !v4.is_empty() {
                        a.insert("ipv4".into(), json!(v4));
                    }
                    if !v6.is_empty() {
                        a.insert("ipv6".into(), json!(v6));
                    }
                    m.insert("acip".into(), Value::Object(a));
                }
                match &c.region {
                    Some(ModelRegion::Circle(i)) => {
                        let (lat, lon, r) = CIRCLES[*i];
                        m.insert("aclr".into(), json!({ "accr": [lat, lon, r] }));
                    }
                    Some(ModelRegion::Countries(cs)) => {
                        m.insert("aclr".into(), json!({ "accc": cs }));
                    }
                    None => {}
                }
                if let Some(l) = c.level {
                    m.insert("scl".into(), json!(l));
                }
                Value::Object(m)
            })
            .collect();
        o.insert("acco".into(), Value::Array(list));
    }
    if let Some(ods) = &r.acod {
        let list: Vec<Value> = ods
            .iter()
            .map(|d| match d.ty {
                Some(ty) => json!({ "ty": ty, "chty": d.chty }),
                None => json!({ "chty": d.chty }),
            })
            .collect();
        o.insert("acod".into(), Value::Array(list));
    }
    Value::Object(o)
}

// ---------------------------------------------------------------------------------------
// The reference model.

/// The originator's absolute AE-ID/CSE-relative forms (TS-0001 clause 7.2): a C-stem AE
/// is `//sp/cse/C..`; an S-stem AE is both `//sp/S..` and `//sp/cse/S..`; an SP-relative ID
/// gets the SP prepended; an absolute one is itself.
fn absolute_forms(who: Who) -> Vec<String> {
    match who {
        Who::Ae(stem) if stem.starts_with('S') => {
            vec![format!("//{SP}/{stem}"), format!("//{SP}/{CSE}/{stem}")]
        }
        Who::Ae(stem) => vec![format!("//{SP}/{CSE}/{stem}")],
        Who::Remote(id) if id.starts_with("//") => vec![id.to_owned()],
        Who::Remote(id) => vec![format!("//{SP}{id}")],
    }
}

fn sp_of(who: Who) -> &'static str {
    match who {
        Who::Remote(id) if id.starts_with("//") => id[2..].split('/').next().unwrap_or(""),
        _ => SP,
    }
}

/// `*` matches any run of characters within one path segment; a straightforward recursion.
fn glob(p: &[u8], t: &[u8]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&p[1..], t) || (t.first().is_some_and(|&c| c != b'/') && glob(p, &t[1..]))
        }
        (Some(a), Some(b)) if a == b => glob(&p[1..], &t[1..]),
        _ => false,
    }
}

/// Whether an `acor` entry admits the originator (TS-0003 Table 7.1.3-2).
fn model_admits(entry: &str, req: &Request) -> bool {
    if req.roles.contains(&entry) {
        return true;
    }
    if let Some(i) = GROUPS.iter().position(|g| *g == entry) {
        return req.member_of[i];
    }
    if entry == "all" {
        return true;
    }
    // An ID entry in absolute form; SP domains have no wildcard (TS-0003 clause 7.1.3).
    let absolute = if let Some(rest) = entry.strip_prefix("//") {
        if !rest.contains('/') {
            return rest.eq_ignore_ascii_case(sp_of(req.who));
        }
        entry.to_owned()
    } else if entry.starts_with('/') {
        format!("//{SP}{entry}")
    } else if entry.starts_with('S') {
        format!("//{SP}/{entry}")
    } else if entry.starts_with('C') {
        format!("//{SP}/{CSE}/{entry}")
    } else {
        // A role name the originator does not hold, or a bare `*`: admits no one.
        return false;
    };
    absolute_forms(req.who)
        .iter()
        .any(|f| glob(absolute.as_bytes(), f.as_bytes()))
}

fn v4(s: &str) -> Option<u32> {
    s.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

fn v6(s: &str) -> Option<u128> {
    s.parse::<std::net::Ipv6Addr>().ok().map(u128::from)
}

/// Whether an address is in a block: the first `len` bits agree.
fn in_block(block: &str, ip: &str) -> bool {
    let (addr, len) = block.split_once('/').unwrap_or((block, ""));
    match (v4(addr), v4(ip), v6(addr), v6(ip)) {
        (Some(a), Some(b), _, _) => {
            let len: u32 = len.parse().unwrap_or(32);
            len == 0 || (a >> (32 - len)) == (b >> (32 - len))
        }
        (_, _, Some(a), Some(b)) => {
            let len: u32 = len.parse().unwrap_or(128);
            len == 0 || (a >> (128 - len)) == (b >> (128 - len))
        }
        _ => false,
    }
}

fn context_holds(c: &Context, req: &Request) -> bool {
    let time = c.windows.is_empty() || c.windows.iter().any(|w| w.holds(req.time));
    let ip = c.blocks.as_ref().is_none_or(|bs| {
        req.ip
            .is_some_and(|ip| bs.iter().any(|&i| in_block(BLOCKS[i].0, ip)))
    });
    let region = match &c.region {
        None => true,
        Some(ModelRegion::Circle(i)) => req.position.is_some_and(|p| POSITIONS[p].1[*i]),
        Some(ModelRegion::Countries(cs)) => req
            .country
            .is_some_and(|c| cs.iter().any(|x| x.eq_ignore_ascii_case(c))),
    };
    let level = c
        .level
        .is_none_or(|min| req.level.is_some_and(|l| l >= min));
    time && ip && region && level
}

/// res_acr(k) of TS-0003 clause 7.1.5.
fn model_rule(r: &Rule, req: &Request) -> bool {
    let wellformed = (1..=63).contains(&r.acop);
    let authn = !r.acaf.unwrap_or(false) || req.authenticated;
    let origs = r.acor.iter().any(|e| model_admits(e, req));
    let ops = r.acop & req.op.0 != 0;
    let ctxts = r
        .acco
        .as_ref()
        .is_none_or(|cs| cs.is_empty() || cs.iter().any(|c| context_holds(c, req)));
    let objd = req.op != Op::CREATE
        || r.acod.as_ref().is_none_or(|ds| {
            ds.is_empty()
                || ds.iter().any(|d| {
                    d.ty.is_none_or(|t| t == req.target.code())
                        && d.chty.contains(&req.create.code())
                })
        });
    wellformed && authn && origs && ops && ctxts && objd
}

/// Permit-overrides over every rule of every policy.
fn model_decide(policies: &[Vec<Rule>], req: &Request) -> bool {
    policies.iter().flatten().any(|r| model_rule(r, req))
}

// ---------------------------------------------------------------------------------------
// The real decision.

fn domain() -> Domain {
    Domain::of(&CseConfig::default())
}

fn real_request(req: &Request) -> AccessRequest {
    let d = domain();
    AccessRequest {
        originator: match req.who {
            Who::Ae(stem) => Principal::ae(stem, &d),
            Who::Remote(id) => Principal::remote(id, &d),
        },
        op: req.op,
        target_ty: req.target,
        create: (req.op == Op::CREATE).then_some(Creation {
            ty: req.create,
            spty: None,
        }),
        authenticated: req.authenticated,
        time: req.time,
        ip: req.ip.map(|s| s.parse::<IpAddr>().expect("ip")),
        location: (req.position.is_some() || req.country.is_some()).then(|| Location {
            position: req.position.map(|p| POSITIONS[p].0),
            country: req.country.map(str::to_owned),
        }),
        credential_level: req.level,
        roles: req.roles.iter().map(|r| (*r).to_owned()).collect(),
        groups: GROUPS
            .iter()
            .zip(&req.member_of)
            .map(|(g, m)| GroupFact {
                entry: (*g).to_owned(),
                member: *m,
            })
            .collect(),
    }
}

fn real_policies(policies: &[Vec<Rule>]) -> Vec<Arc<Policy>> {
    policies
        .iter()
        .enumerate()
        .map(|(i, rules)| {
            let acrs = json!({ "acr": rules.iter().map(render_rule).collect::<Vec<_>>() });
            Arc::new(Policy::compile(
                &format!("acp{i}"),
                RuleSet::Privileges,
                Some(&acrs),
                &domain(),
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Generators.

fn elem(lo: u32, hi: u32) -> impl Strategy<Value = Elem> {
    prop_oneof![
        2 => Just(Elem::Any),
        2 => (lo..=hi).prop_map(Elem::Value),
        3 => (lo..=hi, lo..=hi, 1u32..4).prop_map(|(a, b, s)| Elem::Range(a.min(b), a.max(b), s)),
    ]
}

fn window() -> impl Strategy<Value = Window> {
    (
        prop::collection::vec(elem(0, 59), 1..3),
        prop::collection::vec(elem(0, 23), 1..3),
        prop::collection::vec(elem(0, 6), 1..3),
        prop::collection::vec(elem(1, 12), 1..2),
    )
        .prop_map(|(minute, hour, dow, month)| Window {
            minute,
            hour,
            dow,
            month,
        })
}

fn context() -> impl Strategy<Value = Context> {
    (
        prop::collection::vec(window(), 0..3),
        prop::option::of(prop::collection::vec(0..BLOCKS.len(), 1..3)),
        prop::option::of(prop_oneof![
            (0..CIRCLES.len()).prop_map(ModelRegion::Circle),
            prop::sample::subsequence(COUNTRIES, 1..3).prop_map(ModelRegion::Countries),
        ]),
        prop::option::of(1u8..=3),
    )
        .prop_map(|(windows, blocks, region, level)| Context {
            windows,
            blocks,
            region,
            level,
        })
}

fn type_code() -> impl Strategy<Value = u16> {
    prop::sample::select(TYPES.to_vec()).prop_map(T::code)
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::collection::vec(prop::sample::select(ACOR), 1..4),
        prop_oneof![9 => 1u8..=63, 1 => prop_oneof![Just(0u8), Just(64u8), Just(99u8)]],
        prop::option::of(any::<bool>()),
        prop::option::weighted(0.5, prop::collection::vec(context(), 0..3)),
        prop::option::weighted(
            0.4,
            prop::collection::vec(
                (
                    prop::option::of(type_code()),
                    prop::collection::vec(type_code(), 1..3),
                )
                    .prop_map(|(ty, chty)| ObjDetail { ty, chty }),
                0..3,
            ),
        ),
    )
        .prop_map(|(acor, acop, acaf, acco, acod)| Rule {
            acor,
            acop,
            acaf,
            acco,
            acod,
        })
}

fn request() -> impl Strategy<Value = Request> {
    (
        (
            prop::sample::select(WHO),
            prop::sample::select(OPS.to_vec()),
            prop::sample::select(TYPES.to_vec()),
            prop::sample::select(TYPES.to_vec()),
            any::<bool>(),
            // Any second of 2026.
            1_767_225_600i64..1_798_761_600,
        ),
        (
            prop::option::weighted(0.9, prop::sample::select(IPS)),
            prop::option::of(0..POSITIONS.len()),
            prop::option::of(prop::sample::select(COUNTRIES)),
            prop::option::of(1u8..=3),
            prop::sample::subsequence(ROLES, 0..=ROLES.len()),
            prop::collection::vec(any::<bool>(), GROUPS.len()),
        ),
    )
        .prop_map(
            |(
                (who, op, target, create, authenticated, secs),
                (ip, position, country, level, roles, member_of),
            )| {
                Request {
                    who,
                    op,
                    target,
                    create,
                    authenticated,
                    time: Utc.timestamp_opt(secs, 0).single().expect("time"),
                    ip,
                    position,
                    country,
                    level,
                    roles,
                    member_of,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The real decision, and the explainer's verdict, equal the model's on random input.
    #[test]
    fn decision_matches_the_reference_model(
        policies in prop::collection::vec(prop::collection::vec(rule(), 0..4), 0..3),
        reqs in prop::collection::vec(request(), 1..6),
    ) {
        let real = real_policies(&policies);
        for req in &reqs {
            let expected = model_decide(&policies, req);
            let access = real_request(req);
            prop_assert_eq!(decide(&real, &access), expected, "decide, request {:?}", req);
            let (granted, _) = explain(&real, &access);
            prop_assert_eq!(granted, expected, "explain, request {:?}", req);
        }
    }

    /// One rule on its own: each rule's verdict matches, so a discrepancy points at a rule.
    #[test]
    fn each_rule_matches_the_reference_model(r in rule(), req in request()) {
        let real = real_policies(&[vec![r.clone()]]);
        prop_assert_eq!(decide(&real, &real_request(&req)), model_rule(&r, &req), "rule {}", render_rule(&r));
    }
}

/// The model itself: a few fixed cases, so a broken model cannot agree with broken code.
#[test]
fn the_model_reads_the_clauses() {
    let at = Utc
        .with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .expect("time");
    let req = Request {
        who: Who::Ae("Sx"),
        op: Op::RETRIEVE,
        target: T::Container,
        create: T::ContentInstance,
        authenticated: false,
        time: at,
        ip: Some("10.1.2.3"),
        position: None,
        country: None,
        level: None,
        roles: vec![],
        member_of: vec![false; GROUPS.len()],
    };
    assert!(model_admits("S*", &req));
    assert!(model_admits("/id-in/Sx", &req));
    assert!(!model_admits("/id-in/C*", &req));
    assert!(!model_admits("//*", &req));
    assert!(!model_admits("*", &req));
    assert!(!model_admits("/*/C*", &req));
    assert!(glob(b"//a/*/C*", b"//a/id/Cx"));
    assert!(!glob(b"//a/*", b"//a/id/Cx"));
    assert!(in_block("10.1.2.0/24", "10.1.2.200"));
    assert!(!in_block("10.1.2.0/24", "10.1.3.1"));
    assert!(in_block("0.0.0.0/0", "172.16.0.1"));
    assert!(!in_block("0.0.0.0/0", "::1"));
    let w = Window {
        minute: vec![Elem::Any],
        hour: vec![Elem::Range(9, 17, 1)],
        dow: vec![Elem::Range(1, 5, 1)],
        month: vec![Elem::Any],
    };
    assert_eq!(w.text(), "* * 9-17 * * 1-5 *");
    assert!(w.holds(at), "Monday 10:00");
    assert!(!w.holds(at + chrono::Duration::days(6)), "Sunday");
}
