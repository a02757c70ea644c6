//! Groups over HTTP against the real binary, with curl (issue 12, group 4): `mt` defaults to
//! MIXED, duplicates are dropped, `mnm` gives 6010, `csy` decides about members of the wrong
//! type, and `fopt` fans every operation out, also through sub-paths, with a combined
//! response bounded by `result_max_bytes`.
use crate::common;

use common::*;
use serde_json::{json, Value};

struct Http {
    base: String,
}

/// One answer: the `X-M2M-RSC`, the `X-M2M-CTS` if any, and the JSON body (`Null` if none).
struct Answer {
    rsc: u16,
    cts: Option<String>,
    body: Value,
    raw: String,
}

impl Http {
    fn send(&self, method: &str, from: &str, path: &str, ty_body: Option<(u8, &Value)>) -> Answer {
        let url = format!("{}/{path}", self.base);
        let content = ty_body.map(|(ty, pc)| {
            let ct = if ty == 0 {
                "application/json".to_owned()
            } else {
                format!("application/json;ty={ty}")
            };
            (ct, pc.to_string())
        });
        let raw = m2m_curl(
            &url,
            method,
            from,
            &["Accept: application/json"],
            content.as_ref().map(|(c, b)| (c.as_str(), b.as_str())),
        );
        let (head, text) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(|v| v.trim().to_owned())
        };
        Answer {
            rsc: header("X-M2M-RSC")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no X-M2M-RSC: {raw}")),
            cts: header("X-M2M-CTS"),
            body: serde_json::from_str(text).unwrap_or(Value::Null),
            raw: raw.clone(),
        }
    }

    fn create(&self, from: &str, path: &str, ty: u8, pc: Value) -> Answer {
        self.send("POST", from, path, Some((ty, &pc)))
    }

    fn update(&self, from: &str, path: &str, pc: Value) -> Answer {
        self.send("PUT", from, path, Some((0, &pc)))
    }

    fn register(&self, rn: &str) -> String {
        let a = self.create(
            "C",
            "cse-in",
            2,
            json!({"m2m:ae": {"rn": rn, "api": "Ngroups", "rr": false, "srv": ["3"]}}),
        );
        assert_eq!(a.rsc, 2001, "{}", a.raw);
        a.body["m2m:ae"]["aei"].as_str().expect("aei").to_owned()
    }
}

/// The member answers of an `m2m:agr`.
fn rsps(a: &Answer) -> Vec<Value> {
    a.body["m2m:agr"]["m2m:rsp"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no m2m:agr: {}", a.raw))
}

fn started(config: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("cse.toml");
    std::fs::write(&file, config).expect("config");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", file.to_str().expect("utf8")],
    );
    (dir, server)
}

