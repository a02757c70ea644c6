//! Notifications to `https://` targets, end to end: the real `cse` binary, a PKI made by
//! `scripts/make-test-pki.sh`, and a notification target in Python (`ssl` module) that asks
//! for the CSE's client certificate.
//! A target whose scheme no binding serves (`coap://`) is refused and logged, never a panic.
use crate::common;

use common::*;
use model::{Operation, Request, ResourceType, ResponseStatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The Python target: its port and one JSON value per request it received.
struct Target {
    child: Child,
    port: u16,
    received: mpsc::Receiver<Value>,
}

impl Target {
    fn start(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/https_target.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(cert)
            .arg(key)
            .args(client_ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the python target");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        let (tx, received) = mpsc::channel();
        std::thread::spawn(move || forward(lines, tx));
        Self {
            child,
            port,
            received,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/notify", self.port)
    }

    fn next(&self) -> Value {
        self.received
            .recv_timeout(Duration::from_secs(20))
            .expect("a request reaches the target")
    }
}

fn forward(lines: std::io::Lines<BufReader<ChildStdout>>, tx: mpsc::Sender<Value>) {
    for line in lines.map_while(Result::ok) {
        if let Ok(v) = serde_json::from_str(&line) {
            if tx.send(v).is_err() {
                return;
            }
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_cse(dir: &Path, pki: &Path, client_cert: bool) -> Server {
    let file = |name: &str| pki.join(name).to_string_lossy().into_owned();
    let mut config = format!(
        "[notifications]\ntimeout_ms = 5000\nattempts = 2\ntrust_anchors = [\"{}\"]\n",
        file("ca.pem")
    );
    if client_cert {
        config += &format!(
            "certificate = \"{}\"\nprivate_key = \"{}\"\n",
            file("cse.pem"),
            file("cse.key")
        );
    }
    let path = dir.join("cse.toml");
    std::fs::write(&path, config).expect("config");
    Server::start_with(
        &dir.join("data"),
        &["--config", path.to_str().expect("utf8")],
    )
}

async fn create(server: &Server, to: &str, ty: ResourceType, pc: Value) -> ResponseStatusCode {
    let mut req = Request::new(Operation::Create, to, Some("CAdmin".into()));
    req.ty = Some(ty);
    req.pc = Some(pc);
    server.client().send(&req).await.expect("response").rsc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_an_https_target_with_mutual_authentication() {
    if !(have_openssl() && have_python3()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    let target = Target::start(
        &pki.join("target.pem"),
        &pki.join("target.key"),
        Some(&pki.join("ca.pem")),
    );
    let server = start_cse(dir.path(), &pki, true);

    let cnt = json!({"m2m:cnt": {"rn": "meter"}});
    assert_eq!(
        create(&server, "cse-in", ResourceType::Container, cnt).await,
        ResponseStatusCode::Created
    );
    let sub = json!({"m2m:sub": {"rn": "s", "nu": [target.url()], "enc": {"net": [3]}}});
    assert_eq!(
        create(&server, "cse-in/meter", ResourceType::Subscription, sub).await,
        ResponseStatusCode::Created,
        "{}",
        server.log()
    );
    // The verification request came over TLS, from the CSE's certificate.
    let verification = target.next();
    assert_eq!(verification["peer_cn"], "id-in");
    assert_eq!(verification["origin"], "/id-in");
    assert_eq!(verification["body"]["m2m:sgn"]["vrq"], true);

    let cin = json!({"m2m:cin": {"con": "42 kWh"}});
    assert_eq!(
        create(&server, "cse-in/meter", ResourceType::ContentInstance, cin).await,
        ResponseStatusCode::Created
    );
    let notification = target.next();
    assert_eq!(notification["path"], "/notify");
    assert_eq!(notification["peer_cn"], "id-in");
    assert_eq!(
        notification["body"]["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"],
        "42 kWh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_target_the_trust_anchors_do_not_vouch_for_is_refused() {
    if !(have_openssl() && have_python3()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    // A second, unrelated PKI: its target certificate is not from the CSE's CA.
    let other = make_test_pki(&dir.path().join("other"));
    let target = Target::start(&other.join("target.pem"), &other.join("target.key"), None);
    let server = start_cse(dir.path(), &pki, false);

    assert_eq!(
        create(
            &server,
            "cse-in",
            ResourceType::Container,
            json!({"m2m:cnt": {"rn": "meter"}})
        )
        .await,
        ResponseStatusCode::Created
    );
    let sub = json!({"m2m:sub": {"rn": "s", "nu": [target.url()]}});
    assert_eq!(
        create(&server, "cse-in/meter", ResourceType::Subscription, sub).await,
        ResponseStatusCode::SubscriptionVerificationInitiationFailed
    );
    assert!(
        target.received.try_recv().is_err(),
        "no request got through"
    );
    // Nothing was created.
    let get = Request::new(Operation::Retrieve, "cse-in/meter/s", Some("CAdmin".into()));
    assert_eq!(
        server.client().send(&get).await.expect("response").rsc,
        ResponseStatusCode::NotFound
    );
}

#[test]
fn unreadable_notification_tls_files_stop_the_cse_at_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("cse.toml");
    std::fs::write(
        &path,
        "[notifications]\ntrust_anchors = [\"/nonexistent/ca.pem\"]\n",
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_cse"))
        .args(["--http", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run cse");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[notifications] TLS"), "{err}");
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

/// Per-target pseudonyms (seed 6.4): two notification targets subscribed to the same data
/// see the same AE under two unrelated aliases, each stable; only the admin maps an alias
/// back, naming the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_notification_target_sees_its_own_alias() {
    if !(have_openssl() && have_python3()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    let one = Target::start(&pki.join("target.pem"), &pki.join("target.key"), None);
    let two = Target::start(&pki.join("target.pem"), &pki.join("target.key"), None);
    let config = format!(
        "[notifications]\ntrust_anchors = [\"{}\"]\n[privacy]\nper_target_pseudonyms = true\n",
        pki.join("ca.pem").display()
    );
    let path = dir.path().join("cse.toml");
    std::fs::write(&path, config).expect("config");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", path.to_str().expect("utf8")],
    );
    let send = |fr: &str, op: Operation, to: &str, ty: Option<ResourceType>, pc: Option<Value>| {
        let mut req = Request::new(op, to, Some(fr.to_owned()));
        req.ty = ty;
        req.pc = pc;
        let client = server.client();
        async move { client.send(&req).await.expect("response") }
    };
    let ae = json!({"m2m:ae": {"rn": "meter", "api": "Nmeter", "rr": false, "srv": ["3"]}});
    let reg = send(
        "C",
        Operation::Create,
        "cse-in",
        Some(ResourceType::Ae),
        Some(ae),
    )
    .await;
    assert_eq!(reg.rsc, ResponseStatusCode::Created);
    let ae_id = reg
        .pc
        .as_ref()
        .and_then(|pc| pc["m2m:ae"]["aei"].as_str())
        .expect("aei")
        .to_owned();
    let cnt = json!({"m2m:cnt": {"rn": "kwh"}});
    let r = send(
        &ae_id,
        Operation::Create,
        "cse-in/meter",
        Some(ResourceType::Container),
        Some(cnt),
    )
    .await;
    assert_eq!(r.rsc, ResponseStatusCode::Created);
    for (name, target) in [("s1", &one), ("s2", &two)] {
        let sub = json!({"m2m:sub": {"rn": name, "nu": [target.url()], "enc": {"net": [3], "chty": [4]}}});
        let r = send(
            &ae_id,
            Operation::Create,
            "cse-in/meter/kwh",
            Some(ResourceType::Subscription),
            Some(sub),
        )
        .await;
        assert_eq!(r.rsc, ResponseStatusCode::Created, "{}", server.log());
    }
    // Verification requests already carry each target's alias of the creator.
    let v1 = one.next()["body"]["m2m:sgn"]["cr"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let v2 = two.next()["body"]["m2m:sgn"]["cr"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for _ in 0..2 {
        // `cr` asked for (TS-0004 clause 7.3.3.5), so the representation names the AE.
        let cin = json!({"m2m:cin": {"con": "7", "cr": null}});
        let r = send(
            &ae_id,
            Operation::Create,
            "cse-in/meter/kwh",
            Some(ResourceType::ContentInstance),
            Some(cin),
        )
        .await;
        assert_eq!(r.rsc, ResponseStatusCode::Created);
    }
    let seen = |t: &Target| {
        (0..2)
            .map(|_| {
                t.next()["body"]["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["cr"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let (a1, a2) = (seen(&one), seen(&two));
    assert!(a1[0].starts_with('C') && a1[0].len() > 10, "{a1:?}");
    assert_eq!(a1[0], a1[1], "stable for one target");
    assert_eq!(a2[0], a2[1], "stable for one target");
    assert_ne!(a1[0], a2[0], "unrelated between targets");
    assert_ne!(a1[0], ae_id);
    assert_ne!(a2[0], ae_id);
    assert_eq!((v1.as_str(), v2.as_str()), (a1[0].as_str(), a2[0].as_str()));

    // The admin maps an alias back, given the target it was shown to.
    let resolve = |alias: &str, target: &str| {
        Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args([
                "--url",
                &server.url(),
                "privacy",
                "resolve",
                alias,
                "--purpose",
                "billing dispute",
                "--target",
                target,
            ])
            .output()
            .expect("m2m")
    };
    let out = resolve(&a1[0], &one.url());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&ae_id), "{text}");
    // The other target's alias means nothing for this target.
    assert!(!resolve(&a2[0], &one.url()).status.success());
}

/// One request over the certificate framework with curl, as `who` (its certificate and key
/// in the PKI), to the TLS listener on `port`; returns the response status code.
#[allow(clippy::too_many_arguments)]
fn send_as(
    pki: &Path,
    port: &str,
    who: &str,
    method: &str,
    path: &str,
    origin: &str,
    ty: Option<u8>,
    body: &Value,
) -> u16 {
    let file = |name: &str| pki.join(name).to_string_lossy().into_owned();
    let url = format!("https://localhost:{port}{path}");
    let (cert, key, ca) = (
        file(&format!("{who}.pem")),
        file(&format!("{who}.key")),
        file("ca.pem"),
    );
    let origin = format!("X-M2M-Origin: {origin}");
    let content = format!(
        "Content-Type: application/json{}",
        ty.map(|t| format!(";ty={t}")).unwrap_or_default()
    );
    let body = body.to_string();
    let mut args = vec![
        "-X",
        method,
        "--cacert",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        &url,
        "-H",
        "X-M2M-RI: t",
        "-H",
        "X-M2M-RVI: 3",
        "-H",
        &origin,
    ];
    if method == "POST" {
        args.extend(["-H", &content, "-d", &body]);
    }
    let out = curl(&args);
    out.lines()
        .find_map(|l| l.strip_prefix("X-M2M-RSC: "))
        .and_then(|c| c.trim().parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no X-M2M-RSC in {out:?}"))
}

/// The review's proof (issue 9 M2), end to end: an AE with a certificate subscribes over the
/// certificate framework; once the admin revokes that certificate, the AE's endpoint gets
/// nothing more, while a sentinel subscription to the same endpoint (one queue, delivered in
/// order) keeps being notified; the revoked AE's subscription is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_whose_certificate_is_revoked_gets_nothing_more() {
    if !(have_openssl() && have_python3() && have_curl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    let target = Target::start(&pki.join("target.pem"), &pki.join("target.key"), None);
    let path = secure_config(dir.path(), &pki);
    let server = Server::start_listeners(
        &dir.path().join("data"),
        &["--config", path.to_str().expect("utf8")],
        2,
    );
    let port = server.urls[1]
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let send = |who: &str, method: &str, path: &str, origin: &str, ty: Option<u8>, body: &Value| {
        send_as(&pki, &port, who, method, path, origin, ty, body)
    };
    let ae = json!({"m2m:ae": {"rn": "ae1", "api": "Nmeter", "rr": false, "srv": ["3"]}});
    assert_eq!(send("ae1", "POST", "/cse-in", "C", Some(2), &ae), 2001);
    let cnt = json!({"m2m:cnt": {"rn": "meter"}});
    assert_eq!(
        send("ae1", "POST", "/cse-in/ae1", "Cae1", Some(3), &cnt),
        2001
    );
    // Told about new content instances only (not about each other's creation).
    let sub = |rn: &str| json!({"m2m:sub": {"rn": rn, "nu": [target.url()], "enc": {"net": [3], "chty": [4]}}});
    let meter = "/cse-in/ae1/meter";
    assert_eq!(
        send("ae1", "POST", meter, "Cae1", Some(23), &sub("watch")),
        2001
    );
    assert_eq!(target.next()["body"]["m2m:sgn"]["vrq"], true);
    assert_eq!(
        send("admin", "POST", meter, "CAdmin", Some(23), &sub("sentinel")),
        2001
    );
    assert_eq!(target.next()["body"]["m2m:sgn"]["vrq"], true);
    let cin = |con: &str| json!({"m2m:cin": {"con": con}});
    // Before: both subscriptions are told.
    assert_eq!(
        send("admin", "POST", meter, "CAdmin", Some(4), &cin("before")),
        2001
    );
    let mut told: Vec<String> = (0..2)
        .map(|_| {
            target.next()["body"]["m2m:sgn"]["sur"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    told.sort();
    assert_eq!(
        told,
        ["cse-in/ae1/meter/sentinel", "cse-in/ae1/meter/watch"]
    );
    // The admin revokes the AE's certificate (Credential-ID: 33- and its TBS digest).
    let fingerprint = certificate_digest(&pki.join("ae1.pem"));
    let revoke = format!("/.admin/revoke?credential=33-{fingerprint}&reason=stolen");
    assert_eq!(
        send("admin", "POST", &revoke, "CAdmin", None, &Value::Null),
        2000
    );
    // After: the sentinel's notifications arrive, the revoked AE's never do.
    for con in ["after", "later"] {
        assert_eq!(
            send("admin", "POST", meter, "CAdmin", Some(4), &cin(con)),
            2001
        );
    }
    let mut after = Vec::new();
    loop {
        let got = target.next();
        let sgn = got["body"]["m2m:sgn"].clone();
        after.push(sgn.clone());
        if sgn["sur"] == "cse-in/ae1/meter/sentinel"
            && sgn["nev"]["rep"]["m2m:cin"]["con"] == "later"
        {
            break;
        }
    }
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after
            .iter()
            .all(|s| s["sur"] == "cse-in/ae1/meter/sentinel"),
        "{after:?}"
    );
    assert_eq!(
        send(
            "admin",
            "GET",
            &format!("{meter}/watch"),
            "CAdmin",
            None,
            &Value::Null
        ),
        4004
    );
    server.log_with("subscription deleted: the credential it was made with is revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_no_binding_serves_is_refused_and_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"));
    let cnt = json!({"m2m:cnt": {"rn": "c"}});
    let r = create(&server, "cse-in", ResourceType::Container, cnt).await;
    assert_eq!(r, ResponseStatusCode::Created);
    // No binding sends to coap:// yet: the verification request cannot leave.
    let sub = json!({"m2m:sub": {"nu": ["coap://127.0.0.1:5683/n"]}});
    let r = create(&server, "cse-in/c", ResourceType::Subscription, sub).await;
    assert_eq!(
        r,
        ResponseStatusCode::SubscriptionVerificationInitiationFailed
    );
    let log = server.log_with("not sent: no binding for the target");
    assert!(log.contains("no binding sends to coap:// targets"), "{log}");
}

/// The secure configuration of `scripts/make-test-pki.sh` on an ephemeral port, trusting the
/// PKI's CA for notification targets; returns its path.
fn secure_config(dir: &Path, pki: &Path) -> std::path::PathBuf {
    let config = std::fs::read_to_string(pki.join("cse.toml"))
        .expect("cse.toml")
        .replace("127.0.0.1:8443", "127.0.0.1:0")
        .replace(
            "[[tls]]",
            &format!(
                "[notifications]\ntrust_anchors = [\"{}\"]\n\n[[tls]]",
                pki.join("ca.pem").display()
            ),
        );
    let path = dir.join("secure.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// Issue 9 M2 across a restart: which credential made a subscription is written with the
/// subscription, so a revocation after a `kill -9` still deletes it, and its endpoint gets
/// nothing more (a sentinel subscription to the same endpoint shows notifications flow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_after_a_restart_still_reaches_the_subscriptions_of_the_certificate() {
    if !(have_openssl() && have_python3() && have_curl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    let target = Target::start(&pki.join("target.pem"), &pki.join("target.key"), None);
    let config = secure_config(dir.path(), &pki);
    let args = ["--config", config.to_str().expect("utf8")];
    let data = dir.path().join("data");
    let tls_port = |server: &Server| {
        server.urls[1]
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let mut server = Server::start_listeners(&data, &args, 2);
    let port = tls_port(&server);
    let send = |who: &str, method: &str, path: &str, origin: &str, ty: Option<u8>, body: &Value| {
        send_as(&pki, &port, who, method, path, origin, ty, body)
    };
    let ae = json!({"m2m:ae": {"rn": "ae1", "api": "Nmeter", "rr": false, "srv": ["3"]}});
    assert_eq!(send("ae1", "POST", "/cse-in", "C", Some(2), &ae), 2001);
    let cnt = json!({"m2m:cnt": {"rn": "meter"}});
    let meter = "/cse-in/ae1/meter";
    assert_eq!(
        send("ae1", "POST", "/cse-in/ae1", "Cae1", Some(3), &cnt),
        2001
    );
    let sub = |rn: &str| json!({"m2m:sub": {"rn": rn, "nu": [target.url()], "enc": {"net": [3], "chty": [4]}}});
    assert_eq!(
        send("admin", "POST", meter, "CAdmin", Some(23), &sub("sentinel")),
        2001
    );
    assert_eq!(target.next()["body"]["m2m:sgn"]["vrq"], true);
    assert_eq!(
        send("ae1", "POST", meter, "Cae1", Some(23), &sub("watch")),
        2001
    );
    // Killed right after the acknowledgement: nothing is flushed on the way out.
    server.kill9();
    assert_eq!(target.next()["body"]["m2m:sgn"]["vrq"], true);

    let server = Server::start_listeners(&data, &args, 2);
    let port = tls_port(&server);
    let send = |who: &str, method: &str, path: &str, origin: &str, ty: Option<u8>, body: &Value| {
        send_as(&pki, &port, who, method, path, origin, ty, body)
    };
    let watch = format!("{meter}/watch");
    assert_eq!(
        send("admin", "GET", &watch, "CAdmin", None, &Value::Null),
        2000
    );
    let ae1 = format!("33-{}", certificate_digest(&pki.join("ae1.pem")));
    let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args([
            "--url",
            &server.urls[1],
            "--psk-identity",
            "admin@secure-cse.example",
            "--psk-key-file",
        ])
        .arg(pki.join("admin.psk"))
        .args(["credentials", "revoke", &ae1, "--reason", "stolen"])
        .output()
        .expect("m2m");
    assert!(
        out.status.success(),
        "m2m credentials revoke: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.log_with("subscription deleted: the credential it was made with is revoked");
    assert_eq!(
        send("admin", "GET", &watch, "CAdmin", None, &Value::Null),
        4004
    );
    // The sentinel's notification arrives; the revoked certificate's subscription is told
    // nothing (one queue per endpoint, delivered in order: it would come first).
    let cin = json!({"m2m:cin": {"con": "after"}});
    assert_eq!(send("admin", "POST", meter, "CAdmin", Some(4), &cin), 2001);
    let got = target.next();
    let sgn = &got["body"]["m2m:sgn"];
    assert_eq!(sgn["sur"], "cse-in/ae1/meter/sentinel", "{got}");
    assert_eq!(sgn["nev"]["rep"]["m2m:cin"]["con"], "after", "{got}");
    assert!(
        target.received.try_recv().is_err(),
        "nothing else reached the endpoint"
    );
}
