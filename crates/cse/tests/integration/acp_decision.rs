//! The pure access control decision, table-driven: every element of an access control rule
//! (`acor` in each form, `acop`, `acaf`, `acco` with `actw`/`acip`/`aclr`/`scl`, `acod`) on
//! its own and combined, with the explainer's trace checked against the decision.
#![allow(missing_docs)]

use chrono::{TimeZone, Utc};
use cse::access::decision::explain;
use cse::access::explain::Condition;
use cse::access::{decide, AccessRequest, Creation, Domain, GroupFact, Policy, Principal, RuleSet};
use cse::CseConfig;
use model::resources::acp::region::Location;
use model::{AccessOperation as Op, ResourceType as T};
use serde_json::{json, Value};
use std::sync::Arc;

fn domain() -> Domain {
    Domain::of(&CseConfig::default())
}

/// A RETRIEVE by the AE `Cabc` of a container, unauthenticated, from 10.1.2.3, on Monday
/// 2026-03-02 at 10:00:00 UTC, with no location, no credential level, no roles, no groups.
fn base() -> AccessRequest {
    AccessRequest {
        originator: Principal::ae("Cabc", &domain()),
        op: Op::RETRIEVE,
        target_ty: T::Container,
        create: None,
        authenticated: false,
        time: Utc
            .with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .expect("valid time"),
        ip: Some("10.1.2.3".parse().expect("ip")),
        location: None,
        credential_level: None,
        roles: Vec::new(),
        groups: Vec::new(),
    }
}

fn policy(ri: &str, rules: Value) -> Arc<Policy> {
    Arc::new(Policy::compile(
        ri,
        RuleSet::Privileges,
        Some(&json!({ "acr": rules })),
        &domain(),
    ))
}

fn create(ty: T) -> fn(&mut AccessRequest) {
    match ty {
        T::ContentInstance => |r| {
            r.op = Op::CREATE;
            r.create = Some(Creation {
                ty: T::ContentInstance,
                spty: None,
            });
        },
        _ => |r| {
            r.op = Op::CREATE;
            r.create = Some(Creation {
                ty: T::Container,
                spty: None,
            });
        },
    }
}

fn nothing(_: &mut AccessRequest) {}

struct Case {
    name: &'static str,
    rules: Value,
    setup: fn(&mut AccessRequest),
    granted: bool,
    /// Conditions the trace must name (for a refusal).
    failing: &'static [Condition],
}

fn case(
    name: &'static str,
    rules: Value,
    setup: fn(&mut AccessRequest),
    granted: bool,
    failing: &'static [Condition],
) -> Case {
    Case {
        name,
        rules,
        setup,
        granted,
        failing,
    }
}

fn rule(acor: &[&str], acop: u8) -> Value {
    json!({"acor": acor, "acop": acop})
}

fn with(mut rule: Value, key: &str, value: Value) -> Value {
    if let Some(obj) = rule.as_object_mut() {
        obj.insert(key.to_owned(), value);
    }
    rule
}

use Condition::*;

