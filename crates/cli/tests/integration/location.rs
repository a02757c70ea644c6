//! Geo-location end to end, with the real binary and curl: containers created with a `loc`
//! (`m2m:geoCoordinates`), found by the geo-query of discovery (`gmty`, `geom`, `gsf` in the
//! URL query, TS-0009 query mapping), a bad location or an incomplete query refused with
//! 4000, and locations that survive a restart.
use crate::common;

use common::*;
use serde_json::{json, Value};

/// `geom` as it travels in a URL query: percent-encoded JSON.
fn query(gmty: u8, geom: &str, gsf: u8) -> String {
    let geom: String = geom
        .bytes()
        .map(|b| match b {
            b'0'..=b'9' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("fu=1&gmty={gmty}&geom={geom}&gsf={gsf}")
}

fn found(h: &Http, from: &str, q: &str) -> Vec<String> {
    found_under(h, from, "cse-in/ae", q)
}

/// The sorted addresses that discovery from `base` with query `q` returns to `from`.
fn found_under(h: &Http, from: &str, base: &str, q: &str) -> Vec<String> {
    let a = h.get(from, &format!("{base}?{q}"));
    assert_eq!(a.rsc, 2000, "{q}: {}", a.body);
    let mut uris: Vec<String> = a.body["m2m:uril"]
        .as_array()
        .map(|u| {
            u.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    uris.sort();
    uris
}

#[test]
fn geo_discovery_over_http() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(dir.path());
    let h = Http { base: server.url() };
    let ae = h.register("ae");
    for (rn, loc) in [
        ("paris", json!({"typ": 1, "crd": "[2.35, 48.85]"})),
        ("berlin", json!({"typ": 1, "crd": [13.4, 52.5]})),
        (
            "road",
            json!({"typ": 2, "crd": "[[1.5, 48.5], [2.5, 48.5]]"}),
        ),
    ] {
        let body = json!({"m2m:cnt": {"rn": rn, "loc": loc}});
        let a = h.create(&ae, "cse-in/ae", 3, &body.to_string());
        assert_eq!(a.body["m2m:cnt"]["loc"], loc);
    }
    let square = "[[[2,48],[3,48],[3,49],[2,49],[2,48]]]";
    assert_eq!(found(&h, &ae, &query(3, square, 1)), ["cse-in/ae/paris"]);
    assert_eq!(
        found(&h, &ae, &query(3, square, 3)),
        ["cse-in/ae/paris", "cse-in/ae/road"]
    );
    assert_eq!(
        found(&h, &ae, &query(1, "[13.4,52.5]", 2)),
        ["cse-in/ae/berlin"]
    );
    // Incomplete or bad geo-queries: 4000.
    for q in [
        "fu=1&gmty=3&gsf=1".to_owned(),
        format!("fu=1&{}", &query(3, square, 1)[12..]),
        query(3, "[[[2,48],[3,48],[2,48]]]", 1),
        query(1, "[2,95]", 1),
        query(1, "[2,48]", 9),
    ] {
        let a = h.get(&ae, &format!("cse-in/ae?{q}"));
        assert_eq!(a.rsc, 4000, "{q}: {}", a.body);
    }
    // A bad location: 4000 and nothing created; on UPDATE, nothing changed.
    let bad = json!({"m2m:cnt": {"rn": "bad", "loc": {"typ": 1, "crd": [200, 0]}}});
    let a = h.send("POST", &ae, "cse-in/ae", Some((3, &bad.to_string())));
    assert_eq!(a.rsc, 4000, "{}", a.body);
    assert_eq!(h.get(&ae, "cse-in/ae/bad").rsc, 4004);
    let a = h.update(
        &ae,
        "cse-in/ae/paris",
        r#"{"m2m:cnt": {"loc": {"typ": 3, "crd": "[[[0,0],[1,1],[1,0],[0,1],[0,0]]]"}}}"#,
    );
    assert_eq!(a.rsc, 4000, "{}", a.body);
    // Acknowledged locations are durable: the same answers after a restart.
    server.terminate();
    let server = Server::start(dir.path());
    let h = Http { base: server.url() };
    assert_eq!(found(&h, &ae, &query(3, square, 1)), ["cse-in/ae/paris"]);
}

/// The geo-query reads a resource's `loc`, so it tests only the resources the originator may
/// also RETRIEVE (TS-0004 clause 7.3.3.17.9 leaves the rights unsaid; TS-0003 clause 7.1:
/// no attribute hidden from the originator may be learnt). A container `other` may discover
/// but not retrieve is never in a geo-query's result, whether its location matches or not:
/// the answer is the same either way, so the filter is no oracle for where it is.
#[test]
fn a_geo_filter_reveals_nothing_the_originator_cannot_retrieve() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let h = Http { base: server.url() };
    let owner = h.register("owner");
    let other = h.register("other");
    // `see`: other may discover only; `read`: other may discover and retrieve. The owner
    // keeps every right through both.
    let mut acps = Vec::new();
    for (rn, acop) in [("see", 32), ("read", 34)] {
        let acp = json!({"m2m:acp": {"rn": rn,
            "pv": {"acr": [{"acor": [other], "acop": acop}, {"acor": [owner], "acop": 63}]},
            "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}});
        let a = h.create(&owner, "cse-in/owner", 1, &acp.to_string());
        acps.push(a.body["m2m:acp"]["ri"].clone());
    }
    let a = h.update(
        &owner,
        "cse-in/owner",
        &json!({"m2m:ae": {"acpi": [acps[1]]}}).to_string(),
    );
    assert_eq!(a.rsc, 2004, "{}", a.body);
    let paris = json!({"typ": 1, "crd": [2.35, 48.85]});
    for (rn, acp) in [("hidden", &acps[0]), ("shown", &acps[1])] {
        let body = json!({"m2m:cnt": {"rn": rn, "loc": paris, "acpi": [acp]}});
        h.create(&owner, "cse-in/owner", 3, &body.to_string());
    }
    assert_eq!(h.get(&other, "cse-in/owner/hidden").rsc, 4103);
    assert_eq!(h.get(&other, "cse-in/owner/shown").rsc, 2000);
    let under = |q: &str| found_under(&h, &other, "cse-in/owner", q);
    // Without a condition on a value, DISCOVER alone lists both.
    assert_eq!(
        under("fu=1&ty=3"),
        ["cse-in/owner/hidden", "cse-in/owner/shown"]
    );
    // A polygon around Paris: the hidden container's location matches, yet only the one
    // the originator may read is found.
    let around = "[[[2,48],[3,48],[3,49],[2,49],[2,48]]]";
    assert_eq!(under(&query(3, around, 1)), ["cse-in/owner/shown"]);
    // A polygon elsewhere: neither. The hidden container is absent both times.
    let elsewhere = "[[[10,50],[11,50],[11,51],[10,51],[10,50]]]";
    assert_eq!(under(&query(3, elsewhere, 1)), Vec::<String>::new());
    // The owner, who may read both, finds both: the filter itself works on `hidden`.
    let a = h.get(&owner, &format!("cse-in/owner?{}", query(3, around, 1)));
    assert_eq!(a.rsc, 2000, "{}", a.body);
    assert_eq!(
        a.body["m2m:uril"].as_array().map(Vec::len),
        Some(2),
        "{}",
        a.body
    );
}