#[test]
fn group_members_follow_mt_mnm_and_csy() {
    if !have_curl() {
        return;
    }
    let (_dir, server) = started("[cse]\n");
    let http = Http { base: server.url() };
    let me = http.register("me");
    for rn in ["a", "b"] {
        let c = http.create(&me, "cse-in/me", 3, json!({"m2m:cnt": {"rn": rn}}));
        assert_eq!(c.rsc, 2001, "{}", c.raw);
    }
    let grp = |body: Value| http.create(&me, "cse-in/me", 9, json!({ "m2m:grp": body }));

    // TS-0004 table 7.4.13.1-3: mt is optional and defaults to MIXED (0); MIXED admits any
    // type. TS-0004 7.4.13.2.1: duplicate members are removed, not refused.
    let g = grp(json!({"rn": "mixed", "mnm": 3,
        "mid": ["cse-in/me/a", "cse-in/me", "cse-in/me/a"]}));
    assert_eq!(g.rsc, 2001, "{}", g.raw);
    let g = &g.body["m2m:grp"];
    assert_eq!(
        (&g["mt"], &g["mid"], &g["cnm"], &g["csy"]),
        (
            &json!(0),
            &json!(["cse-in/me/a", "cse-in/me"]),
            &json!(2),
            &Value::Null
        )
    );
    let g = grp(json!({"rn": "explicit", "mt": 0, "mnm": 1, "mid": ["cse-in/me"]}));
    assert_eq!(g.rsc, 2001, "{}", g.raw);

    // TS-0004 7.4.13.2.1: more members than mnm is MAX_NUMBER_OF_MEMBER_EXCEEDED (6010);
    // duplicates are removed first.
    let g = grp(json!({"mnm": 1, "mid": ["cse-in/me/a", "cse-in/me/b"]}));
    assert_eq!(g.rsc, 6010, "{}", g.raw);
    let g = grp(json!({"rn": "one", "mnm": 1, "mid": ["cse-in/me/a", "cse-in/me/a"]}));
    assert_eq!(
        (g.rsc, &g.body["m2m:grp"]["cnm"]),
        (2001, &json!(1)),
        "{}",
        g.raw
    );

    // TS-0004 7.4.13.2.1 a)-c): a member of the wrong type is dropped (ABANDON_MEMBER, the
    // default), refuses the request (ABANDON_GROUP, 4110) or makes the group MIXED.
    let g = grp(json!({"rn": "dflt", "mt": 3, "mnm": 5, "mid": ["cse-in/me/a", "cse-in/me"]}));
    assert_eq!(g.rsc, 2001, "{}", g.raw);
    let g = &g.body["m2m:grp"];
    assert_eq!(
        (&g["mt"], &g["mid"], &g["mtv"]),
        (&json!(3), &json!(["cse-in/me/a"]), &json!(true))
    );
    let g = grp(json!({"mt": 3, "csy": 2, "mnm": 5, "mid": ["cse-in/me/a", "cse-in/me"]}));
    assert_eq!(g.rsc, 4110, "{}", g.raw);
    let g = grp(json!({"rn": "setmixed", "mt": 3, "csy": 3, "mnm": 5,
        "mid": ["cse-in/me/a", "cse-in/me"]}));
    assert_eq!(g.rsc, 2001, "{}", g.raw);
    assert_eq!(
        (&g.body["m2m:grp"]["mt"], &g.body["m2m:grp"]["cnm"]),
        (&json!(0), &json!(2))
    );
    // Values outside the tables are refused (m2m:consistencyStrategy, m2m:memberType), and
    // so is spty, which only constrains types this CSE does not host (5001, not supported).
    for bad in [
        json!({"mt": 3, "csy": 0, "mnm": 5, "mid": []}),
        json!({"mt": 10000, "mnm": 5, "mid": []}),
        json!({"mnm": 0, "mid": []}),
    ] {
        assert_eq!(grp(bad.clone()).rsc, 4000, "{bad}");
    }
    let spty = json!({"mnm": 5, "mid": [], "spty": "org.example.x"});
    assert_eq!(grp(spty).rsc, 5001);

    // TS-0004 7.4.13.2.3: the same rules on UPDATE, with the group's own mt and csy.
    let u = http.update(
        &me,
        "cse-in/me/dflt",
        json!({"m2m:grp": {"mid":
        ["cse-in/me/b", "cse-in/me/b", "cse-in/me", "cse-in/me/a"]}}),
    );
    assert_eq!(u.rsc, 2004, "{}", u.raw);
    assert_eq!(
        (&u.body["m2m:grp"]["mid"], &u.body["m2m:grp"]["cnm"]),
        (&json!(["cse-in/me/b", "cse-in/me/a"]), &json!(2))
    );
    // mnm below the current number of members, or more members than mnm: 6010.
    let u = http.update(&me, "cse-in/me/dflt", json!({"m2m:grp": {"mnm": 1}}));
    assert_eq!(u.rsc, 6010, "{}", u.raw);
    let u = http.update(
        &me,
        "cse-in/me/one",
        json!({"m2m:grp": {"mid": ["cse-in/me/a", "cse-in/me/b"]}}),
    );
    assert_eq!(u.rsc, 6010, "{}", u.raw);
    // mt and csy are fixed at creation (NP on UPDATE).
    let u = http.update(&me, "cse-in/me/dflt", json!({"m2m:grp": {"csy": 3}}));
    assert_eq!(u.rsc, 4000, "{}", u.raw);
    let g = http.create(
        &me,
        "cse-in/me",
        9,
        json!({"m2m:grp": {"rn": "strict", "mt": 3,
        "csy": 2, "mnm": 5, "mid": ["cse-in/me/a"]}}),
    );
    assert_eq!(g.rsc, 2001, "{}", g.raw);
    let u = http.update(
        &me,
        "cse-in/me/strict",
        json!({"m2m:grp": {"mid": ["cse-in/me"]}}),
    );
    assert_eq!(u.rsc, 4110, "{}", u.raw);
    let u = http.update(
        &me,
        "cse-in/me/setmixed",
        json!({"m2m:grp": {"mid": ["cse-in/me/b"]}}),
    );
    assert_eq!(
        (u.rsc, &u.body["m2m:grp"]["mt"]),
        (2004, &json!(0)),
        "{}",
        u.raw
    );
}

