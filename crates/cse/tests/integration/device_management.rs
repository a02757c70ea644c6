//! `<node>` (ty 14) and `<mgmtObj>` (ty 13) with its device management specialisations
//! (TS-0001 annex D, TS-0004 clauses 7.4.15, 7.4.18 and annex D): a device's node and
//! management objects, shown under their specialisation's key; executable attributes
//! (reboot, firmware update, ...) that reach the device through subscriptions, are allowed
//! by the access control policies and audited; and every misuse answered precisely with
//! nothing changed.

use crate::common::{attr, open_cse, Receiver, TestCse, ADMIN};
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::Arc;

const NODE: &str = "cse-in/node1";
const BAT: &str = "cse-in/node1/bat";
const RBO: &str = "cse-in/node1/rbo";

/// The `management-requested` entries of the audit log, as (actor, target, action).
fn management_entries(path: &std::path::Path) -> Vec<(String, String, String)> {
    manager::audit::read_entries(path)
        .expect("audit entries")
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| match e.event {
            manager::audit::Event::ManagementRequested {
                actor,
                target,
                action,
            } => Some((actor, target, action)),
            _ => None,
        })
        .collect()
}

/// The device (`device`, owner of its management objects), an operator the policy lets
/// update them (`operator`), an AE it does not name (`other`), and the node `cse-in/node1`
/// (created by the admin, who alone may create under the `<CSEBase>`) with a battery and a
/// reboot object created by the device, all under the policy `cse-in/devacp`.
async fn device_tree(t: &TestCse) -> (String, String, String) {
    let device = t.register("device").await;
    let operator = t.register("operator").await;
    let other = t.register("other").await;
    let acp = json!({"m2m:acp": {"rn": "devacp",
        "pv": {"acr": [
            {"acor": [device.clone()], "acop": 63},
            {"acor": [operator.clone()], "acop": 2 | 4 | 32}]},
        "pvs": {"acr": [{"acor": [ADMIN], "acop": 63}]}}});
    let r = t.create(ADMIN, "cse-in", T::AccessControlPolicy, acp).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let acpi = attr(&r, "ri");
    let node = json!({"m2m:nod": {"rn": "node1", "ni": "urn:gsma:imei:90420156-025763-0",
        "hael": [device.clone()], "mgca": "coap://10.0.0.7:5683", "acpi": [acpi.clone()]}});
    let r = t.create(ADMIN, "cse-in", T::Node, node).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let bat = json!({"m2m:bat": {"rn": "bat", "mgd": 1006, "btl": 80, "bts": 1,
        "dc": "main battery", "acpi": [acpi.clone()]}});
    let r = t.create(&device, NODE, T::MgmtObj, bat).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let rbo = json!({"m2m:rbo": {"rn": "rbo", "mgd": 1009, "acpi": [acpi]}});
    let r = t.create(&device, NODE, T::MgmtObj, rbo).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    (device, operator, other)
}

/// A subscription of `who` on `to` for updates (net 1), delivering to a new receiver.
async fn subscribe(t: &TestCse, who: &str, to: &str) -> Receiver {
    let rx = Receiver::start(2000).await;
    let sub = json!({"m2m:sub": {"rn": "watch", "nu": [rx.url.clone()],
        "enc": {"net": [1]}, "nct": 1}});
    let r = t.create(who, to, T::Subscription, sub).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert_eq!(rx.wait_for(1).await.len(), 1, "verification request");
    rx
}

/// The resource under `to` as its JSON key and attributes.
async fn read(t: &TestCse, who: &str, to: &str) -> (String, Value) {
    let r = t.retrieve(who, to).await;
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
    let (k, v) =
        r.pc.as_ref()
            .and_then(Value::as_object)
            .and_then(|o| o.iter().next())
            .map(|(k, v)| (k.clone(), v.clone()))
            .expect("one resource");
    (k, v)
}