fn originator_cases() -> Vec<Case> {
    let r = |acor: &str| json!([rule(&[acor], 2)]);
    vec![
        case("all", r("all"), nothing, true, &[]),
        case("exact AE-ID", r("Cabc"), nothing, true, &[]),
        case(
            "prefix without * is not a match",
            r("Cab"),
            nothing,
            false,
            &[Originator],
        ),
        case(
            "longer ID is not a match",
            r("Cabcd"),
            nothing,
            false,
            &[Originator],
        ),
        case("C* matches", r("C*"), nothing, true, &[]),
        case("Cab* matches", r("Cab*"), nothing, true, &[]),
        case("*c matches in the middle", r("C*c"), nothing, true, &[]),
        case(
            "S* does not match a C AE-ID",
            r("S*"),
            nothing,
            false,
            &[Originator],
        ),
        case(
            "a bare * is no ID pattern",
            r("*"),
            nothing,
            false,
            &[Originator],
        ),
        case("SP-relative exact", r("/id-in/Cabc"), nothing, true, &[]),
        case("SP-relative pattern", r("/id-in/C*"), nothing, true, &[]),
        case(
            "SP-relative other CSE",
            r("/id-mn/Cabc"),
            nothing,
            false,
            &[Originator],
        ),
        case("SP-relative any CSE", r("/*/Cabc"), nothing, true, &[]),
        case(
            "absolute exact",
            r("//secure-cse.example/id-in/Cabc"),
            nothing,
            true,
            &[],
        ),
        case(
            "absolute wildcard SP",
            r("//*/id-in/C*"),
            nothing,
            true,
            &[],
        ),
        case(
            "absolute other SP",
            r("//other.sp/id-in/Cabc"),
            nothing,
            false,
            &[Originator],
        ),
        case(
            "* stays within a segment",
            r("//*/Cabc"),
            nothing,
            false,
            &[Originator],
        ),
        case("SP domain", r("//secure-cse.example"), nothing, true, &[]),
        case(
            "SP domain, any case",
            r("//Secure-CSE.example"),
            nothing,
            true,
            &[],
        ),
        case(
            "other SP domain",
            r("//other.sp"),
            nothing,
            false,
            &[Originator],
        ),
        case(
            "SP domains take no wildcards",
            r("//secure-cse.*"),
            nothing,
            false,
            &[Originator],
        ),
        case(
            "C* does not match Cfoo/bar",
            r("/C*"),
            |q| q.originator = Principal::remote("/Cfoo/bar", &domain()),
            false,
            &[Originator],
        ),
        case(
            "C* does not match an entity behind another CSE",
            r("C*"),
            |q| q.originator = Principal::remote("/id-mn/Cx", &domain()),
            false,
            &[Originator],
        ),
        case(
            "another CSE's entities by pattern",
            r("/id-mn/*"),
            |q| q.originator = Principal::remote("/id-mn/Cx", &domain()),
            true,
            &[],
        ),
        case(
            "no prefix match across segments",
            r("/id-mn*"),
            |q| q.originator = Principal::remote("/id-mn/Cx", &domain()),
            false,
            &[Originator],
        ),
        case(
            "S AE-ID, CSE-relative",
            r("Sx"),
            |q| q.originator = Principal::ae("Sx", &domain()),
            true,
            &[],
        ),
        case(
            "S AE-ID, SP-relative",
            r("/Sx"),
            |q| q.originator = Principal::ae("Sx", &domain()),
            true,
            &[],
        ),
        case(
            "S AE-ID, under the CSE",
            r("/id-in/S*"),
            |q| q.originator = Principal::ae("Sx", &domain()),
            true,
            &[],
        ),
        case(
            "C* does not match an S AE-ID",
            r("C*"),
            |q| q.originator = Principal::ae("Sx", &domain()),
            false,
            &[Originator],
        ),
        case(
            "group member",
            r("grp1"),
            |q| {
                q.groups = vec![GroupFact {
                    entry: "grp1".into(),
                    member: true,
                }]
            },
            true,
            &[],
        ),
        case(
            "group, not a member",
            r("grp1"),
            |q| {
                q.groups = vec![GroupFact {
                    entry: "grp1".into(),
                    member: false,
                }]
            },
            false,
            &[Originator],
        ),
        case(
            "From naming a group it is not in gets nothing",
            r("grp1"),
            |q| q.originator = Principal::ae("grp1", &domain()),
            false,
            &[Originator],
        ),
        case(
            "group by SP-relative address, member",
            r("/id-in/cse-in/g"),
            |q| {
                q.groups = vec![GroupFact {
                    entry: "/id-in/cse-in/g".into(),
                    member: true,
                }]
            },
            true,
            &[],
        ),
        case(
            "a group fact for another entry does not help",
            r("grp1"),
            |q| {
                q.groups = vec![GroupFact {
                    entry: "grp2".into(),
                    member: true,
                }]
            },
            false,
            &[Originator],
        ),
        case(
            "verified role",
            r("operators"),
            |q| q.roles = vec!["operators".into()],
            true,
            &[],
        ),
        case(
            "role not held",
            r("operators"),
            |q| q.roles = vec!["viewers".into()],
            false,
            &[Originator],
        ),
        case(
            "From naming a role it does not hold gets nothing",
            r("operators"),
            |q| q.originator = Principal::remote("/operators", &domain()),
            false,
            &[Originator],
        ),
        case(
            "roles take no wildcards",
            r("oper*"),
            |q| q.roles = vec!["operators".into()],
            false,
            &[Originator],
        ),
        case(
            "one of several entries",
            json!([rule(&["Cnope", "S*", "Cabc"], 2)]),
            nothing,
            true,
            &[],
        ),
    ]
}

