//! Dynamic authorization end to end (TS-0003 clause 7.3): the real `cse` binary, the
//! stand-in DAS (`scripts/das.py`) as a real peer, and curl as the client.
//!
//! * consultation: a DAS grant admits what the policies refuse and is kept for its lifetime;
//!   a DAS that denies, or that is down, leaves the refusal (fail closed);
//! * tokens in the `Authorization` header: a token issued by a configured `[[token_issuer]]`
//!   grants exactly its permissions, to its holder only, and every bad token is refused;
//! * discovery and NOTIFY count tokens like the other operations.
use crate::common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DAS_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/das.py");
const ISSUER: &str = "das-test";

fn write_secret(path: &Path, secret: &str) {
    std::fs::write(path, secret).expect("write secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// The stand-in DAS, its consultations logged to a file (each line is written before the
/// DAS answers, so after a request returns its consultation is in the file). Killed on drop.
struct Das {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Das {
    fn start(dir: &Path, policy: &Value) -> Self {
        let policy_file = dir.join("policy.json");
        std::fs::write(&policy_file, policy.to_string()).expect("policy");
        let log = dir.join("das.log");
        let out = std::fs::File::create(&log).expect("das log");
        let child = Command::new("python3")
            .arg(DAS_SCRIPT)
            .arg("serve")
            .arg(&policy_file)
            .stdout(Stdio::from(out))
            .stderr(Stdio::null())
            .spawn()
            .expect("start the DAS");
        let mut das = Self {
            child: Some(child),
            port: 0,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while das.port == 0 {
            let text = std::fs::read_to_string(&das.log).unwrap_or_default();
            if let Some(p) = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("listening "))
            {
                das.port = p.trim().parse().expect("port");
            } else {
                assert!(Instant::now() < deadline, "the DAS did not start: {text:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        das
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/das", self.port)
    }

    /// Every consultation so far, as the DAS logged it.
    fn consultations(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Das {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The CSE with one trusted HS256 issuer, an owner AE with a container `data` (closed to
/// others by the default policy), and two more AEs.
struct Setup {
    server: Server,
    dir: tempfile::TempDir,
    secret: PathBuf,
    /// The container's resource ID.
    data: String,
}

const OWNER: &str = "Cowner";
const READER: &str = "Creader";
const OTHER: &str = "Cother";

impl Setup {
    fn start() -> Self {
        Self::start_in(tempfile::tempdir().expect("tmp"), &[], "")
    }

    /// With `extra` appended to the CSE's configuration (another `[[token_issuer]]`).
    fn start_with(extra: &str) -> Self {
        Self::start_in(tempfile::tempdir().expect("tmp"), &[], extra)
    }

    /// The CSE with `scripts/das.py` serving `policy` (started first) as the one DAS it may
    /// consult (`das_urls`).
    fn with_das(policy: &Value) -> (Self, Das) {
        let dir = tempfile::tempdir().expect("tmp");
        write_secret(
            &dir.path().join("das.secret"),
            "a-shared-secret-of-at-least-32-bytes-for-tests",
        );
        let das = Das::start(dir.path(), policy);
        let s = Self::start_in(dir, &[das.url()], "");
        (s, das)
    }

    fn start_in(dir: tempfile::TempDir, das_urls: &[String], extra: &str) -> Self {
        let secret = dir.path().join("das.secret");
        write_secret(&secret, "a-shared-secret-of-at-least-32-bytes-for-tests");
        let config = dir.path().join("cse.toml");
        std::fs::write(
            &config,
            format!(
                "[dynamic_authorization]\ntimeout_ms = 2000\ndas_urls = {}\n\n\
                 [[token_issuer]]\nname = \"{ISSUER}\"\nsecret_file = \"{}\"\n{extra}",
                json!(das_urls),
                secret.display()
            ),
        )
        .expect("config");
        let server = Server::start_with(
            &dir.path().join("data"),
            &["--config", config.to_str().expect("utf-8 path")],
        );
        let mut s = Self {
            server,
            dir,
            secret,
            data: String::new(),
        };
        for ae in [OWNER, READER, OTHER] {
            let body =
                json!({"m2m:ae": {"rn": &ae[1..], "api": "Ntest", "rr": false, "srv": ["3"]}});
            let (rsc, _) = s.send("POST", "/cse-in", ae, &[ty(2)], Some(&body));
            assert_eq!(rsc, 2001, "{}", s.server.log());
        }
        let (rsc, cnt) = s.send(
            "POST",
            "/cse-in/owner",
            OWNER,
            &[ty(3)],
            Some(&json!({"m2m:cnt": {"rn": "data"}})),
        );
        assert_eq!(rsc, 2001);
        s.data = cnt["m2m:cnt"]["ri"].as_str().expect("ri").to_owned();
        s
    }

    /// One request with curl: the X-M2M-RSC and the JSON body (null when none).
    fn send(
        &self,
        method: &str,
        path: &str,
        origin: &str,
        headers: &[String],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.server.url());
        let origin = format!("X-M2M-Origin: {origin}");
        let body = body.map(Value::to_string);
        let mut args = vec![
            "-X",
            method,
            url.as_str(),
            "-H",
            origin.as_str(),
            "-H",
            "X-M2M-RI: req",
            "-H",
            "X-M2M-RVI: 3",
        ];
        for h in headers {
            args.extend(["-H", h.as_str()]);
        }
        if let Some(b) = &body {
            args.extend(["-d", b.as_str()]);
        }
        let out = curl(&args);
        let rsc = out
            .lines()
            .find_map(|l| l.strip_prefix("X-M2M-RSC: "))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or_else(|| panic!("no X-M2M-RSC in {out:?}"));
        let json = out
            .split("\r\n\r\n")
            .nth(1)
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (rsc, json)
    }

    /// GET, PUT (a label) or DELETE of the container as `origin`, with `token` if any.
    fn rsc(&self, method: &str, origin: &str, token: Option<&str>) -> u16 {
        let mut headers: Vec<String> = token
            .map(|t| format!("Authorization: {t}"))
            .into_iter()
            .collect();
        let body = (method == "PUT").then(|| {
            headers.push("Content-Type: application/json".into());
            json!({"m2m:cnt": {"lbl": ["changed"]}})
        });
        self.send(
            method,
            "/cse-in/owner/data",
            origin,
            &headers,
            body.as_ref(),
        )
        .0
    }

    /// Links the container to a new `<dac>` whose `dap` is `das`.
    fn link(&self, das: &str) {
        let dac = json!({"m2m:dac": {"rn": "das", "dae": true, "dap": [das], "dal": 600000}});
        let (rsc, dac) = self.send("POST", "/cse-in/owner", OWNER, &[ty(34)], Some(&dac));
        assert_eq!(rsc, 2001, "{dac}");
        let daci = json!({"m2m:cnt": {"daci": [dac["m2m:dac"]["ri"]]}});
        let (rsc, _) = self.send(
            "PUT",
            "/cse-in/owner/data",
            OWNER,
            &["Content-Type: application/json".into()],
            Some(&daci),
        );
        assert_eq!(rsc, 2004);
    }

    /// The container as its owner sees it: still there, and not changed.
    fn assert_unchanged(&self) {
        let (rsc, cnt) = self.send("GET", "/cse-in/owner/data", OWNER, &[], None);
        assert_eq!(rsc, 2000);
        assert!(cnt["m2m:cnt"].get("lbl").is_none(), "{cnt}");
    }

    /// A token from the stand-in DAS's `token` command.
    fn token(&self, holder: &str, ops: &str, secret: &Path, lifetime: i64, ris: &[&str]) -> String {
        let out = Command::new("python3")
            .arg(DAS_SCRIPT)
            .args(["token", "--issuer", ISSUER, "--secret-file"])
            .arg(secret)
            .args(["--holder", holder, "--ops", ops, "--lifetime"])
            .arg(lifetime.to_string())
            .arg("--ris")
            .args(ris)
            .output()
            .expect("run das.py token");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }
}

fn ty(n: u32) -> String {
    format!("Content-Type: application/json;ty={n}")
}

fn read_rule(originator: &str) -> Value {
    json!({"originator": originator, "target": "/id-in/cnt*", "operations": ["RETRIEVE"],
           "lifetime_ms": 600000})
}

#[test]
fn a_das_grant_admits_the_request_and_is_kept_for_its_lifetime() {
    if !(have_python3() && have_curl()) {
        return;
    }
    let (s, das) = Setup::with_das(&json!({"rules": [read_rule(READER)]}));
    assert_eq!(s.rsc("GET", READER, None), 4103, "refused before the link");
    s.link(&das.url());
    // The owner is granted by the policies: the DAS is not asked.
    assert_eq!(s.rsc("GET", OWNER, None), 2000);
    assert!(das.consultations().is_empty());
    assert_eq!(s.rsc("GET", READER, None), 2000, "{}", s.server.log());
    let asked = das.consultations();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["from"], "/id-in");
    assert_eq!(
        asked[0]["or"],
        format!("//secure-cse.example/id-in/{READER}")
    );
    assert_eq!(asked[0]["trid"], format!("/id-in/{}", s.data));
    assert_eq!(asked[0]["op"], "RETRIEVE");
    assert_eq!(asked[0]["granted"], true);
    // Within the grant's lifetime: served from the CSE's cache, the DAS is not asked again.
    assert_eq!(s.rsc("GET", READER, None), 2000);
    assert_eq!(das.consultations().len(), 1);
    // The grant is for RETRIEVE: a DELETE is asked about, refused, and nothing is deleted.
    assert_eq!(s.rsc("DELETE", READER, None), 4103);
    let asked = das.consultations();
    assert_eq!(asked.len(), 2);
    assert_eq!(
        (&asked[1]["op"], &asked[1]["granted"]),
        (&json!("DELETE"), &json!(false))
    );
    // Another originator is not covered by the reader's grant.
    assert_eq!(s.rsc("GET", OTHER, None), 4103);
    assert_eq!(das.consultations().len(), 3);
    s.assert_unchanged();
}

#[test]
fn a_das_that_denies_leaves_the_refusal() {
    if !(have_python3() && have_curl()) {
        return;
    }
    let mut deny = read_rule(READER);
    deny["deny"] = json!(true);
    let (s, das) = Setup::with_das(&json!({"rules": [deny]}));
    s.link(&das.url());
    assert_eq!(s.rsc("GET", READER, None), 4103);
    let asked = das.consultations();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (&asked[0]["rule"], &asked[0]["granted"]),
        (&json!(1), &json!(false))
    );
    // Nothing is cached from a denial: the next request asks again.
    assert_eq!(s.rsc("GET", READER, None), 4103);
    assert_eq!(das.consultations().len(), 2);
    assert!(s.server.log().contains("DAS granted nothing"));
}

#[test]
fn a_das_that_is_down_means_refused_and_nothing_changes() {
    if !(have_python3() && have_curl()) {
        return;
    }
    let all = json!({"originator": "*", "operations": ["RETRIEVE", "UPDATE", "DELETE"]});
    let (s, mut das) = Setup::with_das(&json!({"rules": [all]}));
    s.link(&das.url());
    das.stop();
    for method in ["GET", "PUT", "DELETE"] {
        assert_eq!(s.rsc(method, READER, None), 4103, "{method}");
    }
    assert!(das.consultations().is_empty());
    assert!(s
        .server
        .log()
        .contains("dynamic authorization: no usable answer; refusing"));
    s.assert_unchanged();
}

#[test]
fn a_das_may_answer_with_a_token_instead_of_privileges() {
    if !(have_python3() && have_curl()) {
        return;
    }
    let mut rule = read_rule(READER);
    rule["token"] = json!(true);
    rule["privileges"] = json!(false);
    let policy = json!({"issuer": {"name": ISSUER, "secret_file": "das.secret"}, "rules": [rule]});
    let (s, das) = Setup::with_das(&policy);
    s.link(&das.url());
    assert_eq!(s.rsc("GET", READER, None), 2000, "{}", s.server.log());
    let asked = das.consultations();
    assert_eq!((asked.len(), &asked[0]["tokens"]), (1, &json!(1)));
    // The token's permissions are RETRIEVE only.
    assert_eq!(s.rsc("DELETE", READER, None), 4103);
    s.assert_unchanged();
}

#[test]
fn a_das_that_is_not_configured_is_refused_and_never_asked() {
    if !(have_python3() && have_curl()) {
        return;
    }
    // A running DAS that the configuration does not list (nothing is listed here).
    let s = Setup::start();
    let all = json!({"originator": "*", "operations": ["RETRIEVE", "UPDATE", "DELETE"]});
    let das = Das::start(s.dir.path(), &json!({"rules": [all]}));
    for dap in [
        das.url(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        let dac = json!({"m2m:dac": {"rn": "das", "dae": true, "dap": [dap]}});
        let (rsc, body) = s.send("POST", "/cse-in/owner", OWNER, &[ty(34)], Some(&dac));
        assert_eq!(rsc, 4000, "{body}");
    }
    assert_eq!(s.rsc("GET", READER, None), 4103);
    assert!(das.consultations().is_empty());
    assert!(s.server.log().contains("dap is not a configured DAS"));
}

#[test]
fn a_token_grants_exactly_its_permissions_to_its_holder() {
    if !(have_python3() && have_curl()) {
        return;
    }
    let s = Setup::start();
    // No <dac> here: the token alone decides.
    let token = s.token(READER, "RETRIEVE", &s.secret, 300, &[]);
    assert_eq!(
        s.rsc("GET", READER, None),
        4103,
        "refused without the token"
    );
    assert_eq!(
        s.rsc("GET", READER, Some(&token)),
        2000,
        "{}",
        s.server.log()
    );
    assert_eq!(s.rsc("PUT", READER, Some(&token)), 4103);
    assert_eq!(s.rsc("DELETE", READER, Some(&token)), 4103);
    // The same token presented by another originator.
    assert_eq!(s.rsc("GET", OTHER, Some(&token)), 4103);
    // Scoped to another resource by ris: nothing here.
    let elsewhere = s.token(READER, "RETRIEVE", &s.secret, 300, &["cnt-elsewhere"]);
    assert_eq!(s.rsc("GET", READER, Some(&elsewhere)), 4103);
    let expired = s.token(READER, "RETRIEVE", &s.secret, -60, &[]);
    assert_eq!(s.rsc("GET", READER, Some(&expired)), 4103);
    let wrong_secret = s.dir.path().join("wrong.secret");
    write_secret(&wrong_secret, "not-the-shared-secret-but-just-as-long-!!");
    let forged = s.token(READER, "RETRIEVE", &wrong_secret, 300, &[]);
    assert_eq!(s.rsc("GET", READER, Some(&forged)), 4103);
    assert_eq!(s.rsc("GET", READER, Some("not-a-token")), 4000);
    // A bad token refuses even a request the policies grant.
    assert_eq!(s.rsc("GET", OWNER, Some(&forged)), 4103);
    let log = s.server.log();
    for reason in [
        "is not the originator",
        "token expired",
        "token signature does not verify",
        "malformed token",
    ] {
        assert!(log.contains(reason), "{reason} in {log}");
    }
    s.assert_unchanged();
}

#[test]
fn discovery_counts_tokens_for_every_result() {
    if !(have_python3() && have_curl()) {
        return;
    }
    let s = Setup::start();
    let discover = |token: Option<&str>| {
        let headers: Vec<String> = token
            .map(|t| format!("Authorization: {t}"))
            .into_iter()
            .collect();
        s.send("GET", "/cse-in/owner?fu=1&ty=3", READER, &headers, None)
    };
    assert_eq!(discover(None).0, 4103);
    // A token for the AE and everything below it: the container is found.
    let all = s.token(READER, "RETRIEVE,DISCOVERY", &s.secret, 300, &[]);
    let (rsc, found) = discover(Some(&all));
    assert_eq!(rsc, 2000);
    assert_eq!(found, json!({"m2m:uril": ["cse-in/owner/data"]}));
    // A token for the AE only: discovery runs, the container is filtered out.
    let ae_only = s.token(READER, "RETRIEVE,DISCOVERY", &s.secret, 300, &[OWNER]);
    let (rsc, found) = discover(Some(&ae_only));
    assert_eq!(rsc, 2000);
    assert_eq!(found, json!({"m2m:uril": []}));
}

#[test]
fn notify_counts_tokens() {
    if !(have_python3() && have_curl()) {
        return;
    }
    let s = Setup::start();
    let notify = |token: Option<&str>| {
        let mut headers = vec!["Content-Type: application/json".to_owned()];
        headers.extend(token.map(|t| format!("Authorization: {t}")));
        let body = json!({"m2m:sgn": {"sur": "/id-in/sub-x", "nev": {"rep": {}, "net": 3}}});
        s.send("POST", "/cse-in", READER, &headers, Some(&body)).0
    };
    assert_eq!(notify(None), 4103, "{}", s.server.log());
    let read_only = s.token(READER, "RETRIEVE", &s.secret, 300, &[]);
    assert_eq!(notify(Some(&read_only)), 4103);
    let may_notify = s.token(READER, "NOTIFY", &s.secret, 300, &[]);
    assert_eq!(notify(Some(&may_notify)), 2000, "{}", s.server.log());
}

/// The commands docs/security.md gives for an ES256 token ("An ES256 token with openssl"),
/// run as written with bash and openssl: the CSE trusting the public key they made admits the
/// token's RETRIEVE and nothing more.
#[test]
fn the_documented_es256_token_is_accepted() {
    if !(have_python3() && have_curl()) {
        return;
    }
    if !have_openssl() {
        return;
    }
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/security.md"
    ))
    .expect("docs/security.md");
    let block = docs
        .split("**An ES256 token with openssl.**")
        .nth(1)
        .and_then(|rest| rest.split("```sh").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the documented ES256 commands");
    let work = tempfile::tempdir().expect("tmp");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{block}\nprintf '%s' \"$T\""))
        .current_dir(work.path())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).expect("utf-8");
    let s = Setup::start_with(&format!(
        "\n[[token_issuer]]\nname = \"das-es\"\npublic_key = \"{}\"\n",
        work.path().join("das-es256.pub.pem").display()
    ));
    assert_eq!(s.rsc("GET", READER, None), 4103);
    assert_eq!(
        s.rsc("GET", READER, Some(&token)),
        2000,
        "{token}\n{}",
        s.server.log()
    );
    assert_eq!(s.rsc("PUT", READER, Some(&token)), 4103);
    assert_eq!(s.rsc("GET", OTHER, Some(&token)), 4103);
    s.assert_unchanged();
}
