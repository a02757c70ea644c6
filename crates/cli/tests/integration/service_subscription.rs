//! Service subscription rules end to end (issue 13 item 3): the real `cse` binary with a
//! TLS-PSK listener, `m2m` over the admin's and a sensor's PSK, curl as an unprivileged AE.
//! The admin writes a `<serviceSubscribedAppRule>` for the sensor's PSK identity; the sensor
//! registering another App-ID is refused with 4126 until the admin widens the rule; an AE
//! cannot touch the rules; each change is in the audit log; the credential file's
//! `allowed_apps` seed a rule at start.

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

const SENSOR: &str = "sensor@secure-cse.example";
const SENSOR_KEY: &str = "00112233445566778899aabbccddeeff";
const ADMIN: &str = "admin@secure-cse.example";
const ADMIN_KEY: &str = "ffeeddccbbaa99887766554433221100";
const SEEDED: &str = "seeded@secure-cse.example";
const SEEDED_KEY: &str = "0123456789abcdef0123456789abcdef";

/// The credential file, the key files and a PSK-only listener; returns the config path.
fn config(dir: &Path) -> PathBuf {
    let creds = dir.join("credentials.toml");
    write_private(
        &creds,
        &format!(
            "[[psk]]\nidentity = \"{SENSOR}\"\nkey_hex = \"{SENSOR_KEY}\"\nallowed_aes = [\"C*\"]\n\n\
             [[psk]]\nidentity = \"{SEEDED}\"\nkey_hex = \"{SEEDED_KEY}\"\nallowed_aes = [\"C*\"]\nallowed_apps = [\"Nseeded\"]\n\n\
             [[psk]]\nidentity = \"{ADMIN}\"\nkey_hex = \"{ADMIN_KEY}\"\nae = \"CAdmin\"\nadmin = true\n"
        ),
    );
    for (name, key) in [
        ("sensor", SENSOR_KEY),
        ("admin", ADMIN_KEY),
        ("seeded", SEEDED_KEY),
    ] {
        write_private(&dir.join(format!("{name}.psk")), &format!("{key}\n"));
    }
    let cfg = dir.join("cse.toml");
    std::fs::write(
        &cfg,
        format!(
            "[cse]\nsp_id = \"secure-cse.example\"\ncse_id = \"id-in\"\n\n\
             [security]\ncredentials = \"{}\"\n\n[[tls]]\nname = \"psk\"\nlisten = \"127.0.0.1:0\"\n\
             frameworks = [\"psk\"]\n",
            creds.display()
        ),
    )
    .expect("config");
    cfg
}

/// `m2m` over the PSK listener as `who` (`sensor`, `admin` or `seeded`), `From` = `from`.
fn m2m_over(server: &Server, dir: &Path, who: &str, from: &str, args: &[&str]) -> Output {
    let identity = match who {
        "admin" => ADMIN,
        "sensor" => SENSOR,
        _ => SEEDED,
    };
    let key = dir.join(format!("{who}.psk"));
    let mut all = vec![
        "--url",
        &server.urls[1],
        "--psk-identity",
        identity,
        "--psk-key-file",
        key.to_str().expect("utf8"),
        "--origin",
        from,
    ];
    all.extend_from_slice(args);
    m2m(&all)
}