fn operation_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let ops = [
        (Op::CREATE, "CREATE"),
        (Op::RETRIEVE, "RETRIEVE"),
        (Op::UPDATE, "UPDATE"),
        (Op::DELETE, "DELETE"),
        (Op::NOTIFY, "NOTIFY"),
        (Op::DISCOVERY, "DISCOVERY"),
    ];
    // Each operation against a rule with exactly its bit, every other bit, and all bits.
    for (i, (op, _)) in ops.iter().enumerate() {
        let setups: [fn(&mut AccessRequest); 6] = [
            |q| q.op = Op::CREATE,
            |q| q.op = Op::RETRIEVE,
            |q| q.op = Op::UPDATE,
            |q| q.op = Op::DELETE,
            |q| q.op = Op::NOTIFY,
            |q| q.op = Op::DISCOVERY,
        ];
        out.push(case(
            "exactly its bit",
            json!([rule(&["all"], op.0)]),
            setups[i],
            true,
            &[],
        ));
        out.push(case(
            "every other bit",
            json!([rule(&["all"], 63 & !op.0)]),
            setups[i],
            false,
            &[Operation],
        ));
        out.push(case(
            "all bits",
            json!([rule(&["all"], 63)]),
            setups[i],
            true,
            &[],
        ));
    }
    out
}

fn ctx_rule(acco: Value) -> Value {
    json!([with(rule(&["all"], 2), "acco", acco)])
}

