//! Issue 12, groups 2 and 3, over HTTP against the real binary with curl: the result
//! contents each operation accepts and what they hold (TS-0001 clause 8.1.2, TS-0004 clause
//! 7.3.2.1), and the filter criteria (TS-0004 clause 7.3.3.17, TS-0009 clause 6.2.2.2).
use crate::common;

use common::*;
use serde_json::Value;

/// `ae` holding `c` (instances `i1`, `i2`, the second `text/plain`) and an empty `d`.
fn server(dir: &std::path::Path, config: &str) -> (Server, Http, String) {
    let file = dir.join("cse.toml");
    std::fs::write(&file, config).expect("config");
    let server = Server::start_with(
        &dir.join("data"),
        &["--config", file.to_str().expect("utf8")],
    );
    let http = Http { base: server.url() };
    let me = http.register("ae");
    http.create(&me, "cse-in/ae", 3, r#"{"m2m:cnt": {"rn": "c"}}"#);
    http.create(
        &me,
        "cse-in/ae/c",
        4,
        r#"{"m2m:cin": {"rn": "i1", "con": "a"}}"#,
    );
    http.create(
        &me,
        "cse-in/ae/c",
        4,
        r#"{"m2m:cin": {"rn": "i2", "con": "bb", "cnf": "text/plain:0"}}"#,
    );
    http.create(&me, "cse-in/ae", 3, r#"{"m2m:cnt": {"rn": "d"}}"#);
    (server, http, me)
}

/// The `rn` of each element of a list.
fn rns(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v["rn"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The addresses of an `m2m:uril` or of an `m2m:rrl`.
fn addresses(body: &Value) -> Vec<String> {
    let uril = body["m2m:uril"].as_array().cloned();
    let rrf = body["m2m:rrl"]["rrf"]
        .as_array()
        .map(|a| a.iter().map(|r| r["val"].clone()).collect());
    uril.or(rrf)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn result_contents_hold_descendants_and_each_operation_takes_its_own_values() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (_server, http, me) = server(dir.path(), "[cse]\n");

    // TS-0001 8.1.2 child-resources: children AND their descendants, filter applied. The
    // instances' parent `c` is filtered out, so they nest in the target.
    let a = http.get(&me, "cse-in/ae?rcn=8&ty=4");
    assert_eq!(a.rsc, 2000, "{}", a.body);
    assert_eq!(rns(&a.body["m2m:ae"]["m2m:cin"]), ["i1", "i2"]);
    assert!(a.body["m2m:ae"].get("ri").is_none(), "{}", a.body);
    // attributes+child-resources: nested by parent (TS-0004 8.4.2, example 3).
    let a = http.get(&me, "cse-in/ae?rcn=4");
    let ae = &a.body["m2m:ae"];
    assert_eq!(ae["rn"], "ae");
    assert_eq!(rns(&ae["m2m:cnt"]), ["c", "d"]);
    assert_eq!(rns(&ae["m2m:cnt"][0]["m2m:cin"]), ["i1", "i2"]);
    // References: every descendant, or down to `lvl`.
    let a = http.get(&me, "cse-in/ae?rcn=6");
    assert_eq!(
        addresses(&a.body),
        [
            "cse-in/ae/c",
            "cse-in/ae/c/i1",
            "cse-in/ae/c/i2",
            "cse-in/ae/d"
        ]
    );
    let a = http.get(&me, "cse-in/ae?rcn=5&lvl=1");
    let ch: Vec<&str> = a.body["m2m:ae"]["ch"]
        .as_array()
        .map(|c| c.iter().filter_map(|r| r["val"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ch, ["cse-in/ae/c", "cse-in/ae/d"]);

    // CREATE takes modified-attributes (9): what the CSE set or changed, not what was sent.
    let a = http.send(
        "POST",
        &me,
        "cse-in/ae?rcn=9",
        Some((3, r#"{"m2m:cnt": {"rn": "e", "lbl": ["x"]}}"#)),
    );
    assert_eq!(a.rsc, 2001, "{}", a.body);
    let cnt = a.body["m2m:cnt"].as_object().cloned().unwrap_or_default();
    assert!(cnt.contains_key("ri") && cnt.contains_key("ct"), "{cnt:?}");
    assert!(
        !cnt.contains_key("rn") && !cnt.contains_key("lbl"),
        "{cnt:?}"
    );

    // DELETE takes 4, 5, 6, 8: the subtree as it was, read before it goes.
    let a = http.send("DELETE", &me, "cse-in/ae/c?rcn=6", None);
    assert_eq!(a.rsc, 2002, "{}", a.body);
    assert_eq!(addresses(&a.body), ["cse-in/ae/c/i1", "cse-in/ae/c/i2"]);
    assert_eq!(http.get(&me, "cse-in/ae/c").rsc, 4004);
    let a = http.send("DELETE", &me, "cse-in/ae/d?rcn=4", None);
    assert_eq!((a.rsc, &a.body["m2m:cnt"]["rn"]), (2002, &"d".into()));

    // What the table gives as n/a is 4000 (TS-0004 7.3.2.1).
    for (method, path) in [
        ("DELETE", "cse-in/ae/e?rcn=2"),
        ("DELETE", "cse-in/ae/e?rcn=9"),
        ("GET", "cse-in/ae?rcn=9"),
        ("GET", "cse-in/ae?rcn=0"),
        ("GET", "cse-in/ae?fu=1&rcn=1"),
        ("GET", "cse-in/ae?fu=1&rcn=4"),
        ("GET", "cse-in/ae?fu=1&rcn=5"),
        ("GET", "cse-in/ae?fu=1&rcn=8"),
    ] {
        assert_eq!(
            http.send(method, &me, path, None).rsc,
            4000,
            "{method} {path}"
        );
    }
    let a = http.send(
        "POST",
        &me,
        "cse-in/ae?rcn=6",
        Some((3, r#"{"m2m:cnt": {"rn": "f"}}"#)),
    );
    assert_eq!(a.rsc, 4000);
    let a = http.get(&me, "cse-in/ae?fu=1&rcn=6");
    assert_eq!(
        (a.rsc, addresses(&a.body)),
        (2000, vec!["cse-in/ae/e".into()])
    );
}

#[test]
fn descendants_are_read_one_bounded_page_at_a_time() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (_server, http, me) = server(dir.path(), "[cse]\nresult_limit = 2\n");
    // TS-0001 8.1.2: a partial result says so, with the offset to continue from.
    let a = http.get(&me, "cse-in/ae?rcn=6");
    assert_eq!(a.header("X-M2M-CTS"), Some("1"), "{}", a.head);
    assert_eq!(a.header("X-M2M-CTO"), Some("2"), "{}", a.head);
    assert_eq!(addresses(&a.body), ["cse-in/ae/c", "cse-in/ae/c/i1"]);
    let a = http.get(&me, "cse-in/ae?rcn=6&ofst=2");
    assert_eq!(a.header("X-M2M-CTS"), None, "{}", a.head);
    assert_eq!(addresses(&a.body), ["cse-in/ae/c/i2", "cse-in/ae/d"]);
}

#[test]
fn filter_criteria_follow_the_table() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (_server, http, me) = server(dir.path(), "[cse]\n");
    let found = |path: &str| {
        // The admin (the default profile's `CAdmin`) may discover below the CSEBase.
        let from = if path.starts_with("cse-in?") {
            "CAdmin"
        } else {
            me.as_str()
        };
        let a = http.get(from, path);
        assert_eq!(a.rsc, 2000, "{path}: {}", a.body);
        addresses(&a.body)
    };
    // TS-0009 6.2.2.2: any attribute short name is a condition (TS-0004 7.3.3.17.9).
    assert_eq!(found("cse-in/ae?fu=1&cni=2"), ["cse-in/ae/c"]);
    assert_eq!(found("cse-in?fu=1&ty=2&api=Nconformance"), ["cse-in/ae"]);
    // Wildcards in discovery.
    assert_eq!(found("cse-in?fu=1&ty=2&api=Nconf*"), ["cse-in/ae"]);
    assert!(found("cse-in?fu=1&ty=2&api=Nother*").is_empty());
    // fo (7.3.3.17.12): AND by default, OR with fo=2.
    assert!(found("cse-in/ae?fu=1&cni=2&rn=d").is_empty());
    assert_eq!(
        found("cse-in/ae?fu=1&cni=2&rn=d&fo=2"),
        ["cse-in/ae/c", "cse-in/ae/d"]
    );
    // cty (7.3.3.17.8): the type part of cnf.
    assert_eq!(found("cse-in/ae?fu=1&cty=text/plain"), ["cse-in/ae/c/i2"]);
    // sts/stb (7.3.3.17.3): stateTagBigger <= st < stateTagSmaller.
    assert_eq!(
        found("cse-in/ae/c?fu=1&ty=4&stb=0"),
        ["cse-in/ae/c/i1", "cse-in/ae/c/i2"]
    );
    assert!(found("cse-in/ae/c?fu=1&ty=4&sts=0").is_empty());
    // sza/szb (7.3.3.17.7): sizeAbove <= cs < sizeBelow.
    assert_eq!(found("cse-in/ae/c?fu=1&sza=2"), ["cse-in/ae/c/i2"]);
    assert_eq!(found("cse-in/ae/c?fu=1&szb=2"), ["cse-in/ae/c/i1"]);
    // exa/exb and cra/crb (7.3.3.17.1, .4): the lower bound is inclusive.
    let c = http.get(&me, "cse-in/ae/c").body;
    let (ct, et) = (c["m2m:cnt"]["ct"].as_str(), c["m2m:cnt"]["et"].as_str());
    let (ct, et) = (ct.expect("ct"), et.expect("et"));
    assert!(found(&format!("cse-in/ae?fu=1&ty=3&cra={ct}")).contains(&"cse-in/ae/c".into()));
    assert!(!found(&format!("cse-in/ae?fu=1&ty=3&crb={ct}")).contains(&"cse-in/ae/c".into()));
    assert!(found(&format!("cse-in/ae?fu=1&ty=3&exa={et}")).contains(&"cse-in/ae/c".into()));
    assert!(!found(&format!("cse-in/ae?fu=1&ty=3&exb={et}")).contains(&"cse-in/ae/c".into()));
    // Attribute conditions also filter child results (7.3.3.17.0).
    let a = http.get(&me, "cse-in/ae?rcn=8&con=bb");
    assert_eq!(rns(&a.body["m2m:ae"]["m2m:cin"]), ["i2"]);

    // Criteria defined but not implemented: 5001, never ignored (TS-0004 7.3.2.1).
    for q in [
        "smf=x", "sqi=true",
        // An attribute the tables define but this CSE does not support (never stored).
        "gpi=x",
    ] {
        let a = http.get(&me, &format!("cse-in/ae?fu=1&{q}"));
        assert_eq!(a.rsc, 5001, "{q}: {}", a.body);
    }
    // Attributes other criteria cover, unknown names, and a geo-query missing one of its
    // three criteria: 4000 (7.3.3.17.9).
    for q in [
        "ct=20260101T000000",
        "cs=2",
        "cnf=text/plain:0",
        "nosuch=1",
        "gmty=1",
        "geom=%5B1%2C2%5D",
        "gsf=1",
    ] {
        assert_eq!(
            http.get(&me, &format!("cse-in/ae?fu=1&{q}")).rsc,
            4000,
            "{q}"
        );
    }
    assert_eq!(http.get(&me, "cse-in/ae?fu=1&sqi=false").rsc, 2000);
}

#[test]
fn labels_queries_and_relative_paths_follow_their_clauses() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (_server, http, me) = server(dir.path(), "[cse]\n");
    http.register("ae2");
    http.create(
        &me,
        "cse-in/ae",
        3,
        r#"{"m2m:cnt": {"rn": "k", "lbl": ["room:kitchen", "sensor"]}}"#,
    );
    http.create(
        &me,
        "cse-in/ae/k",
        4,
        r#"{"m2m:cin": {"rn": "t1", "con": "21"}}"#,
    );
    http.create(
        &me,
        "cse-in/ae",
        3,
        r#"{"m2m:cnt": {"rn": "b", "lbl": ["room:bath"]}}"#,
    );
    let found = |from: &str, path: &str| {
        let a = http.get(from, path);
        assert_eq!(a.rsc, 2000, "{path}: {}", a.body);
        let mut got = addresses(&a.body);
        got.sort();
        got
    };
    let mine = |q: &str| found(&me, &format!("cse-in/ae?fu=1&{q}"));
    // labelsQuery (TS-0004 7.3.3.17.16): key, NT, EQ (or key:value), NE, IN, NI; a list
    // of expressions is met when any of them is.
    assert_eq!(mine("lbq=room"), ["cse-in/ae/b", "cse-in/ae/k"]);
    assert_eq!(mine("lbq=room%20EQ%20kitchen"), ["cse-in/ae/k"]);
    assert_eq!(mine("lbq=room:kitchen"), ["cse-in/ae/k"]);
    assert_eq!(mine("lbq=room%20NE%20kitchen"), ["cse-in/ae/b"]);
    assert_eq!(mine("lbq=room%20IN%20(bath,%20cellar)"), ["cse-in/ae/b"]);
    assert_eq!(mine("lbq=room%20NI%20(bath)"), ["cse-in/ae/k"]);
    assert_eq!(mine("ty=3&lbq=NT%20room"), ["cse-in/ae/c", "cse-in/ae/d"]);
    assert_eq!(
        mine("lbq=sensor+room%20EQ%20bath"),
        ["cse-in/ae/b", "cse-in/ae/k"]
    );
    for bad in ["lbq=room%20XX%20y", "lbq=room%20IN%20bath", "lbq=NT%20"] {
        let a = http.get(&me, &format!("cse-in/ae?fu=1&{bad}"));
        assert_eq!(a.rsc, 4000, "{bad}: {}", a.body);
    }

    // applyRelativePath (7.3.3.17.17): the resources at the path from each match, each
    // once; a path to nothing (an empty container's `la`) adds nothing.
    assert_eq!(mine("ty=3&arp=la"), ["cse-in/ae/c/i2", "cse-in/ae/k/t1"]);
    assert_eq!(mine("ty=4&arp=../../d"), ["cse-in/ae/d"]);
    assert!(mine("ty=3&arp=nosuch").is_empty());
    // It must not reveal what discovery hides: another AE's resource is dropped for this
    // originator, and found for the admin.
    assert!(mine("ty=3&rn=c&arp=../../ae2").is_empty());
    assert_eq!(
        found("CAdmin", "cse-in?fu=1&ty=3&rn=c&arp=../../ae2"),
        ["cse-in/ae2"]
    );
    // Relative, given once, discovery only: 4000 otherwise.
    for bad in [
        "cse-in/ae?fu=1&arp=/cse-in",
        "cse-in/ae?fu=1&arp=a//b",
        "cse-in/ae?fu=1&arp=la&arp=ol",
        "cse-in/ae?fu=2&arp=la",
    ] {
        let a = http.get(&me, bad);
        assert_eq!(a.rsc, 4000, "{bad}: {}", a.body);
    }
}
