//! `<semanticDescriptor>` (ty 24, TS-0004 clause 7.4.34) over HTTP against the real binary:
//! a Turtle descriptor stored and read back, a malformed one refused with 4000 and nothing
//! created (clause 7.4.34.2.1 Recv-6.4), and semantic discovery (`smf`) answered 5001.
use crate::common;

use common::*;
use serde_json::json;

/// `@prefix ex: <http://example.org/> . ex:lamp a ex:Light .` in base64.
const TURTLE_B64: &str =
    "QHByZWZpeCBleDogPGh0dHA6Ly9leGFtcGxlLm9yZy8+IC4gZXg6bGFtcCBhIGV4OkxpZ2h0IC4=";

#[test]
fn semantic_descriptor_over_http() {
    if skip_unless(have_curl(), "curl").is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let http = Http { base: server.url() };
    let me = http.register("me");
    // Not Turtle: 4000, nothing created.
    let bad = json!({"m2m:smd": {"rn": "d", "dcrp": 5, "dsp": "ZXg6bGFtcCBleDppcw=="}});
    let a = http.send("POST", &me, "cse-in/me", Some((24, &bad.to_string())));
    assert_eq!(a.rsc, 4000, "{}", a.body);
    assert_eq!(http.get(&me, "cse-in/me/d").rsc, 4004);
    let good = json!({"m2m:smd": {"rn": "d", "dcrp": 5, "dsp": TURTLE_B64,
        "or": "http://example.org/onto"}});
    let a = http.create(&me, "cse-in/me", 24, &good.to_string());
    assert_eq!(a.body["m2m:smd"]["ty"], json!(24), "{}", a.body);
    let a = http.get(&me, "cse-in/me/d");
    assert_eq!(a.body["m2m:smd"]["dsp"], json!(TURTLE_B64), "{}", a.body);
    assert_eq!(a.body["m2m:smd"]["or"], json!("http://example.org/onto"));
    // Semantic discovery is not implemented: 5001, not an answer that ignores the query.
    let a = http.get(&me, "cse-in/me?fu=1&smf=ASK%20%7B%3Fs%20%3Fp%20%3Fo%7D");
    assert_eq!(a.rsc, 5001, "{}", a.body);
    // Discovery by type finds it.
    let a = http.get(&me, "cse-in/me?fu=1&ty=24");
    assert_eq!(a.body["m2m:uril"], json!(["cse-in/me/d"]), "{}", a.body);
}