#[test]
fn fan_out_serves_every_operation_and_sub_paths_with_a_bounded_answer() {
    if !have_curl() {
        return;
    }
    // Room for the small member answers below, not for two 700-byte instances.
    let (_dir, server) = started("[cse]\nresult_max_bytes = 1000\n");
    let http = Http { base: server.url() };
    let me = http.register("me");
    for rn in ["a", "b"] {
        let c = http.create(&me, "cse-in/me", 3, json!({"m2m:cnt": {"rn": rn}}));
        assert_eq!(c.rsc, 2001, "{}", c.raw);
    }
    let g = http.create(
        &me,
        "cse-in/me",
        9,
        json!({"m2m:grp": {"rn": "g", "mt": 3,
        "mnm": 5, "mid": ["cse-in/me/a", "cse-in/me/b"]}}),
    );
    assert_eq!(g.rsc, 2001, "{}", g.raw);

    // TS-0004 7.4.14.2.4: each member gets the request; the answers come back in m2m:agr.
    let codes = |a: &Answer| rsps(a).iter().map(|r| r["rsc"].clone()).collect::<Vec<_>>();
    let c = http.create(
        &me,
        "cse-in/me/g/fopt",
        4,
        json!({"m2m:cin": {"rn": "x", "con": "v"}}),
    );
    assert_eq!(
        (c.rsc, codes(&c)),
        (2000, vec![json!(2001), json!(2001)]),
        "{}",
        c.raw
    );
    let r = http.send("GET", &me, "cse-in/me/g/fopt", None);
    assert_eq!(codes(&r), vec![json!(2000), json!(2000)], "{}", r.raw);
    assert_eq!(rsps(&r)[1]["pc"]["m2m:cnt"]["rn"], json!("b"), "{}", r.raw);
    assert_eq!(r.cts, None, "everything fits: {}", r.raw);
    let u = http.update(
        &me,
        "cse-in/me/g/fopt",
        json!({"m2m:cnt": {"lbl": ["both"]}}),
    );
    assert_eq!(codes(&u), vec![json!(2004), json!(2004)], "{}", u.raw);
    let d = http.send("GET", &me, "cse-in/me/g/fopt?fu=1&ty=4", None);
    assert_eq!(codes(&d), vec![json!(2000), json!(2000)], "{}", d.raw);
    assert_eq!(
        rsps(&d)[0]["pc"]["m2m:uril"],
        json!(["cse-in/me/a/x"]),
        "{}",
        d.raw
    );
    // TS-0004 7.4.14.1: through sub-paths, to a virtual resource and to a named child.
    let la = http.send("GET", &me, "cse-in/me/g/fopt/la", None);
    assert_eq!(
        rsps(&la)[0]["pc"]["m2m:cin"]["con"],
        json!("v"),
        "{}",
        la.raw
    );
    let x = http.send("DELETE", &me, "cse-in/me/g/fopt/x", None);
    assert_eq!(codes(&x), vec![json!(2002), json!(2002)], "{}", x.raw);
    let gone = http.send("GET", &me, "cse-in/me/a/x", None);
    assert_eq!(gone.rsc, 4004, "{}", gone.raw);

    // The combined answer is bounded: member contents are embedded while they fit in
    // result_max_bytes; the rest carry their status only and the response is partial.
    let big = "v".repeat(700);
    let c = http.create(&me, "cse-in/me/g/fopt", 4, json!({"m2m:cin": {"con": big}}));
    assert_eq!(codes(&c), vec![json!(2001), json!(2001)], "{}", c.raw);
    assert_eq!(c.cts.as_deref(), Some("1"), "{}", c.raw);
    let la = http.send("GET", &me, "cse-in/me/g/fopt/la", None);
    let answers = rsps(&la);
    assert_eq!(la.cts.as_deref(), Some("1"), "{}", la.raw);
    assert_eq!(answers[0]["pc"]["m2m:cin"]["con"], json!(big), "{}", la.raw);
    assert_eq!(
        (&answers[1]["rsc"], &answers[1]["pc"]),
        (&json!(2000), &Value::Null)
    );

    // A member answer keeps its own status; deleting through fopt reaches every member.
    let gone = http.send("DELETE", &me, "cse-in/me/g/fopt", None);
    assert_eq!(codes(&gone), vec![json!(2002), json!(2002)], "{}", gone.raw);
    let empty = http.send("GET", &me, "cse-in/me/g/fopt", None);
    assert_eq!(
        codes(&empty),
        vec![json!(4004), json!(4004)],
        "{}",
        empty.raw
    );
}