fn context_cases() -> Vec<Case> {
    vec![
        // acaf
        case(
            "acaf needs rq_authn",
            json!([with(rule(&["all"], 2), "acaf", json!(true))]),
            nothing,
            false,
            &[Authentication],
        ),
        case(
            "acaf with rq_authn",
            json!([with(rule(&["all"], 2), "acaf", json!(true))]),
            |q| q.authenticated = true,
            true,
            &[],
        ),
        case(
            "acaf false",
            json!([with(rule(&["all"], 2), "acaf", json!(false))]),
            nothing,
            true,
            &[],
        ),
        // actw
        case(
            "office hours",
            ctx_rule(json!([{"actw": ["* * 8-17 * * 1-5 *"]}])),
            nothing,
            true,
            &[],
        ),
        case(
            "after hours",
            ctx_rule(json!([{"actw": ["* * 8-17 * * 1-5 *"]}])),
            |q| {
                q.time = Utc
                    .with_ymd_and_hms(2026, 3, 2, 18, 0, 0)
                    .single()
                    .expect("time")
            },
            false,
            &[TimeWindow],
        ),
        case(
            "weekend",
            ctx_rule(json!([{"actw": ["* * 8-17 * * 1-5 *"]}])),
            |q| {
                q.time = Utc
                    .with_ymd_and_hms(2026, 3, 1, 10, 0, 0)
                    .single()
                    .expect("time")
            },
            false,
            &[TimeWindow],
        ),
        case(
            "one of several windows",
            ctx_rule(json!([{"actw": ["* * 0-1 * * * *", "* 0-5 10 * * * *"]}])),
            nothing,
            true,
            &[],
        ),
        case(
            "another year",
            ctx_rule(json!([{"actw": ["* * * * * * 2027"]}])),
            nothing,
            false,
            &[TimeWindow],
        ),
        // acip
        case(
            "address in the block",
            ctx_rule(json!([{"acip": {"ipv4": ["10.0.0.0/8"]}}])),
            nothing,
            true,
            &[],
        ),
        case(
            "address outside the block",
            ctx_rule(json!([{"acip": {"ipv4": ["10.0.0.0/16"]}}])),
            nothing,
            false,
            &[IpAddress],
        ),
        case(
            "one exact address of several",
            ctx_rule(json!([{"acip": {"ipv4": ["192.168.0.1", "10.1.2.3"]}}])),
            nothing,
            true,
            &[],
        ),
        case(
            "unknown peer address",
            ctx_rule(json!([{"acip": {"ipv4": ["0.0.0.0/0"]}}])),
            |q| q.ip = None,
            false,
            &[IpAddress],
        ),
        case(
            "IPv6 block",
            ctx_rule(json!([{"acip": {"ipv6": ["2001:db8::/32"]}}])),
            |q| q.ip = Some("2001:db8::7".parse().expect("ip")),
            true,
            &[],
        ),
        case(
            "IPv4 peer, IPv6 list",
            ctx_rule(json!([{"acip": {"ipv6": ["::/0"]}}])),
            nothing,
            false,
            &[IpAddress],
        ),
        case(
            "IPv4-mapped peer",
            ctx_rule(json!([{"acip": {"ipv4": ["10.1.0.0/16"]}}])),
            |q| q.ip = Some("::ffff:10.1.2.3".parse().expect("ip")),
            true,
            &[],
        ),
        // aclr
        case(
            "location unknown",
            ctx_rule(json!([{"aclr": {"accr": [48.85, 2.35, 1000.0]}}])),
            nothing,
            false,
            &[Location],
        ),
        case(
            "inside the circle",
            ctx_rule(json!([{"aclr": {"accr": [48.85, 2.35, 1000.0]}}])),
            |q| {
                q.location = Some(Location {
                    position: Some((48.851, 2.351)),
                    country: None,
                })
            },
            true,
            &[],
        ),
        case(
            "outside the circle",
            ctx_rule(json!([{"aclr": {"accr": [48.85, 2.35, 1000.0]}}])),
            |q| {
                q.location = Some(Location {
                    position: Some((48.9, 2.35)),
                    country: None,
                })
            },
            false,
            &[Location],
        ),
        case(
            "in a listed country",
            ctx_rule(json!([{"aclr": {"accc": ["FR", "KR"]}}])),
            |q| {
                q.location = Some(Location {
                    position: None,
                    country: Some("KR".into()),
                })
            },
            true,
            &[],
        ),
        case(
            "country unknown",
            ctx_rule(json!([{"aclr": {"accc": ["FR"]}}])),
            |q| {
                q.location = Some(Location {
                    position: Some((48.85, 2.35)),
                    country: None,
                })
            },
            false,
            &[Location],
        ),
        // scl (secure-cse extension)
        case(
            "level unknown",
            ctx_rule(json!([{"scl": 2}])),
            nothing,
            false,
            &[Level],
        ),
        case(
            "level too low",
            ctx_rule(json!([{"scl": 2}])),
            |q| q.credential_level = Some(1),
            false,
            &[Level],
        ),
        case(
            "level enough",
            ctx_rule(json!([{"scl": 2}])),
            |q| q.credential_level = Some(2),
            true,
            &[],
        ),
        case(
            "level above",
            ctx_rule(json!([{"scl": 2}])),
            |q| q.credential_level = Some(3),
            true,
            &[],
        ),
        // combinations inside and across contexts
        case(
            "an empty context restricts nothing",
            ctx_rule(json!([{}])),
            nothing,
            true,
            &[],
        ),
        case(
            "every condition of a context must hold",
            ctx_rule(json!([{"actw": ["* * * * * * *"], "acip": {"ipv4": ["192.168.0.0/16"]}}])),
            nothing,
            false,
            &[IpAddress],
        ),
        case(
            "all four hold",
            ctx_rule(
                json!([{"actw": ["* * 10 * * * *"], "acip": {"ipv4": ["10.0.0.0/8"]},
                             "aclr": {"accc": ["KR"]}, "scl": 3}]),
            ),
            |q| {
                q.credential_level = Some(3);
                q.location = Some(Location {
                    position: Some((37.5, 127.0)),
                    country: Some("KR".into()),
                });
            },
            true,
            &[],
        ),
        case(
            "all four fail, all four named",
            ctx_rule(
                json!([{"actw": ["* * 11 * * * *"], "acip": {"ipv4": ["192.168.0.0/16"]},
                             "aclr": {"accc": ["KR"]}, "scl": 3}]),
            ),
            nothing,
            false,
            &[TimeWindow, IpAddress, Location, Level],
        ),
        case(
            "any one context is enough",
            ctx_rule(json!([{"acip": {"ipv4": ["192.168.0.0/16"]}}, {"actw": ["* * 10 * * * *"]}])),
            nothing,
            true,
            &[],
        ),
        case(
            "no context holds",
            ctx_rule(json!([{"acip": {"ipv4": ["192.168.0.0/16"]}}, {"scl": 1}])),
            nothing,
            false,
            &[IpAddress, Level],
        ),
    ]
}

