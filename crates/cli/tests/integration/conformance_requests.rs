//! Conformance over HTTP against the real binary, with curl (issue 12, groups 1, 7 and 8):
//! the response type, the time parameters, the address forms and the creator attribute.
use crate::common;

use common::*;

struct Http {
    base: String,
}

impl Http {
    /// Sends a request with extra headers; returns the raw response (head and body).
    fn send(
        &self,
        method: &str,
        from: &str,
        path: &str,
        headers: &[&str],
        ty_body: Option<(u8, &str)>,
    ) -> String {
        let url = format!("{}/{path}", self.base);
        let ty = ty_body.map(|(ty, body)| (format!("application/json;ty={ty}"), body));
        m2m_curl(
            &url,
            method,
            from,
            headers,
            ty.as_ref().map(|(c, b)| (c.as_str(), *b)),
        )
    }

    /// The `X-M2M-RSC` of a GET.
    fn get(&self, from: &str, path: &str, headers: &[&str]) -> String {
        rsc(&self.send("GET", from, path, headers, None))
    }

    /// Registers an AE and returns its AE-ID.
    fn register(&self, rn: &str) -> String {
        let body = format!(
            r#"{{"m2m:ae": {{"rn": "{rn}", "api": "Nconformance", "rr": false, "srv": ["3"]}}}}"#
        );
        let out = self.send("POST", "C", "cse-in", &[], Some((2, &body)));
        assert_eq!(rsc(&out), "2001", "{out}");
        let aei = out.split("\"aei\":\"").nth(1).expect("aei");
        aei.split('"').next().expect("aei value").to_owned()
    }
}

fn rsc(response: &str) -> String {
    response
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| l.strip_prefix("X-M2M-RSC: "))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no X-M2M-RSC in {response}"))
}

fn start() -> Option<(tempfile::TempDir, Server, Http, String)> {
    if !have_curl() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let http = Http { base: server.url() };
    let me = http.register("me");
    Some((dir, server, http, me))
}

/// TS-0004 clause 7.3.2.2 and Table 6.3.4.2.6-1: blocking (3) and flex-blocking (4) are
/// served at once; non-blocking synchronous (1) and asynchronous (2) are accepted (1001,
/// 1002) and served through a `<request>` (`requests_nonblocking`); values outside the
/// table are 4000.
#[test]
fn response_types() {
    let Some((_dir, _server, http, me)) = start() else {
        return;
    };
    for (rt, want) in [
        ("3", "2000"),
        ("4", "2000"),
        ("1", "1001"),
        ("2", "1002"),
        ("0", "4000"),
        ("5", "4000"),
    ] {
        let path = format!("cse-in/me?rt={rt}");
        assert_eq!(http.get(&me, &path, &[]), want, "rt={rt}");
    }
}

/// TS-0004 clause 7.3.2.1, Table 6.3.3-1 (`m2m:absRelTimestamp`) and TS-0009 clauses
/// 6.4.13 to 6.4.15: `X-M2M-RET`, `X-M2M-RST` and `X-M2M-OET`, absolute or relative
/// (milliseconds from reception).
#[test]
fn time_parameters_absolute_and_relative() {
    let Some((_dir, _server, http, me)) = start() else {
        return;
    };
    let cases: &[(&[&str], &str)] = &[
        (&["X-M2M-RET: 60000"], "2000"),
        (&["X-M2M-RET: 20990101T000000"], "2000"),
        (&["X-M2M-RET: -1"], "4008"),
        (&["X-M2M-RET: 20200101T000000"], "4008"),
        (&["X-M2M-RET: soon"], "4000"),
        (&["X-M2M-RET: 9223372036854775807"], "4000"),
        (&["X-M2M-RST: 60000"], "2000"),
        (&["X-M2M-RST: -1"], "4008"),
        // The result cannot expire before the request does (Table 6.3.3-1).
        (&["X-M2M-RET: 60000", "X-M2M-RST: 30000"], "4000"),
        (&["X-M2M-RET: 30000", "X-M2M-RST: 60000"], "2000"),
        // An execution time already reached is honoured at once; a future one is held for
        // a non-blocking request only: a blocking one is 5001 (clause 7.3.2.1).
        (&["X-M2M-OET: -1000"], "2000"),
        (&["X-M2M-OET: 20200101T000000"], "2000"),
        (&["X-M2M-OET: 3600000"], "5001"),
    ];
    for (headers, want) in cases {
        assert_eq!(&http.get(&me, "cse-in/me", headers), want, "{headers:?}");
    }
    let out = http.send(
        "POST",
        &me,
        "cse-in/me",
        &["X-M2M-OET: 3600000"],
        Some((3, r#"{"m2m:cnt": {"rn": "later"}}"#)),
    );
    assert_eq!(rsc(&out), "5001", "{out}");
    assert_eq!(http.get(&me, "cse-in/me/later", &[]), "4004");
}

/// TS-0004 clause 6.2.4 (resource identifier ABNF) and 7.3.2.6 (an IN-CSE with no matching
/// `<remoteCSE>` answers NOT_FOUND).
#[test]
fn address_forms() {
    let Some((_dir, _server, http, me)) = start() else {
        return;
    };
    let cases = [
        ("cse-in/me", "2000"),
        ("~/id-in/cse-in/me", "2000"),
        ("_/secure-cse.example/id-in/cse-in/me", "2000"),
        ("~/id-in/-/me", "2000"),
        // A bare CSE-ID names the CSE, not its <CSEBase>.
        ("~/id-in", "4004"),
        ("_/secure-cse.example/id-in", "4004"),
        // Every resource name is non-empty: no trailing slash.
        ("cse-in/", "4000"),
        ("cse-in/me/", "4000"),
        // Unknown SP-ID or CSE-ID: nothing to forward to.
        ("_/other.example/id-in/cse-in", "4004"),
        ("~/id-other/cse-in", "4004"),
    ];
    for (path, want) in cases {
        assert_eq!(http.get(&me, path, &[]), want, "{path}");
    }
}

/// TS-0004 clause 7.3.3.3 and TS-0001 Table 9.6.2.0-2: `<accessControlPolicy>` has no
/// creator, so `cr` in its CREATE is 4000 and none is set without it.
#[test]
fn access_control_policies_have_no_creator() {
    let Some((_dir, _server, http, me)) = start() else {
        return;
    };
    let rules = format!(
        r#""pv":{{"acr":[{{"acor":["{me}"],"acop":63}}]}},"pvs":{{"acr":[{{"acor":["{me}"],"acop":63}}]}}"#
    );
    let with_cr = format!(r#"{{"m2m:acp":{{"rn":"p1","cr":null,{rules}}}}}"#);
    let out = http.send("POST", &me, "cse-in/me", &[], Some((1, &with_cr)));
    assert_eq!(rsc(&out), "4000", "{out}");
    let plain = format!(r#"{{"m2m:acp":{{"rn":"p2",{rules}}}}}"#);
    let out = http.send("POST", &me, "cse-in/me", &[], Some((1, &plain)));
    assert_eq!(rsc(&out), "2001", "{out}");
    assert!(!out.contains("\"cr\""), "{out}");
    let read = http.send("GET", &me, "cse-in/me/p2", &[], None);
    assert_eq!(rsc(&read), "2000", "{read}");
    assert!(!read.contains("\"cr\""), "{read}");
}
