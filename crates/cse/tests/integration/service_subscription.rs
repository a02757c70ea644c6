//! The service subscription resources (TS-0004 clauses 7.4.19, 7.4.20, 7.4.29): hosted,
//! administered by the admin only, validated, audited, seeded from the configuration, and
//! enforced at AE registration (TS-0001 clause 10.2.2.2 step 003, TS-0004 clause 7.3.2.7).
use crate::common;

use common::*;
use cse::service_subscription::AppRuleSeed;
use cse::{CseConfig, ListenerRole, SecurityContext};
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use security::association::{Framework, PeerIdentity, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

const SENSOR: &str = "12-sensor@secure-cse.example";
const OTHER: &str = "12-other@secure-cse.example";

/// A PSK association of `credential`, which may register CSE-assigned AE-IDs (`C*`) and
/// whose credential entry lists `apps` (empty: any).
fn psk(registry: &Arc<Registry>, credential: &str, apps: &[&str]) -> SecurityContext {
    let mut e = established(
        Framework::Psk,
        credential,
        PeerIdentity::AllowedAes(vec!["C*".into()]),
    );
    e.binding.allowed_apps = apps.iter().map(|a| (*a).to_owned()).collect();
    over(registry, ListenerRole::Mca, e)
}

/// A registration (`From: C`) named `rn` with App-ID `api`.
fn registration(rn: &str, api: &str) -> Request {
    let mut r = Request::new(Operation::Create, "cse-in", Some("C".into()));
    r.ty = Some(T::Ae);
    r.pc = Some(json!({"m2m:ae": {"rn": rn, "api": api, "rr": false, "srv": ["3"]}}));
    r
}

/// The admin creates `<CSEBase>/<rn>` holding `rule`; returns its `ri`.
async fn rule(t: &TestCse, rn: &str, rule: Value) -> String {
    let mut body = rule;
    body["rn"] = json!(rn);
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::ServiceSubscribedAppRule,
            json!({"m2m:asar": body}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    attr(&r, "ri").as_str().expect("ri").to_owned()
}

/// The admin creates a profile and a node of this CSE (`csi` = `/id-in`) linking `links`.
async fn node(t: &TestCse, links: &[&str]) {
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::M2mServiceSubscriptionProfile,
            json!({"m2m:mssp": {"rn": "sub1"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let r = t
        .create(
            ADMIN,
            "cse-in/sub1",
            T::ServiceSubscribedNode,
            json!({"m2m:svsn": {"rn": "node1", "ni": "urn:oid:1.2.3", "csi": "/id-in", "rlk": links}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
}

/// Whether an AE named `rn` exists.
async fn registered(t: &TestCse, rn: &str) -> bool {
    t.retrieve(ADMIN, &format!("cse-in/{rn}")).await.rsc == R::Ok
}

#[tokio::test]
async fn the_admin_creates_reads_updates_and_deletes_every_attribute() {
    let t = TestCse::new().await;
    let srt = attr(&t.retrieve(ADMIN, "cse-in").await, "srt");
    for ty in [11, 19, 20] {
        assert!(srt.as_array().expect("srt").contains(&json!(ty)), "{srt}");
    }
    let ri = rule(
        &t,
        "r1",
        json!({"apci": [SENSOR], "aai": ["Nsensor", "R12*X"], "aae": ["C*"], "lbl": ["fleet"]}),
    )
    .await;
    node(&t, &[&ri]).await;
    let r = t
        .create(
            ADMIN,
            "cse-in/sub1",
            T::ServiceSubscribedNode,
            json!({"m2m:svsn": {"rn": "dev", "ni": "urn:oid:9", "di": ["urn:imei:490154203237518"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let got = t.retrieve(ADMIN, "cse-in/r1").await;
    assert_eq!(got.rsc, R::Ok);
    let asar = &got.pc.as_ref().expect("content")["m2m:asar"];
    assert_eq!(asar["ty"], json!(19));
    assert_eq!(asar["apci"], json!([SENSOR]));
    assert_eq!(asar["aai"], json!(["Nsensor", "R12*X"]));
    assert_eq!(asar["aae"], json!(["C*"]));
    let svsn = t.retrieve(ADMIN, "cse-in/sub1/node1").await;
    let svsn = &svsn.pc.as_ref().expect("content")["m2m:svsn"];
    assert_eq!(
        (&svsn["ty"], &svsn["ni"], &svsn["csi"], &svsn["rlk"]),
        (
            &json!(20),
            &json!("urn:oid:1.2.3"),
            &json!("/id-in"),
            &json!([ri])
        )
    );
    assert_eq!(
        attr(&t.retrieve(ADMIN, "cse-in/sub1").await, "ty"),
        json!(11)
    );
    // UPDATE of every updatable attribute; removal of an optional list with null.
    let r = t
        .update(
            ADMIN,
            "cse-in/r1",
            json!({"m2m:asar": {"aai": ["Nother"], "aae": ["*"], "apci": null}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    let got = t.retrieve(ADMIN, "cse-in/r1").await;
    assert_eq!(attr(&got, "aai"), json!(["Nother"]));
    assert_eq!(attr(&got, "apci"), Value::Null);
    let r = t
        .update(
            ADMIN,
            "cse-in/sub1/node1",
            json!({"m2m:svsn": {"rlk": [], "lbl": ["x"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    // Discovery by type.
    let mut d = Request::new(Operation::Retrieve, "cse-in", Some(ADMIN.into()));
    d.fc.fu = Some(1);
    d.fc.ty = vec![T::ServiceSubscribedNode];
    let found = t.send(d).await;
    let uril = found.pc.as_ref().expect("pc")["m2m:uril"].clone();
    assert_eq!(uril.as_array().map(Vec::len), Some(2), "{uril}");
    // DELETE of the profile takes its nodes.
    assert_eq!(t.delete(ADMIN, "cse-in/sub1").await.rsc, R::Deleted);
    assert_eq!(
        t.retrieve(ADMIN, "cse-in/sub1/node1").await.rsc,
        R::NotFound
    );
    assert_eq!(t.delete(ADMIN, "cse-in/r1").await.rsc, R::Deleted);
    assert_eq!(t.retrieve(ADMIN, "cse-in/r1").await.rsc, R::NotFound);
}

#[tokio::test]
async fn others_cannot_create_change_or_delete_them() {
    let t = TestCse::new().await;
    let ae = t.register("app").await;
    let ri = rule(&t, "r1", json!({"aai": ["Nsensor"], "aae": ["C*"]})).await;
    node(&t, &[&ri]).await;
    let before = t.retrieve(ADMIN, "cse-in/r1").await.pc;
    for (ty, body) in [
        (
            T::ServiceSubscribedAppRule,
            json!({"m2m:asar": {"aai": ["*"], "aae": ["*"]}}),
        ),
        (T::M2mServiceSubscriptionProfile, json!({"m2m:mssp": {}})),
    ] {
        assert_eq!(
            t.create(&ae, "cse-in", ty, body).await.rsc,
            R::OriginatorHasNoPrivilege
        );
    }
    let r = t
        .create(
            &ae,
            "cse-in/sub1",
            T::ServiceSubscribedNode,
            json!({"m2m:svsn": {"ni": "n"}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    let r = t
        .update(&ae, "cse-in/r1", json!({"m2m:asar": {"aai": ["*"]}}))
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    let r = t
        .update(&ae, "cse-in/sub1/node1", json!({"m2m:svsn": {"rlk": []}}))
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    assert_eq!(
        t.delete(&ae, "cse-in/r1").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.retrieve(&ae, "cse-in/r1").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(t.retrieve(ADMIN, "cse-in/r1").await.pc, before, "unchanged");
    assert_eq!(
        attr(&t.retrieve(ADMIN, "cse-in/sub1/node1").await, "rlk"),
        json!([ri])
    );
}

#[tokio::test]
async fn malformed_content_is_refused_and_nothing_is_stored() {
    let t = TestCse::new().await;
    let ri = rule(&t, "r1", json!({"aai": ["Nsensor"], "aae": ["C*"]})).await;
    let asar = |body: Value| json!({"m2m:asar": body});
    for bad in [
        json!({"aai": ["sensor"]}),
        json!({"aai": ["rlegacy"]}),
        json!({"aai": ["N/x"]}),
        json!({"aae": ["Xabc"]}),
        json!({"aai": "Nsensor"}),
        json!({"apci": [""]}),
        json!({"ni": "x"}),
    ] {
        let r = t
            .create(
                ADMIN,
                "cse-in",
                T::ServiceSubscribedAppRule,
                asar(bad.clone()),
            )
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}");
        let r = t.update(ADMIN, "cse-in/r1", asar(bad.clone())).await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}");
    }
    assert_eq!(
        attr(&t.retrieve(ADMIN, "cse-in/r1").await, "aai"),
        json!(["Nsensor"])
    );
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::M2mServiceSubscriptionProfile,
            json!({"m2m:mssp": {"rn": "p"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    let svsn = |body: Value| json!({"m2m:svsn": body});
    for (bad, why) in [
        (json!({"csi": "/id-in"}), "ni is mandatory"),
        (json!({"ni": "n", "rlk": [ri]}), "rlk without csi"),
        (
            json!({"ni": "n", "csi": "/id-in", "rlk": ["cse-in/nothing"]}),
            "a link to nothing",
        ),
        (
            json!({"ni": "n", "csi": "/id-in", "rlk": ["cse-in/p"]}),
            "a link to a profile",
        ),
    ] {
        let r = t
            .create(ADMIN, "cse-in/p", T::ServiceSubscribedNode, svsn(bad))
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{why}");
    }
    let r = t
        .create(
            ADMIN,
            "cse-in/p",
            T::ServiceSubscribedNode,
            svsn(json!({"rn": "bare", "ni": "n"})),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    for (bad, why) in [
        (json!({"rlk": [ri]}), "rlk on a node without csi"),
        (json!({"ni": "m"}), "ni is fixed"),
        (json!({"csi": "/id-in"}), "csi is fixed"),
    ] {
        let r = t.update(ADMIN, "cse-in/p/bare", svsn(bad)).await;
        assert_eq!(r.rsc, R::BadRequest, "{why}");
    }
    assert_eq!(
        attr(&t.retrieve(ADMIN, "cse-in/p/bare").await, "rlk"),
        Value::Null
    );
    // Where they may live: a node under a profile only, profiles and rules under the CSEBase.
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::ServiceSubscribedNode,
            svsn(json!({"ni": "n"})),
        )
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    let r = t
        .create(
            ADMIN,
            "cse-in/p",
            T::ServiceSubscribedAppRule,
            asar(json!({})),
        )
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    let ae = t.register("app").await;
    let r = t
        .create(
            &ae,
            "cse-in/app",
            T::M2mServiceSubscriptionProfile,
            json!({"m2m:mssp": {}}),
        )
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
}

#[tokio::test]
async fn a_registration_is_held_to_the_rules_of_its_credential() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let sensor = psk(&reg, SENSOR, &[]);
    let ri = rule(
        &t,
        "r1",
        json!({"apci": [SENSOR], "aai": ["Nsensor"], "aae": ["C*"]}),
    )
    .await;
    node(&t, &[&ri]).await;
    let r = t.send_ctx(&sensor, registration("s", "Nother")).await;
    assert_eq!(r.rsc, R::AppRuleValidationFailed, "{:?}", r.pc);
    assert!(!registered(&t, "s").await, "nothing registered");
    // The admin widens the rule: the same registration now passes.
    let r = t
        .update(
            ADMIN,
            "cse-in/r1",
            json!({"m2m:asar": {"aai": ["Nsensor", "Nother"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    let r = t.send_ctx(&sensor, registration("s", "Nother")).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    // A credential no rule names keeps its own allowed_apps (here: any).
    let other = psk(&reg, OTHER, &[]);
    let r = t.send_ctx(&other, registration("o", "Nanything")).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
}

#[tokio::test]
async fn the_rule_decides_over_the_credential_entry_and_both_lists_must_match() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    // The credential entry says Nsensor; the administered rule says Nother: the rule wins.
    let sensor = psk(&reg, SENSOR, &["Nsensor"]);
    let ri = rule(
        &t,
        "r1",
        json!({"apci": ["12-sensor@*"], "aai": ["Nother"], "aae": ["S*"]}),
    )
    .await;
    node(&t, &[&ri]).await;
    // App-ID allowed, but the rule allows SP-assigned AE-IDs only: refused.
    let r = t.send_ctx(&sensor, registration("s", "Nother")).await;
    assert_eq!(r.rsc, R::AppRuleValidationFailed);
    let r = t
        .update(ADMIN, "cse-in/r1", json!({"m2m:asar": {"aae": ["C*"]}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    let r = t.send_ctx(&sensor, registration("s", "Nsensor")).await;
    assert_eq!(
        r.rsc,
        R::AppRuleValidationFailed,
        "the entry's list no longer decides"
    );
    let r = t.send_ctx(&sensor, registration("s", "Nother")).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    // The rule gone, the credential entry decides again.
    assert_eq!(t.delete(ADMIN, "cse-in/s").await.rsc, R::Deleted);
    assert_eq!(t.delete(ADMIN, "cse-in/r1").await.rsc, R::Deleted);
    let r = t.send_ctx(&sensor, registration("s2", "Nother")).await;
    assert_eq!(r.rsc, R::AppRuleValidationFailed);
    let r = t.send_ctx(&sensor, registration("s2", "Nsensor")).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
}

#[tokio::test]
async fn without_an_association_the_rules_without_apci_apply() {
    let t = TestCse::new().await;
    let ri = rule(&t, "open", json!({"aai": ["Nplain"], "aae": ["C*"]})).await;
    let scoped = rule(
        &t,
        "scoped",
        json!({"apci": ["*"], "aai": ["*"], "aae": ["*"]}),
    )
    .await;
    node(&t, &[&ri, &scoped]).await;
    let r = t.send(registration("x", "Nx")).await;
    assert_eq!(
        r.rsc,
        R::AppRuleValidationFailed,
        "the '*' rule needs an association"
    );
    let r = t.send(registration("p", "Nplain")).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    // Over any association the '*' rule applies, and the open one does not.
    let reg = Arc::new(Registry::default());
    let r = t
        .send_ctx(&psk(&reg, OTHER, &[]), registration("y", "Nx"))
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
}

#[tokio::test]
async fn an_empty_rule_list_closes_registration_and_other_cses_rules_do_not_apply() {
    let t = TestCse::new().await;
    let ri = rule(&t, "r1", json!({"aai": ["Nx"], "aae": ["C*"]})).await;
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::M2mServiceSubscriptionProfile,
            json!({"m2m:mssp": {"rn": "p"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    // A node of another CSE linking a rule that refuses Ny: not this CSE's business.
    let r = t
        .create(
            ADMIN,
            "cse-in/p",
            T::ServiceSubscribedNode,
            json!({"m2m:svsn": {"rn": "mn", "ni": "n1", "csi": "/id-mn", "rlk": [ri]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    assert_eq!(t.send(registration("a", "Ny")).await.rsc, R::Created);
    // This CSE's node with an empty list: nobody registers.
    let r = t
        .create(
            ADMIN,
            "cse-in/p",
            T::ServiceSubscribedNode,
            json!({"m2m:svsn": {"rn": "in", "ni": "n2", "csi": "/id-in", "rlk": []}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    assert_eq!(
        t.send(registration("b", "Ny")).await.rsc,
        R::AppRuleValidationFailed
    );
    let reg = Arc::new(Registry::default());
    let r = t
        .send_ctx(&psk(&reg, SENSOR, &[]), registration("c", "Nx"))
        .await;
    assert_eq!(r.rsc, R::AppRuleValidationFailed);
    assert!(!registered(&t, "b").await && !registered(&t, "c").await);
}

#[tokio::test]
async fn the_configuration_seeds_the_rules_once_and_the_administered_rule_wins() {
    let config = CseConfig {
        app_rule_seeds: vec![AppRuleSeed {
            credential_id: SENSOR.into(),
            allowed_apps: vec!["Nsensor".into()],
        }],
        ..Default::default()
    };
    let seeded = "cse-in/cfg-12-sensor_40secure-cse.example";
    let mut t = TestCse::with_config(config.clone()).await;
    let got = t.retrieve(ADMIN, seeded).await;
    assert_eq!(got.rsc, R::Ok);
    assert_eq!(
        (attr(&got, "apci"), attr(&got, "aai"), attr(&got, "aae")),
        (json!([SENSOR]), json!(["Nsensor"]), json!(["*"]))
    );
    let node = t.retrieve(ADMIN, "cse-in/mssp-config/svsn-config").await;
    assert_eq!(attr(&node, "csi"), json!("/id-in"));
    assert_eq!(attr(&node, "rlk"), json!([attr(&got, "ri")]));
    // The rule, not the credential entry (which lists nothing), refuses Nother.
    let reg = Arc::new(Registry::default());
    let r = t
        .send_ctx(&psk(&reg, SENSOR, &[]), registration("s", "Nother"))
        .await;
    assert_eq!(r.rsc, R::AppRuleValidationFailed);
    let r = t
        .update(ADMIN, seeded, json!({"m2m:asar": {"aai": ["Nother"]}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    // Started again with the same credential file: the administered rule is kept, and
    // nothing is seeded twice.
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    t.cse = open_cse(config, Arc::new(store)).await;
    assert_eq!(
        attr(&t.retrieve(ADMIN, seeded).await, "aai"),
        json!(["Nother"])
    );
    let node = t.retrieve(ADMIN, "cse-in/mssp-config/svsn-config").await;
    assert_eq!(attr(&node, "rlk").as_array().map(Vec::len), Some(1));
    let mut d = Request::new(Operation::Retrieve, "cse-in", Some(ADMIN.into()));
    d.fc.fu = Some(1);
    d.fc.ty = vec![T::ServiceSubscribedAppRule];
    let uril = t.send(d).await.pc.expect("pc")["m2m:uril"].clone();
    assert_eq!(uril.as_array().map(Vec::len), Some(1), "{uril}");
    let r = t
        .send_ctx(&psk(&reg, SENSOR, &[]), registration("s", "Nother"))
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
}

#[tokio::test]
async fn every_change_is_audited_before_the_answer() {
    let clock = model::clock::ManualClock::new();
    let (t, path) = TestCse::with_audit(clocked(&clock)).await;
    let ri = rule(
        &t,
        "r1",
        json!({"apci": [SENSOR], "aai": ["Nsensor"], "aae": ["C*"]}),
    )
    .await;
    node(&t, &[&ri]).await;
    let r = t
        .update(ADMIN, "cse-in/r1", json!({"m2m:asar": {"aai": ["Nother"]}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(t.delete(ADMIN, "cse-in/sub1").await.rsc, R::Deleted);
    // A refused change is not a change: nothing is written for it.
    let ae = t.register("app").await;
    let r = t
        .update(&ae, "cse-in/r1", json!({"m2m:asar": {"aai": ["*"]}}))
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    // Expiry is a change too.
    let soon = model::time::format(clock.clock().now() + chrono::Duration::seconds(60));
    let r = t
        .update(ADMIN, "cse-in/r1", json!({"m2m:asar": {"et": soon}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(cse::expiry::sweep(&t.cse).await, 1);
    // The expiry of a profile removes its node too: both are audited.
    node(&t, &[]).await;
    let soon = model::time::format(clock.clock().now() + chrono::Duration::seconds(60));
    // A parent's `et` may not fall before a child's (TS-0004 7.3.3.4): the node first.
    let r = t
        .update(
            ADMIN,
            "cse-in/sub1/node1",
            json!({"m2m:svsn": {"et": soon}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    let r = t
        .update(ADMIN, "cse-in/sub1", json!({"m2m:mssp": {"et": soon}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(cse::expiry::sweep(&t.cse).await, 2);
    let text = std::fs::read_to_string(&path).expect("audit log");
    let actions: Vec<(String, String, String)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| e["event"].clone())
        .filter(|ev| ev["kind"] == "admin-action")
        .map(|ev| {
            (
                ev["actor"].as_str().unwrap_or("").to_owned(),
                ev["action"].as_str().unwrap_or("").to_owned(),
                ev["target"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut kinds: Vec<(&str, &str)> = actions
        .iter()
        .map(|(a, k, _)| (a.as_str(), k.as_str()))
        .collect();
    // The node and its profile expire at the same instant, in either order.
    let n = kinds.len();
    if n >= 2 {
        kinds[n - 2..].sort();
    }
    assert_eq!(
        kinds,
        vec![
            (ADMIN, "asar-create"),
            (ADMIN, "mssp-create"),
            (ADMIN, "svsn-create"),
            (ADMIN, "asar-update"),
            (ADMIN, "mssp-delete"),
            (ADMIN, "svsn-delete"),
            (ADMIN, "asar-update"),
            ("expiry", "asar-expire"),
            (ADMIN, "mssp-create"),
            (ADMIN, "svsn-create"),
            (ADMIN, "svsn-update"),
            (ADMIN, "mssp-update"),
            ("expiry", "mssp-expire"),
            ("expiry", "svsn-expire"),
        ],
        "{text}"
    );
    assert!(
        actions[3].2.contains("Nother") && actions[3].2.contains(SENSOR),
        "{:?}",
        actions[3]
    );
}

#[tokio::test]
async fn changes_are_notified_to_subscribers() {
    let t = TestCse::new().await;
    rule(&t, "r1", json!({"aai": ["Nsensor"], "aae": ["C*"]})).await;
    let rx = Receiver::start(2000).await;
    let r = t
        .create(
            ADMIN,
            "cse-in/r1",
            T::Subscription,
            json!({"m2m:sub": {"rn": "watch", "nu": [rx.url], "enc": {"net": [1]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let before = rx.count();
    let r = t
        .update(ADMIN, "cse-in/r1", json!({"m2m:asar": {"aai": ["Nother"]}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    let got = rx.wait_for(before + 1).await;
    let last = got.last().expect("a notification");
    assert_eq!(
        last.pointer("/m2m:sgn/nev/rep/m2m:asar/aai"),
        Some(&json!(["Nother"])),
        "{last}"
    );
}

/// The rules are read inside the registration's own write (TS-0001 clause 10.2.2.2 step
/// 003): a change to them that the store orders before the registration is seen whole by
/// it. Here the admin's narrowing of the rule is a write the store holds while the
/// registration runs; the registration, allowed by the rule as it was, waits behind it and
/// is refused by the rule as it is (4126), and nothing is registered.
#[tokio::test]
async fn the_rules_are_read_in_the_registrations_own_write() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let sensor = psk(&reg, SENSOR, &[]);
    let ri = rule(
        &t,
        "r1",
        json!({"apci": [SENSOR], "aai": ["Nsensor", "Nother"], "aae": ["C*"]}),
    )
    .await;
    node(&t, &[&ri]).await;
    // The narrowing write: submitted first, it holds the store's writer until told to go.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let rule_ri = ri.clone();
    let narrowed = t.cse.store().submit(Box::new(move |tx| {
        let _ = wait.recv();
        let mut r = tx.get(&rule_ri)?.expect("the rule");
        r.attrs.insert("aai".into(), json!(["Nsensor"]));
        tx.update(&r)
    }));
    // The registration runs up to its own write, which queues behind the narrowing.
    let mut registering = Box::pin(t.send_ctx(&sensor, registration("s", "Nother")));
    tokio::select! {
        biased;
        r = &mut registering => panic!("answered while the store was held: {:?}", r.rsc),
        () = std::future::ready(()) => {}
    }
    go.send(()).expect("the narrowing write waits");
    narrowed.await.expect("writer").expect("narrowed");
    let r = registering.await;
    assert_eq!(r.rsc, R::AppRuleValidationFailed, "{:?}", r.pc);
    assert!(!registered(&t, "s").await, "nothing registered");
    let r = t.send_ctx(&sensor, registration("s", "Nsensor")).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
}
