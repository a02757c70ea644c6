//! `<notificationTargetPolicy>` (ty 26, TS-0004 clause 7.4.31) and `<policyDeletionRules>`
//! (ty 27, clause 7.4.32) over HTTP against the real binary with curl, and their effect:
//! a notification target leaving a subscription through its
//! `<notificationTargetSelfReference>` (TS-0004 clause 7.4.33; TS-0001 clauses 10.2.10.8
//! and 10.2.10.9), each action of the policy, its rules, and refused input answered with
//! its status code and nothing changed.
use crate::common;
use crate::notifications::{Arrived, Target};

use common::*;
use serde_json::{json, Value};

const ADMIN: &str = "CAdmin";

fn sgn(a: &Arrived) -> Value {
    a.json()["m2m:sgn"].clone()
}

/// Registers an AE that receives requests at `poa`; returns its AE-ID.
fn register_at(http: &Http, rn: &str, poa: &str) -> String {
    let body = json!({"m2m:ae": {"rn": rn, "api": "Nntp", "rr": true, "srv": ["3"],
        "poa": [poa]}});
    let a = http.create("C", "cse-in", 2, &body.to_string());
    a.body["m2m:ae"]["aei"].as_str().expect("aei").to_owned()
}

/// The administrator's default policy with action `acn`, replacing any earlier one.
fn provider_default(http: &Http, acn: u8) {
    http.send("DELETE", ADMIN, "cse-in/spDefault", None);
    let body = json!({"m2m:ntp": {"rn": "spDefault", "acn": acn, "plbl": "default"}});
    http.create(ADMIN, "cse-in", 26, &body.to_string());
}

fn nu(http: &Http, from: &str, sub: &str) -> Value {
    http.get(from, sub).body["m2m:sub"]["nu"].clone()
}

