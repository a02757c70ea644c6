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
    let a = h.get(from, &format!("cse-in/ae?{q}"));
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