/// The status line `m2m` prints (`4126 APP_RULE_VALIDATION_FAILED`).
fn status(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The admin's audit entries (`kind` admin-action) as (actor, action, target).
fn admin_actions(data: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(data.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| e["event"].clone())
        .filter(|ev| ev["kind"] == "admin-action")
        .map(|ev| {
            let s = |k: &str| ev[k].as_str().unwrap_or_default().to_owned();
            (s("actor"), s("action"), s("target"))
        })
        .collect()
}

#[test]
fn the_admins_rule_decides_which_app_ids_a_psk_may_register() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    let server = Server::start_listeners(&data, &["--config", cfg.to_str().expect("utf8")], 2);
    let d = dir.path();

    // The admin writes the rule and links it from this CSE's node.
    let rule = r#"{"m2m:asar": {"rn": "sensor-rule", "apci": ["12-sensor@secure-cse.example"], "aai": ["Nsensor"], "aae": ["C*"]}}"#;
    let out = m2m_over(
        &server,
        d,
        "admin",
        "CAdmin",
        &["create", "cse-in", "--ty", "19", "--body", rule],
    );
    assert!(out.status.success(), "{}", text(&out));
    let ri = serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")["m2m:asar"]
        ["ri"]
        .as_str()
        .expect("ri")
        .to_owned();
    let out = m2m_over(
        &server,
        d,
        "admin",
        "CAdmin",
        &[
            "create",
            "cse-in",
            "--ty",
            "11",
            "--body",
            r#"{"m2m:mssp": {"rn": "fleet"}}"#,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let node = format!(
        r#"{{"m2m:svsn": {{"rn": "in", "ni": "urn:oid:1.2.3", "csi": "/id-in", "rlk": ["{ri}"]}}}}"#
    );
    let out = m2m_over(
        &server,
        d,
        "admin",
        "CAdmin",
        &["create", "cse-in/fleet", "--ty", "20", "--body", &node],
    );
    assert!(out.status.success(), "{}", text(&out));

    // The sensor's PSK registering Nother: refused with 4126, nothing registered.
    let out = m2m_over(
        &server,
        d,
        "sensor",
        "C",
        &["register", "--api", "Nother", "--rn", "s1"],
    );
    assert_eq!(
        status(&out),
        "4126 APP_RULE_VALIDATION_FAILED",
        "{}",
        text(&out)
    );
    let out = m2m_over(&server, d, "admin", "CAdmin", &["retrieve", "cse-in/s1"]);
    assert!(status(&out).starts_with("4004"), "{}", text(&out));

    // An AE (curl over plain HTTP) cannot create, change or delete rules.
    let http = Http {
        base: server.urls[0].clone(),
    };
    let ae = http.register("intruder");
    let a = http.send(
        "POST",
        &ae,
        "cse-in",
        Some((19, r#"{"m2m:asar": {"aai": ["*"], "aae": ["*"]}}"#)),
    );
    assert_eq!(a.rsc, 4103, "{}", a.body);
    let a = http.update(&ae, "cse-in/sensor-rule", r#"{"m2m:asar": {"aai": ["*"]}}"#);
    assert_eq!(a.rsc, 4103, "{}", a.body);
    let a = http.send("DELETE", &ae, "cse-in/sensor-rule", None);
    assert_eq!(a.rsc, 4103, "{}", a.body);

    // The admin widens the rule over the API, in CBOR this time: the same registration now
    // passes.
    let out = m2m_over(
        &server,
        d,
        "admin",
        "CAdmin",
        &[
            "--cbor",
            "update",
            "cse-in/sensor-rule",
            "--body",
            r#"{"m2m:asar": {"aai": ["Nsensor", "Nother"]}}"#,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = m2m_over(
        &server,
        d,
        "admin",
        "CAdmin",
        &["--cbor", "retrieve", "cse-in/sensor-rule"],
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (&got["m2m:asar"]["ty"], &got["m2m:asar"]["aai"]),
        (
            &serde_json::json!(19),
            &serde_json::json!(["Nsensor", "Nother"])
        ),
        "{}",
        text(&out)
    );
    let out = m2m_over(
        &server,
        d,
        "sensor",
        "C",
        &["register", "--api", "Nother", "--rn", "s1"],
    );
    assert_eq!(status(&out), "2001 CREATED", "{}", text(&out));

    // The credential file's allowed_apps became a rule, which holds the seeded PSK to them.
    let out = m2m_over(
        &server,
        d,
        "seeded",
        "C",
        &["register", "--api", "Nother", "--rn", "s2"],
    );
    assert_eq!(
        status(&out),
        "4126 APP_RULE_VALIDATION_FAILED",
        "{}",
        text(&out)
    );
    let out = m2m_over(
        &server,
        d,
        "seeded",
        "C",
        &["register", "--api", "Nseeded", "--rn", "s2"],
    );
    assert_eq!(status(&out), "2001 CREATED", "{}", text(&out));

    // Every change is in the audit log, with who made it; the refused ones are not.
    let actions = admin_actions(&data);
    let ours: Vec<(&str, &str)> = actions
        .iter()
        .filter(|(_, a, _)| {
            a.starts_with("asar-") || a.starts_with("svsn-") || a.starts_with("mssp-")
        })
        .map(|(who, a, _)| (who.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        ours,
        vec![
            ("configuration", "asar-create"),
            ("configuration", "mssp-create"),
            ("configuration", "svsn-create"),
            ("CAdmin", "asar-create"),
            ("CAdmin", "mssp-create"),
            ("CAdmin", "svsn-create"),
            ("CAdmin", "asar-update"),
        ],
        "{actions:?}"
    );
    let update = actions
        .iter()
        .find(|(_, a, _)| a == "asar-update")
        .expect("update entry");
    assert!(
        update.2.contains("sensor-rule") && update.2.contains("Nother"),
        "{update:?}"
    );
}