// TS-0004 7.4.13.2.1: only a group whose `mt` is not MIXED has its members' types checked,
// by reading them with the originator's privileges; a member whose type cannot be read is
// RECEIVER_HAS_NO_PRIVILEGE. A member that does not exist gets exactly the same answer as
// one the originator may not read, so that creating groups cannot probe for resources
// (docs/security.md); a MIXED group checks neither.
#[test]
fn members_the_originator_cannot_read_answer_like_missing_ones() {
    if !have_curl() {
        return;
    }
    let (_dir, server) = started("[cse]\n");
    let http = Http { base: server.url() };
    let me = http.register("me");
    let stranger = http.register("stranger");
    let c = http.create(
        &stranger,
        "cse-in/stranger",
        3,
        json!({"m2m:cnt": {"rn": "secret"}}),
    );
    assert_eq!(c.rsc, 2001, "{}", c.raw);
    let c = http.create(&me, "cse-in/me", 3, json!({"m2m:cnt": {"rn": "mine"}}));
    assert_eq!(c.rsc, 2001, "{}", c.raw);
    let grp = |mt: Option<u64>, member: &str| {
        let mut body = json!({"mnm": 5, "mid": [member]});
        if let Some(mt) = mt {
            body["mt"] = json!(mt);
        }
        http.create(&me, "cse-in/me", 9, json!({ "m2m:grp": body }))
    };
    let hidden = grp(Some(3), "cse-in/stranger/secret");
    let missing = grp(Some(3), "cse-in/stranger/nothing");
    assert_eq!(
        (hidden.rsc, missing.rsc),
        (5105, 5105),
        "{} {}",
        hidden.raw,
        missing.raw
    );
    assert_eq!(
        hidden.body.to_string().replace("secret", "X"),
        missing.body.to_string().replace("nothing", "X"),
        "the same answer"
    );
    assert_eq!(grp(Some(3), "cse-in/me/mine").rsc, 2001);
    for member in ["cse-in/stranger/secret", "cse-in/stranger/nothing"] {
        let g = grp(None, member);
        assert_eq!(g.rsc, 2001, "MIXED checks no member: {}", g.raw);
    }
    // TS-0004 7.4.13.2.3: the same on UPDATE of a typed group.
    let g = http.create(
        &me,
        "cse-in/me",
        9,
        json!({"m2m:grp": {"rn": "typed", "mt": 3, "mnm": 5, "mid": ["cse-in/me/mine"]}}),
    );
    assert_eq!(g.rsc, 2001, "{}", g.raw);
    for member in ["cse-in/stranger/secret", "cse-in/stranger/nothing"] {
        let u = http.update(
            &me,
            "cse-in/me/typed",
            json!({"m2m:grp": {"mid": [member]}}),
        );
        assert_eq!(u.rsc, 5105, "{}", u.raw);
    }
}