#[test]
fn policies_and_rules_are_resources() {
    if skip_unless(have_curl(), "curl").is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(&dir.path().join("data"));
    let http = Http { base: server.url() };
    let ae = http.register("someone");
    let srt = http.get(&ae, "cse-in").body["m2m:cb"]["srt"].clone();
    for ty in [26, 27] {
        assert!(
            srt.as_array().is_some_and(|a| a.contains(&json!(ty))),
            "{srt}"
        );
    }
    // TS-0004 clause 7.4.31.2.1: CREATE under the <CSEBase>; refused input first.
    for (from, body, rsc) in [
        (
            ADMIN,
            json!({"m2m:ntp": {"rn": "p", "plbl": "default"}}),
            4000,
        ),
        (
            ADMIN,
            json!({"m2m:ntp": {"rn": "p", "acn": 5, "plbl": "default"}}),
            4000,
        ),
        (ADMIN, json!({"m2m:ntp": {"rn": "p", "acn": 1}}), 4000),
        (
            ADMIN,
            json!({"m2m:ntp": {"rn": "p", "acn": 1, "plbl": "a  b"}}),
            4000,
        ),
        (
            ADMIN,
            json!({"m2m:ntp": {"rn": "p", "acn": 1, "plbl": "x", "rrs": 3}}),
            4000,
        ),
        (
            ADMIN,
            json!({"m2m:ntp": {"rn": "p", "acn": 1, "plbl": "x", "drr": 1}}),
            4000,
        ),
        (
            ae.as_str(),
            json!({"m2m:ntp": {"rn": "p", "acn": 1, "plbl": "x"}}),
            4103,
        ),
    ] {
        let a = http.send("POST", from, "cse-in", Some((26, &body.to_string())));
        assert_eq!(a.rsc, rsc, "{body}: {}", a.body);
        assert_eq!(http.get(ADMIN, "cse-in/p").rsc, 4004, "{body}");
    }
    let body = json!({"m2m:ntp": {"rn": "p", "acn": 2, "plbl": "default", "cr": null}});
    let a = http.create(ADMIN, "cse-in", 26, &body.to_string());
    let ntp = &a.body["m2m:ntp"];
    assert_eq!(ntp["ty"], json!(26), "{}", a.body);
    assert_eq!(ntp["acn"], json!(2));
    assert_eq!(ntp["plbl"], json!("default"));
    assert_eq!(ntp["cr"], json!(ADMIN));
    // TS-0004 table 7.4.31.1-3: `acn` is fixed at creation, `plbl` may change.
    let a = http.update(ADMIN, "cse-in/p", r#"{"m2m:ntp": {"acn": 1}}"#);
    assert_eq!(a.rsc, 4000, "{}", a.body);
    let a = http.update(ADMIN, "cse-in/p", r#"{"m2m:ntp": {"plbl": null}}"#);
    assert_eq!(a.rsc, 4000, "{}", a.body);
    let a = http.update(ADMIN, "cse-in/p", r#"{"m2m:ntp": {"plbl": "night"}}"#);
    assert_eq!(a.rsc, 2004, "{}", a.body);
    assert_eq!(http.get(ADMIN, "cse-in/p").body["m2m:ntp"]["acn"], json!(2));
    // TS-0004 clause 7.4.32.2.1: rules groups under the policy, two at most.
    let rules = |rn: &str, dr: Value| json!({"m2m:pdr": {"rn": rn, "dr": dr}}).to_string();
    for bad in [
        json!({"tod": ["every night"]}),
        json!({"tod": "* * * * * * *"}),
        json!({"lr": [{"accc": ["KOR"]}]}),
        json!({"lr": [{"accr": [100.0, 0.0, 1.0]}]}),
        json!({"when": []}),
    ] {
        let a = http.send(
            "POST",
            ADMIN,
            "cse-in/p",
            Some((27, &rules("g1", bad.clone()))),
        );
        assert_eq!(a.rsc, 4000, "{bad}: {}", a.body);
    }
    assert_eq!(http.get(ADMIN, "cse-in/p/g1").rsc, 4004);
    let a = http.create(
        ADMIN,
        "cse-in/p",
        27,
        &rules("g1", json!({"tod": ["* * 0-5 * * * *"]})),
    );
    assert_eq!(a.body["m2m:pdr"]["ty"], json!(27), "{}", a.body);
    assert_eq!(a.body["m2m:pdr"]["dr"]["tod"], json!(["* * 0-5 * * * *"]));
    // A second group needs `rrs` to be combined with the first.
    let g2 = rules("g2", json!({"lr": [{"accc": ["KR"]}]}));
    let a = http.send("POST", ADMIN, "cse-in/p", Some((27, &g2)));
    assert_eq!(a.rsc, 4000, "{}", a.body);
    assert_eq!(
        http.update(ADMIN, "cse-in/p", r#"{"m2m:ntp": {"rrs": 2}}"#)
            .rsc,
        2004
    );
    http.create(ADMIN, "cse-in/p", 27, &g2);
    let a = http.send(
        "POST",
        ADMIN,
        "cse-in/p",
        Some((27, &rules("g3", json!({})))),
    );
    assert_eq!(a.rsc, 4105, "{}", a.body);
    assert_eq!(http.get(ADMIN, "cse-in/p/g3").rsc, 4004);
    let a = http.update(ADMIN, "cse-in/p", r#"{"m2m:ntp": {"rrs": null}}"#);
    assert_eq!(a.rsc, 4000, "{}", a.body);
    let a = http.update(ADMIN, "cse-in/p/g2", r#"{"m2m:pdr": {"drr": 1}}"#);
    assert_eq!(a.rsc, 2004, "{}", a.body);
    let a = http.update(
        ADMIN,
        "cse-in/p/g2",
        r#"{"m2m:pdr": {"dr": {"tod": ["x"]}}}"#,
    );
    assert_eq!(a.rsc, 4000, "{}", a.body);
    // Another AE neither reads nor changes them (the creator's default policy).
    assert_eq!(http.get(&ae, "cse-in/p").rsc, 4103);
    assert_eq!(http.get(&ae, "cse-in/p/g1").rsc, 4103);
    // Discovery by type and by attribute.
    let a = http.get(ADMIN, "cse-in?fu=1&ty=26");
    assert_eq!(a.body["m2m:uril"], json!(["cse-in/p"]), "{}", a.body);
    let a = http.get(ADMIN, "cse-in?fu=1&ty=27&drr=1");
    assert_eq!(a.body["m2m:uril"], json!(["cse-in/p/g2"]), "{}", a.body);
    // Acknowledged is durable; deleting a group frees its place.
    server.kill9();
    let server = Server::start(&dir.path().join("data"));
    let http = Http { base: server.url() };
    assert_eq!(
        http.get(ADMIN, "cse-in/p").body["m2m:ntp"]["plbl"],
        json!("night")
    );
    assert_eq!(
        http.get(ADMIN, "cse-in/p/g2").body["m2m:pdr"]["drr"],
        json!(1)
    );
    assert_eq!(http.send("DELETE", ADMIN, "cse-in/p/g1", None).rsc, 2002);
    http.create(ADMIN, "cse-in/p", 27, &rules("g3", json!({})));
    assert_eq!(http.send("DELETE", ADMIN, "cse-in/p", None).rsc, 2002);
    assert_eq!(http.get(ADMIN, "cse-in/p/g2").rsc, 4004);
}

#[test]
fn a_notification_target_leaves_as_the_policy_says() {
    if skip_unless(have_curl(), "curl").is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let http = Http { base: server.url() };
    let owner_inbox = Target::start();
    let leaver_inbox = Target::start();
    let bystander = Target::start();
    let owner = register_at(&http, "owner", &owner_inbox.url);
    let leaver = register_at(&http, "leaver", &leaver_inbox.url);
    let stranger = http.register("stranger");
    http.create(&owner, "cse-in/owner", 3, r#"{"m2m:cnt": {"rn": "c"}}"#);
    let subscribe = |rn: &str| {
        let body = json!({"m2m:sub": {"rn": rn, "nu": [leaver, bystander.url],
            "su": owner_inbox.url, "cr": null}});
        http.create(&owner, "cse-in/owner/c", 23, &body.to_string());
        format!("cse-in/owner/c/{rn}")
    };
    let both = json!([leaver, bystander.url]);
    let s1 = subscribe("s1");
    let ntsr = format!("{s1}/ntsr");
    // TS-0004 clause 7.4.33.2: only DELETE, and only by a notification target.
    for (method, content) in [
        ("GET", None),
        (
            "PUT",
            Some(("application/json", r#"{"m2m:sub": {"lbl": ["x"]}}"#)),
        ),
        (
            "POST",
            Some(("application/json;ty=3", r#"{"m2m:cnt": {}}"#)),
        ),
    ] {
        let a = http.send_as(method, &leaver, &ntsr, content);
        assert_eq!(a.rsc, 4005, "{method}: {}", a.body);
    }
    assert_eq!(http.send("DELETE", &stranger, &ntsr, None).rsc, 4103);
    assert_eq!(http.send("DELETE", &owner, &ntsr, None).rsc, 4103);
    assert_eq!(nu(&http, &owner, &s1), both);
    // No default policy yet: the CSE's own accepts; the leaver is gone, nobody else.
    assert_eq!(http.send("DELETE", &leaver, &ntsr, None).rsc, 2002);
    assert_eq!(nu(&http, &owner, &s1), json!([bystander.url]));
    assert_eq!(http.send("DELETE", &leaver, &ntsr, None).rsc, 4103);
    // The provider's default policy rejects (acn 2): ORIGINATOR_HAS_NO_PRIVILEGE.
    provider_default(&http, 2);
    let s2 = subscribe("s2");
    let a = http.send("DELETE", &leaver, &format!("{s2}/ntsr"), None);
    assert_eq!(a.rsc, 4103, "{}", a.body);
    assert_eq!(nu(&http, &owner, &s2), both);
    // Inform (acn 4): the creator is told with `trr`, the target refused.
    provider_default(&http, 4);
    assert_eq!(
        http.send("DELETE", &leaver, &format!("{s2}/ntsr"), None)
            .rsc,
        4103
    );
    let told = owner_inbox
        .wait_until(|a| sgn(a)["trr"] == json!(true))
        .expect("removal request told to the creator");
    assert_eq!(sgn(&told)["sur"], json!(s2));
    assert_eq!(sgn(&told)["ntt"], json!(leaver));
    assert_eq!(nu(&http, &owner, &s2), both);
    // Seek authorization (acn 3): the creator refuses, then allows.
    provider_default(&http, 3);
    owner_inbox.answer(4103);
    assert_eq!(
        http.send("DELETE", &leaver, &format!("{s2}/ntsr"), None)
            .rsc,
        4103
    );
    assert_eq!(nu(&http, &owner, &s2), both);
    owner_inbox.answer(2000);
    assert_eq!(
        http.send("DELETE", &leaver, &format!("{s2}/ntsr"), None)
            .rsc,
        2002
    );
    assert_eq!(nu(&http, &owner, &s2), json!([bystander.url]));
    // Rules (TS-0001 clause 9.6.33): accepted only when they hold; a window in the year
    // 2000 never does, an added group that holds (OR) lets it through.
    provider_default(&http, 1);
    let never = json!({"m2m:pdr": {"rn": "past", "dr": {"tod": ["* * * * * * 2000"]}}});
    http.create(ADMIN, "cse-in/spDefault", 27, &never.to_string());
    let s3 = subscribe("s3");
    let a = http.send("DELETE", &leaver, &format!("{s3}/ntsr"), None);
    assert_eq!(a.rsc, 4103, "{}", a.body);
    assert_eq!(nu(&http, &owner, &s3), both);
    http.update(ADMIN, "cse-in/spDefault", r#"{"m2m:ntp": {"rrs": 2}}"#);
    let always = json!({"m2m:pdr": {"rn": "now", "dr": {"tod": ["* * * * * * *"]}}});
    http.create(ADMIN, "cse-in/spDefault", 27, &always.to_string());
    assert_eq!(
        http.send("DELETE", &leaver, &format!("{s3}/ntsr"), None)
            .rsc,
        2002
    );
    assert_eq!(nu(&http, &owner, &s3), json!([bystander.url]));
    // The last target leaving ends the subscription; its subscriber is told.
    let s4 = {
        let body = json!({"m2m:sub": {"rn": "s4", "nu": [leaver], "su": owner_inbox.url}});
        http.create(&owner, "cse-in/owner/c", 23, &body.to_string());
        "cse-in/owner/c/s4"
    };
    assert_eq!(
        http.send("DELETE", &leaver, &format!("{s4}/ntsr"), None)
            .rsc,
        2002
    );
    assert_eq!(http.get(&owner, s4).rsc, 4004);
    let gone = owner_inbox
        .wait_until(|a| sgn(a)["sud"] == json!(true) && sgn(a)["sur"] == json!(s4))
        .expect("deletion notice");
    assert_eq!(gone.header("x-m2m-origin").as_deref(), Some("/id-in"));
}