fn object_cases() -> Vec<Case> {
    let acod = |d: Value| json!([with(rule(&["all"], 1), "acod", d)]);
    vec![
        case(
            "allowed child type",
            acod(json!([{"chty": [4]}])),
            create(T::ContentInstance),
            true,
            &[],
        ),
        case(
            "other child type",
            acod(json!([{"chty": [4]}])),
            create(T::Container),
            false,
            &[ObjectDetails],
        ),
        case(
            "parent type matches",
            acod(json!([{"ty": 3, "chty": [3, 4]}])),
            create(T::Container),
            true,
            &[],
        ),
        case(
            "parent type differs",
            acod(json!([{"ty": 2, "chty": [3, 4]}])),
            create(T::Container),
            false,
            &[ObjectDetails],
        ),
        case(
            "one of several details",
            acod(json!([{"ty": 2, "chty": [3]}, {"chty": [4]}])),
            create(T::ContentInstance),
            true,
            &[],
        ),
        case(
            "specialization the request does not have",
            acod(json!([{"spty": "org.example.temp", "chty": [4]}])),
            create(T::ContentInstance),
            false,
            &[ObjectDetails],
        ),
        case(
            "specialization the request has",
            acod(json!([{"spty": "org.example.temp", "chty": [4]}])),
            |q| {
                q.op = Op::CREATE;
                q.create = Some(Creation {
                    ty: T::ContentInstance,
                    spty: Some("org.example.temp".into()),
                });
            },
            true,
            &[],
        ),
        case(
            "CREATE with an unknown type fails closed",
            acod(json!([{"chty": [4]}])),
            |q| q.op = Op::CREATE,
            false,
            &[ObjectDetails],
        ),
        case(
            "acod does not restrict other operations",
            json!([with(rule(&["all"], 2), "acod", json!([{"chty": [4]}]))]),
            nothing,
            true,
            &[],
        ),
    ]
}

fn combination_cases() -> Vec<Case> {
    vec![
        case(
            "permit overrides: a later rule grants",
            json!([rule(&["Cnope"], 63), rule(&["all"], 1), rule(&["Cabc"], 2)]),
            nothing,
            true,
            &[],
        ),
        case(
            "every condition of a rule must hold",
            json!([with(
                with(rule(&["Cabc"], 3), "acaf", json!(true)),
                "acco",
                json!([{"scl": 1}])
            )]),
            |q| q.authenticated = true,
            false,
            &[Level],
        ),
        case(
            "all five kinds fail at once",
            json!([with(
                with(
                    with(rule(&["Cnope"], 2), "acaf", json!(true)),
                    "acco",
                    json!([{"scl": 1}])
                ),
                "acod",
                json!([{"chty": [3]}])
            )]),
            create(T::ContentInstance),
            false,
            &[Originator, Operation, Authentication, Level, ObjectDetails],
        ),
        case(
            "an unreadable rule grants nothing, the next one still can",
            json!([rule(&["all"], 99), rule(&["Cabc"], 2)]),
            nothing,
            true,
            &[],
        ),
        case(
            "only an unreadable rule",
            json!([with(
                rule(&["all"], 2),
                "acco",
                json!([{"actw": ["not a cron"]}])
            )]),
            nothing,
            false,
            &[Unreadable],
        ),
        case("no rules at all", json!([]), nothing, false, &[]),
    ]
}