#[tokio::test]
async fn a_node_and_its_management_objects_are_shown_under_their_keys() {
    let t = TestCse::new().await;
    let (device, operator, _) = device_tree(&t).await;
    let (key, node) = read(&t, &device, NODE).await;
    assert_eq!(key, "m2m:nod");
    assert_eq!(node["ty"], json!(14));
    assert_eq!(node["ni"], json!("urn:gsma:imei:90420156-025763-0"));
    assert_eq!(node["mgca"], json!("coap://10.0.0.7:5683"));
    let (key, bat) = read(&t, &operator, BAT).await;
    assert_eq!(key, "m2m:bat");
    assert_eq!(bat["ty"], json!(13));
    assert_eq!(bat["mgd"], json!(1006));
    assert_eq!(
        (bat["btl"].clone(), bat["bts"].clone()),
        (json!(80), json!(1))
    );
    assert_eq!(bat["dc"], json!("main battery"));
    let (key, rbo) = read(&t, &operator, RBO).await;
    assert_eq!(key, "m2m:rbo");
    // Nothing asked yet: the executable attributes start false.
    assert_eq!(
        (rbo["rbo"].clone(), rbo["far"].clone()),
        (json!(false), json!(false))
    );
    // The node's children, with their keys, in one answer (rcn 4).
    let mut req = Request::new(Operation::Retrieve, NODE, Some(device.clone()));
    req.rcn = Some(model::ResultContent::AttributesAndChildResources);
    let r = t.send(req).await;
    assert_eq!(r.rsc, R::Ok);
    let nod = &r.pc.as_ref().expect("pc")["m2m:nod"];
    assert_eq!(nod["m2m:bat"][0]["rn"], json!("bat"), "{nod}");
    assert_eq!(nod["m2m:rbo"][0]["rn"], json!("rbo"), "{nod}");
    // The device updates its status attributes; a partial retrieve names them.
    let r = t
        .update(&device, BAT, json!({"m2m:bat": {"btl": 15, "bts": 5}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "btl"), json!(15));
    let mut req = Request::new(Operation::Retrieve, BAT, Some(operator.clone()));
    req.atrl = vec!["bts".into()];
    let r = t.send(req).await;
    assert_eq!(r.pc, Some(json!({"m2m:bat": {"bts": 5}})));
    // The CSEBase says it hosts both types now.
    let (_, cb) = read(&t, &device, "cse-in").await;
    let srt = cb["srt"].as_array().cloned().unwrap_or_default();
    assert!(
        srt.contains(&json!(13)) && srt.contains(&json!(14)),
        "{srt:?}"
    );
}

/// One CREATE per specialisation with its mandatory attributes: each is stored and shown
/// under its key, with the defaults the CSE fills in.
#[tokio::test]
async fn every_specialisation_is_created_with_its_mandatory_attributes() {
    let t = TestCse::new().await;
    let node = json!({"m2m:nod": {"rn": "node1", "ni": "n1"}});
    assert_eq!(
        t.create(ADMIN, "cse-in", T::Node, node).await.rsc,
        R::Created
    );
    let cases = [
        (
            "m2m:fwr",
            json!({"mgd": 1001, "vr": "1.0", "fwn": "fw", "url": "https://fw.example/1.0", "ud": false}),
            json!({"uds": {"sus": 0}}),
        ),
        (
            "m2m:swr",
            json!({"mgd": 1002, "vr": "2", "swn": "app", "url": "https://sw.example/app"}),
            json!({"in": false, "un": false, "ins": {"sus": 0}}),
        ),
        (
            "m2m:mem",
            json!({"mgd": 1003, "mma": 1024, "mmt": 4096}),
            json!({}),
        ),
        (
            "m2m:ani",
            json!({"mgd": 1004, "ant": "802.15.4", "ldv": []}),
            json!({}),
        ),
        (
            "m2m:andi",
            json!({"mgd": 1005, "dvd": "d1", "dvt": "sensor", "awi": "cse-in/node1/ani", "sli": 60}),
            json!({}),
        ),
        (
            "m2m:bat",
            json!({"mgd": 1006, "btl": 100, "bts": 3}),
            json!({}),
        ),
        (
            "m2m:dvi",
            json!({"mgd": 1007, "dlb": "SN-1", "man": "ACME", "mod": "X1", "dty": "meter",
            "mfd": "20250101T000000", "ptl": ["application/json"]}),
            json!({}),
        ),
        (
            "m2m:dvc",
            json!({"mgd": 1008, "can": "gps", "att": true, "cas": {"acn": "ena", "sus": 1}, "cus": true}),
            json!({}),
        ),
        (
            "m2m:rbo",
            json!({"mgd": 1009}),
            json!({"rbo": false, "far": false}),
        ),
        (
            "m2m:evl",
            json!({"mgd": 1010, "lgt": 1, "lgd": "", "lgst": 2}),
            json!({"lga": false, "lgo": false}),
        ),
    ];
    for (key, attrs, defaults) in cases {
        let rn = &key[4..];
        let mut body = attrs.clone();
        body["rn"] = json!(rn);
        let r = t
            .create(ADMIN, NODE, T::MgmtObj, json!({ key: body }))
            .await;
        assert_eq!(r.rsc, R::Created, "{key}: {:?}", r.pc);
        let (got_key, got) = read(&t, ADMIN, &format!("{NODE}/{rn}")).await;
        assert_eq!(got_key, key);
        for (k, v) in attrs.as_object().into_iter().flatten() {
            assert_eq!(&got[k], v, "{key} {k}");
        }
        for (k, v) in defaults.as_object().into_iter().flatten() {
            assert_eq!(&got[k], v, "{key} default {k}");
        }
    }
}

/// Each misuse gets its precise status code, and the tree is as it was.
#[tokio::test]
async fn bad_input_is_refused_precisely_and_changes_nothing() {
    let t = TestCse::new().await;
    let (device, _, _) = device_tree(&t).await;
    let before_bat = read(&t, &device, BAT).await;
    let before_rbo = read(&t, &device, RBO).await;
    let creates = [
        // mgd contradicts the key
        (
            json!({"m2m:bat": {"rn": "x", "mgd": 1009, "btl": 1, "bts": 1}}),
            R::BadRequest,
        ),
        // an attribute of another specialisation
        (
            json!({"m2m:bat": {"rn": "x", "mgd": 1006, "btl": 1, "bts": 1, "rbo": false}}),
            R::BadRequest,
        ),
        // a key that is no specialisation, and the generic key
        (json!({"m2m:xyz": {"rn": "x", "mgd": 1006}}), R::BadRequest),
        (json!({"m2m:mgo": {"rn": "x", "mgd": 1006}}), R::BadRequest),
        // missing mgd; missing mandatory attribute
        (
            json!({"m2m:bat": {"rn": "x", "btl": 1, "bts": 1}}),
            R::BadRequest,
        ),
        (
            json!({"m2m:bat": {"rn": "x", "mgd": 1006, "btl": 1}}),
            R::BadRequest,
        ),
        // out of range, not in the enumeration, wrong shape
        (
            json!({"m2m:bat": {"rn": "x", "mgd": 1006, "btl": 101, "bts": 1}}),
            R::BadRequest,
        ),
        (
            json!({"m2m:bat": {"rn": "x", "mgd": 1006, "btl": 1, "bts": 8}}),
            R::BadRequest,
        ),
        (
            json!({"m2m:bat": {"rn": "x", "mgd": 1006, "btl": "1", "bts": 1}}),
            R::BadRequest,
        ),
        // a CREATE that asks for an action
        (
            json!({"m2m:fwr": {"rn": "x", "mgd": 1001, "vr": "1", "fwn": "f", "url": "u", "ud": true}}),
            R::BadRequest,
        ),
        // read-only attributes set on CREATE
        (
            json!({"m2m:fwr": {"rn": "x", "mgd": 1001, "vr": "1", "fwn": "f", "url": "u", "ud": false,
            "uds": {"sus": 1}}}),
            R::BadRequest,
        ),
        (
            json!({"m2m:swr": {"rn": "x", "mgd": 1002, "vr": "1", "swn": "s", "url": "u", "in": false}}),
            R::BadRequest,
        ),
        (
            json!({"m2m:dvc": {"rn": "x", "mgd": 1008, "can": "c", "att": true, "cas": {"sus": 9}, "cus": true}}),
            R::BadRequest,
        ),
        // a second reboot object on the same node (multiplicity 0..1)
        (json!({"m2m:rbo": {"rn": "x", "mgd": 1009}}), R::Conflict),
    ];
    for (body, want) in creates {
        let r = t.create(&device, NODE, T::MgmtObj, body.clone()).await;
        assert_eq!(r.rsc, want, "{body}: {:?}", r.pc);
        assert_eq!(
            t.retrieve(&device, &format!("{NODE}/x")).await.rsc,
            R::NotFound,
            "{body}"
        );
    }
    // A node needs `ni`; `rms` and `nid` come from the network, not from a request.
    for body in [
        json!({"m2m:nod": {"rn": "x"}}),
        json!({"m2m:nod": {"rn": "x", "ni": "n", "rms": true}}),
        json!({"m2m:nod": {"rn": "x", "ni": "n", "nid": "net"}}),
        json!({"m2m:nod": {"rn": "x", "ni": "a b"}}),
    ] {
        assert_eq!(
            t.create(ADMIN, "cse-in", T::Node, body.clone()).await.rsc,
            R::BadRequest,
            "{body}"
        );
        assert_eq!(t.retrieve(ADMIN, "cse-in/x").await.rsc, R::NotFound);
    }
    // Where they may be created: a node under the CSEBase only; a mgmtObj under a node only.
    let node = json!({"m2m:nod": {"rn": "x", "ni": "n"}});
    let r = t.create(&device, "cse-in/device", T::Node, node).await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    let bat = json!({"m2m:bat": {"rn": "x", "mgd": 1006, "btl": 1, "bts": 1}});
    let r = t
        .create(&device, "cse-in/device", T::MgmtObj, bat.clone())
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    let r = t.create(&device, BAT, T::MgmtObj, bat.clone()).await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    // A registered AE may read the CSEBase but not create under it.
    let node = json!({"m2m:nod": {"rn": "x", "ni": "n"}});
    assert_eq!(
        t.create(&device, "cse-in", T::Node, node).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let updates = [
        (BAT, json!({"m2m:bat": {"mgd": 1009}})),
        (BAT, json!({"m2m:bat": {"obis": ["urn:x"]}})),
        (BAT, json!({"m2m:bat": {"rbo": true}})),
        (BAT, json!({"m2m:bat": {"btl": null}})),
        (BAT, json!({"m2m:rbo": {"rbo": true}})),
        (RBO, json!({"m2m:rbo": {"rbo": true, "far": true}})),
        (RBO, json!({"m2m:rbo": {"rbo": "true"}})),
        (RBO, json!({"m2m:rbo": {"rbo": null}})),
        (NODE, json!({"m2m:nod": {"rms": false}})),
        (NODE, json!({"m2m:nod": {"ni": null}})),
    ];
    for (to, body) in updates {
        let r = t.update(ADMIN, to, body.clone()).await;
        assert_eq!(r.rsc, R::BadRequest, "{to} {body}: {:?}", r.pc);
    }
    assert_eq!(read(&t, &device, BAT).await, before_bat);
    assert_eq!(read(&t, &device, RBO).await, before_rbo);
    // Read-only device information: manufacturer and model are fixed at creation.
    let dvi = json!({"m2m:dvi": {"rn": "dvi", "mgd": 1007, "dlb": "SN", "man": "ACME", "mod": "X", "dty": "t"}});
    assert_eq!(
        t.create(&device, NODE, T::MgmtObj, dvi).await.rsc,
        R::Created
    );
    let r = t
        .update(
            &device,
            "cse-in/node1/dvi",
            json!({"m2m:dvi": {"man": "Other"}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    assert_eq!(
        read(&t, &device, "cse-in/node1/dvi").await.1["man"],
        json!("ACME")
    );
}

/// TS-0004 annex D.10: setting `rbo` asks the device to reboot. It is an UPDATE the policy
/// must allow; it is audited before it is stored; the subscriber (the device's agent) is
/// notified with the request; an originator the policy does not name is refused with
/// nothing stored, notified or audited.
#[tokio::test]
async fn a_reboot_request_is_allowed_audited_and_notified() {
    let (t, log) = TestCse::with_audit(cse::CseConfig::default()).await;
    let (device, operator, other) = device_tree(&t).await;
    let rx = subscribe(&t, &device, RBO).await;

    let r = t
        .update(&other, RBO, json!({"m2m:rbo": {"rbo": true}}))
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    assert_eq!(read(&t, &device, RBO).await.1["rbo"], json!(false));

    let r = t
        .update(&operator, RBO, json!({"m2m:rbo": {"rbo": true}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "rbo"), json!(true));
    let got = rx.wait_for(2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let rep = &got[1]["m2m:sgn"]["nev"]["rep"];
    assert_eq!(rep["m2m:rbo"]["rbo"], json!(true), "{rep}");
    assert_eq!(got[1]["m2m:sgn"]["nev"]["net"], json!(1));
    assert_eq!(
        management_entries(&log),
        vec![(operator.clone(), RBO.to_owned(), "reboot: rbo".to_owned())]
    );
    // The device acknowledges: the request is cleared; that is not an action, not audited.
    let r = t
        .update(&device, RBO, json!({"m2m:rbo": {"rbo": false}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(rx.wait_for(3).await.len(), 3);
    // The admin asks for a factory reset.
    let r = t
        .update(ADMIN, RBO, json!({"m2m:rbo": {"far": true}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(
        rx.wait_for(4).await[3]["m2m:sgn"]["nev"]["rep"]["m2m:rbo"]["far"],
        json!(true)
    );
    let entries = management_entries(&log);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(
        entries[1],
        (ADMIN.to_owned(), RBO.to_owned(), "reboot: far".to_owned())
    );
    // The refused originator left nothing behind.
    assert!(entries.iter().all(|e| e.0 != other));
    assert_eq!(rx.count(), 4);
}

/// The other executable attributes: software install and activation together, a firmware
/// update whose status the device then reports, and the status kept by the device.
#[tokio::test]
async fn firmware_and_software_actions_are_audited_with_their_names() {
    let (t, log) = TestCse::with_audit(cse::CseConfig::default()).await;
    let (device, operator, _) = device_tree(&t).await;
    let fwr = json!({"m2m:fwr": {"rn": "fwr", "mgd": 1001, "vr": "1.0", "fwn": "fw",
        "url": "https://fw.example/1.0", "ud": false, "acpi": ["cse-in/devacp"]}});
    assert_eq!(
        t.create(&device, NODE, T::MgmtObj, fwr).await.rsc,
        R::Created
    );
    let swr = json!({"m2m:swr": {"rn": "swr", "mgd": 1002, "vr": "2", "swn": "app",
        "url": "https://sw.example/app", "acpi": ["cse-in/devacp"]}});
    assert_eq!(
        t.create(&device, NODE, T::MgmtObj, swr).await.rsc,
        R::Created
    );
    let rx = subscribe(&t, &device, "cse-in/node1/fwr").await;
    let r = t
        .update(
            &operator,
            "cse-in/node1/fwr",
            json!({"m2m:fwr": {"url": "https://fw.example/2.0", "ud": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    let got = rx.wait_for(2).await;
    assert_eq!(
        got[1]["m2m:sgn"]["nev"]["rep"]["m2m:fwr"]["ud"],
        json!(true)
    );
    let r = t
        .update(
            &device,
            "cse-in/node1/fwr",
            json!({"m2m:fwr": {"ud": false, "vr": "2.0", "uds": {"acn": "ud", "sus": 1}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "uds"), json!({"acn": "ud", "sus": 1}));
    let r = t
        .update(
            &operator,
            "cse-in/node1/swr",
            json!({"m2m:swr": {"in": true, "act": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    let r = t
        .update(
            &operator,
            "cse-in/node1/swr",
            json!({"m2m:swr": {"act": true, "dea": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    let actions: Vec<String> = management_entries(&log).into_iter().map(|e| e.2).collect();
    assert_eq!(
        actions,
        vec!["firmware: ud".to_owned(), "software: in, act".to_owned()]
    );
}

#[tokio::test]
async fn discovery_finds_management_objects_by_type_and_definition() {
    let t = TestCse::new().await;
    let (_, operator, other) = device_tree(&t).await;
    let discover = |who: String, to: &'static str, fc: Vec<(&'static str, &'static str)>| {
        let t = &t;
        async move { t.discover(&who, to, &fc).await }
    };
    let admin = || ADMIN.to_owned();
    assert_eq!(
        discover(admin(), "cse-in", vec![("ty", "13")]).await,
        vec![BAT.to_owned(), RBO.to_owned()]
    );
    assert_eq!(
        discover(admin(), "cse-in", vec![("ty", "14")]).await,
        vec![NODE.to_owned()]
    );
    assert_eq!(
        discover(admin(), "cse-in", vec![("mgd", "1006")]).await,
        vec![BAT.to_owned()]
    );
    // The operator's policy grants DISCOVERY on the node and its objects.
    assert_eq!(
        discover(operator.clone(), NODE, vec![("ty", "13"), ("mgd", "1009")]).await,
        vec![RBO.to_owned()]
    );
    // An AE the policy does not name finds nothing below the node it may not read.
    let mut req = Request::new(Operation::Retrieve, NODE, Some(other));
    req.fc.add("fu", "1").expect("fu");
    req.fc.add("ty", "13").expect("ty");
    assert_eq!(t.send(req).await.rsc, R::OriginatorHasNoPrivilege);
}

/// Acknowledged writes survive a restart; deleting the node deletes its objects and frees
/// the place of its single reboot object; expired objects disappear.
#[tokio::test]
async fn management_objects_are_durable_and_go_with_their_node() {
    let clock = model::clock::ManualClock::new();
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    let mut t = TestCse::with_config(config.clone()).await;
    let (device, _, _) = device_tree(&t).await;
    let r = t
        .update(&device, BAT, json!({"m2m:bat": {"btl": 42}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    t.cse = open_cse(config, Arc::new(store)).await;
    let (key, bat) = read(&t, &device, BAT).await;
    assert_eq!((key.as_str(), bat["btl"].clone()), ("m2m:bat", json!(42)));
    assert_eq!(read(&t, &device, RBO).await.0, "m2m:rbo");
    // The second reboot object is still refused after the restart.
    let rbo = json!({"m2m:rbo": {"rn": "rbo2", "mgd": 1009}});
    assert_eq!(
        t.create(&device, NODE, T::MgmtObj, rbo.clone()).await.rsc,
        R::Conflict
    );
    // Deleting the reboot object frees its place.
    assert_eq!(t.delete(&device, RBO).await.rsc, R::Deleted);
    assert_eq!(
        t.create(&device, NODE, T::MgmtObj, rbo).await.rsc,
        R::Created
    );
    // An object with a lifetime expires.
    let soon = model::time::format(clock.clock().now() + chrono::Duration::seconds(60));
    let mem = json!({"m2m:mem": {"rn": "mem", "mgd": 1003, "mma": 1, "mmt": 2, "et": soon}});
    assert_eq!(
        t.create(&device, NODE, T::MgmtObj, mem).await.rsc,
        R::Created
    );
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(cse::expiry::sweep(&t.cse).await, 1);
    assert_eq!(
        t.retrieve(&device, "cse-in/node1/mem").await.rsc,
        R::NotFound
    );
    // ... and frees its place too.
    let mem = json!({"m2m:mem": {"rn": "mem2", "mgd": 1003, "mma": 1, "mmt": 2}});
    assert_eq!(
        t.create(&device, NODE, T::MgmtObj, mem).await.rsc,
        R::Created
    );
    // The node goes with its objects.
    assert_eq!(t.delete(ADMIN, NODE).await.rsc, R::Deleted);
    assert_eq!(t.retrieve(ADMIN, BAT).await.rsc, R::NotFound);
    assert_eq!(
        t.retrieve(ADMIN, "cse-in/node1/rbo2").await.rsc,
        R::NotFound
    );
    // A node of the same name starts empty: its single objects have no place taken.
    let node = json!({"m2m:nod": {"rn": "node1", "ni": "n1"}});
    assert_eq!(
        t.create(ADMIN, "cse-in", T::Node, node).await.rsc,
        R::Created
    );
    let rbo = json!({"m2m:rbo": {"rn": "rbo", "mgd": 1009}});
    assert_eq!(t.create(ADMIN, NODE, T::MgmtObj, rbo).await.rsc, R::Created);
}

/// A memory object is at most one per node even when eight CREATEs race for it: the check
/// is made inside the creating write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_leave_one_memory_object_per_node() {
    let t = Arc::new(TestCse::new().await);
    let (device, _, _) = device_tree(&t).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (t, device) = (t.clone(), device.clone());
        tasks.push(tokio::spawn(async move {
            let mem =
                json!({"m2m:mem": {"rn": format!("mem{i}"), "mgd": 1003, "mma": 1, "mmt": 2}});
            t.create(&device, NODE, T::MgmtObj, mem).await.rsc
        }));
    }
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.expect("task"));
    }
    let created = codes.iter().filter(|c| **c == R::Created).count();
    let refused = codes.iter().filter(|c| **c == R::Conflict).count();
    assert_eq!((created, refused), (1, 7), "{codes:?}");
    let mut req = Request::new(Operation::Retrieve, NODE, Some(device.clone()));
    req.fc.add("fu", "1").expect("fu");
    req.fc.add("mgd", "1003").expect("mgd");
    let r = t.send(req).await;
    let found =
        r.pc.as_ref()
            .and_then(|p| p["m2m:uril"].as_array().cloned())
            .unwrap_or_default();
    assert_eq!(found.len(), 1, "{found:?}");
}

/// The node's own procedures: the admin updates it, a subscriber on it hears of a new
/// management object under its specialisation's key (`net` 3), and of its deletion (`net` 4).
#[tokio::test]
async fn a_node_is_updated_and_tells_its_subscribers_about_its_objects() {
    let t = TestCse::new().await;
    let (device, operator, other) = device_tree(&t).await;
    let r = t
        .update(
            ADMIN,
            NODE,
            json!({"m2m:nod": {"mgca": "coap://10.0.0.8:5683", "hcl": "cse-in"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "mgca"), json!("coap://10.0.0.8:5683"));
    // The operator's policy grants UPDATE too...
    let r = t
        .update(&operator, NODE, json!({"m2m:nod": {"ni": "urn:x:2"}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    // ...and an AE the policy does not name may do neither.
    assert_eq!(
        t.retrieve(&other, NODE).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let r = t
        .update(&other, NODE, json!({"m2m:nod": {"ni": "urn:x:3"}}))
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    assert_eq!(read(&t, &device, NODE).await.1["ni"], json!("urn:x:2"));

    let rx = Receiver::start(2000).await;
    let sub = json!({"m2m:sub": {"rn": "children", "nu": [rx.url.clone()],
        "enc": {"net": [3, 4]}}});
    assert_eq!(
        t.create(&device, NODE, T::Subscription, sub).await.rsc,
        R::Created
    );
    assert_eq!(rx.wait_for(1).await.len(), 1, "verification request");
    let evl = json!({"m2m:evl": {"rn": "evl", "mgd": 1010, "lgt": 2, "lgd": "", "lgst": 3}});
    assert_eq!(
        t.create(&device, NODE, T::MgmtObj, evl).await.rsc,
        R::Created
    );
    let got = rx.wait_for(2).await;
    let sgn = &got[1]["m2m:sgn"]["nev"];
    assert_eq!(sgn["net"], json!(3), "{sgn}");
    assert_eq!(sgn["rep"]["m2m:evl"]["lgt"], json!(2), "{sgn}");
    assert_eq!(t.delete(&device, "cse-in/node1/evl").await.rsc, R::Deleted);
    let got = rx.wait_for(3).await;
    assert_eq!(got[2]["m2m:sgn"]["nev"]["net"], json!(4), "{got:?}");
}

/// An `<AE>`'s `nl` (nodeLink) names the `<node>` of the device it runs on: accepted when it
/// names a node, 4000 otherwise, on registration and on UPDATE, with nothing changed.
#[tokio::test]
async fn an_ae_links_to_its_node() {
    let t = TestCse::new().await;
    let (device, _, _) = device_tree(&t).await;
    let linked = t.register_with("linked", json!({"nl": NODE})).await;
    assert_eq!(
        read(&t, &linked, "cse-in/linked").await.1["nl"],
        json!(NODE)
    );
    for nl in [BAT, "cse-in/device", "cse-in/nothing"] {
        let ae = json!({"m2m:ae": {"rn": "bad", "api": "Ntest", "rr": true, "nl": nl}});
        let r = t.create("C", "cse-in", T::Ae, ae).await;
        assert_eq!(r.rsc, R::BadRequest, "{nl}: {:?}", r.pc);
        assert_eq!(t.retrieve(ADMIN, "cse-in/bad").await.rsc, R::NotFound);
        let r = t
            .update(&device, "cse-in/device", json!({"m2m:ae": {"nl": nl}}))
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{nl}");
        assert_eq!(
            read(&t, &device, "cse-in/device").await.1["nl"],
            Value::Null
        );
    }
    let r = t
        .update(&device, "cse-in/device", json!({"m2m:ae": {"nl": NODE}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "nl"), json!(NODE));
}
