//! Child results over HTTP against the real binary, with curl: an AE cannot read other AEs
//! through the `<CSEBase>`'s children (issue 9 M1), and a result cut at the configured
//! `result_limit` carries `X-M2M-CTS`/`X-M2M-CTO`, which continue it (issue 9 M4).
use crate::common;

use common::*;

struct Http {
    base: String,
}

impl Http {
    fn send(&self, method: &str, from: &str, path: &str, ty_body: Option<(u8, &str)>) -> String {
        let url = format!("{}/{path}", self.base);
        let ty = ty_body.map(|(ty, body)| (format!("application/json;ty={ty}"), body));
        m2m_curl(
            &url,
            method,
            from,
            &[],
            ty.as_ref().map(|(c, b)| (c.as_str(), *b)),
        )
    }

    /// Registers an AE and returns its AE-ID.
    fn register(&self, rn: &str) -> String {
        let body = format!(
            r#"{{"m2m:ae": {{"rn": "{rn}", "api": "Nresults", "rr": false, "srv": ["3"]}}}}"#
        );
        let out = self.send("POST", "C", "cse-in", Some((2, &body)));
        assert!(out.contains("X-M2M-RSC: 2001"), "{out}");
        let aei = out.split("\"aei\":\"").nth(1).expect("aei");
        aei.split('"').next().expect("aei value").to_owned()
    }
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[test]
fn child_results_hold_only_what_the_originator_may_read_and_continue_when_cut() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("cse.toml");
    std::fs::write(&config, "[cse]\nresult_limit = 2\n").expect("config");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf8")],
    );
    let http = Http { base: server.url() };
    let me = http.register("me");
    let victim = http.register("victim");

    let direct = http.send("GET", &me, "cse-in/victim", None);
    assert!(direct.contains("X-M2M-RSC: 4103"), "{direct}");
    let children = http.send("GET", &me, "cse-in?rcn=8", None);
    assert!(children.contains("X-M2M-RSC: 2000"), "{children}");
    assert!(children.contains("\"rn\":\"me\""), "{children}");
    assert!(!children.contains("victim"), "{children}");
    assert!(!children.contains(&victim), "{children}");

    let cnt = http.send(
        "POST",
        &me,
        "cse-in/me",
        Some((3, r#"{"m2m:cnt": {"rn": "c"}}"#)),
    );
    assert!(cnt.contains("X-M2M-RSC: 2001"), "{cnt}");
    for i in 0..3 {
        let body = format!(r#"{{"m2m:cin": {{"rn": "i{i}", "con": "v"}}}}"#);
        let cin = http.send("POST", &me, "cse-in/me/c", Some((4, &body)));
        assert!(cin.contains("X-M2M-RSC: 2001"), "{cin}");
    }
    let first = http.send("GET", &me, "cse-in/me/c?rcn=6", None);
    assert_eq!(header(&first, "X-M2M-CTS"), Some("1"), "{first}");
    assert_eq!(header(&first, "X-M2M-CTO"), Some("2"), "{first}");
    assert!(
        first.contains("\"nm\":\"i0\"") && first.contains("\"nm\":\"i1\""),
        "{first}"
    );
    assert!(!first.contains("\"nm\":\"i2\""), "{first}");
    let rest = http.send("GET", &me, "cse-in/me/c?rcn=6&ofst=2", None);
    assert_eq!(header(&rest, "X-M2M-CTS"), None, "{rest}");
    assert_eq!(header(&rest, "X-M2M-CTO"), None, "{rest}");
    assert!(rest.contains("\"nm\":\"i2\""), "{rest}");
}