fn check(c: &Case, policies: &[Arc<Policy>]) {
    let mut req = base();
    (c.setup)(&mut req);
    assert_eq!(decide(policies, &req), c.granted, "{}: {}", c.name, c.rules);
    let (granted, trace) = explain(policies, &req);
    assert_eq!(granted, c.granted, "{}: explain disagrees", c.name);
    let rules: Vec<_> = trace.iter().flat_map(|p| &p.rules).collect();
    assert_eq!(
        rules.iter().any(|r| r.holds),
        c.granted,
        "{}: trace disagrees",
        c.name
    );
    for want in c.failing {
        assert!(
            rules
                .iter()
                .flat_map(|r| &r.failures)
                .any(|f| f.condition == *want),
            "{}: trace lacks {want:?}: {rules:?}",
            c.name
        );
    }
    for r in &rules {
        assert_eq!(r.holds, r.failures.is_empty(), "{}: {r:?}", c.name);
    }
}

#[test]
fn every_element_and_combination() {
    let all: Vec<Case> = [
        originator_cases(),
        operation_cases(),
        context_cases(),
        object_cases(),
        combination_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(all.len() > 90, "the table shrank: {}", all.len());
    for c in &all {
        check(c, &[policy("acp1", c.rules.clone())]);
    }
}

#[test]
fn permit_overrides_across_policies() {
    let deny = policy("acp1", json!([rule(&["Cnope"], 63)]));
    let grant = policy("acp2", json!([rule(&["C*"], 2)]));
    let req = base();
    assert!(!decide(std::slice::from_ref(&deny), &req));
    assert!(decide(&[deny.clone(), grant.clone()], &req));
    assert!(decide(&[grant, deny], &req), "order does not matter");
    assert!(!decide(&[], &req), "no policy: nothing granted");
}

#[test]
fn the_one_line_trace_names_policies_rules_and_conditions() {
    use cse::access::{Basis, Explanation};
    let policies = [policy(
        "acp1",
        json!([
            rule(&["Cabc"], 1),
            with(
                rule(&["all"], 2),
                "acco",
                json!([{"acip": {"ipv4": ["192.168.0.0/16"]}}])
            )
        ]),
    )];
    let req = base();
    let (granted, traces) = explain(&policies, &req);
    let e = Explanation {
        originator: "Cabc".into(),
        op: req.op,
        target: "cnt1".into(),
        granted,
        basis: Basis::Policies {
            via: "acpi",
            missing: vec!["gone".into()],
        },
        policies: traces,
    };
    let line = e.to_string();
    assert!(!line.contains('\n'), "{line}");
    for part in [
        "refused RETRIEVE by Cabc on cnt1 via acpi",
        "not ACPs: gone",
        "acp1/pv#1 [operation: acop 1 does not include RETRIEVE]",
        "acp1/pv#2 [ip-address: acco 1: 10.1.2.3 is not in acip [192.168.0.0/16]]",
    ] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
    let json = e.to_json();
    assert_eq!(json["decision"], "refused");
    assert_eq!(
        json["policies"][0]["rules"][1]["failed"][0]["condition"],
        "ip-address"
    );
}

#[test]
fn cse_ids_and_s_ae_ids_are_separate_originators() {
    // The S-AE Sx, in every form an acor entry may take, admits the AE Sx and never a
    // peer whose CSE-ID would be Sx (nor an entity behind it).
    for entry in ["Sx", "/Sx", "//secure-cse.example/Sx"] {
        let p = [policy("acp1", json!([{"acor": [entry], "acop": 2}]))];
        let mut ae = base();
        ae.originator = Principal::ae("Sx", &domain());
        assert!(decide(&p, &ae), "{entry}");
        for remote in ["/Sx", "//secure-cse.example/Sx", "/Sx/Cy"] {
            let mut cse = base();
            cse.originator = Principal::remote(remote, &domain());
            assert!(!decide(&p, &cse), "{entry} admitted {remote}");
        }
    }
    // A CSE-ID entry admits that CSE and not an AE.
    let p = [policy("acp1", json!([{"acor": ["/id-mn"], "acop": 2}]))];
    let mut cse = base();
    cse.originator = Principal::remote("/id-mn", &domain());
    assert!(decide(&p, &cse));
    let mut ae = base();
    ae.originator = Principal::ae("Cid-mn", &domain());
    assert!(!decide(&p, &ae));
}
