//! Device management over HTTP against the real binary, with curl (issue 13 item 6): a
//! device's `<node>` with a battery and a reboot `<mgmtObj>`, an agent subscribed to the
//! reboot object, a reboot asked for by the admin and by an operator the policy allows, the
//! agent notified of it, an originator the policy does not name refused with 4103, and the
//! request in the audit log.
use crate::common;
use crate::notifications::Arrived;

use common::*;
use serde_json::{json, Value};

/// One request with curl whose body (if any) and answer are CBOR: the `X-M2M-RSC` and the
/// decoded answer.
fn cbor_exchange(
    base: &str,
    method: &str,
    from: &str,
    path: &str,
    pc: Option<&Value>,
) -> (u16, Value) {
    let dir = tempfile::tempdir().expect("tmp");
    let (sent, got) = (dir.path().join("sent.cbor"), dir.path().join("got.cbor"));
    let mut args: Vec<String> = ["-s", "-D", "-", "-o"].map(str::to_owned).to_vec();
    args.push(got.to_str().expect("utf8").to_owned());
    args.extend(["-X".to_owned(), method.to_owned(), format!("{base}/{path}")]);
    for h in [
        format!("X-M2M-Origin: {from}"),
        "X-M2M-RI: dm-cbor".to_owned(),
        "X-M2M-RVI: 3".to_owned(),
        "Accept: application/cbor".to_owned(),
    ] {
        args.extend(["-H".to_owned(), h]);
    }
    if let Some(pc) = pc {
        std::fs::write(&sent, model::codec::encode(pc, model::codec::Format::Cbor)).expect("write");
        args.extend([
            "-H".to_owned(),
            "Content-Type: application/cbor;ty=13".to_owned(),
        ]);
        args.extend(["--data-binary".to_owned(), format!("@{}", sent.display())]);
    }
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    let rsc = head
        .lines()
        .find_map(|l| l.strip_prefix("X-M2M-RSC: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no X-M2M-RSC: {head}"));
    let body = std::fs::read(&got).unwrap_or_default();
    let value = model::codec::decode(&body, model::codec::Format::Cbor).unwrap_or(Value::Null);
    (rsc, value)
}

/// The `management-requested` entries of the audit log, as their `event` objects.
fn management_entries(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| e["event"].clone())
        .filter(|e| e["kind"] == json!("management-requested"))
        .collect()
}

#[test]
fn a_reboot_reaches_the_device_agent_and_is_audited() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("cse.toml");
    std::fs::write(&file, "[audit]\nenabled = true\n").expect("config");
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--config", file.to_str().expect("utf8")]);
    let http = Http { base: server.url() };
    let device = http.register("device");
    let operator = http.register("operator");
    let other = http.register("other");

    // The admin, who alone may create under the <CSEBase>, sets up the policy and the node.
    let acp = http.create(
        "CAdmin",
        "cse-in",
        1,
        &json!({"m2m:acp": {"rn": "devacp",
            "pv": {"acr": [{"acor": [device], "acop": 63}, {"acor": [operator], "acop": 6}]},
            "pvs": {"acr": [{"acor": ["CAdmin"], "acop": 63}]}}})
        .to_string(),
    );
    let acpi = acp.body["m2m:acp"]["ri"].clone();
    let node = http.create(
        "CAdmin",
        "cse-in",
        14,
        &json!({"m2m:nod": {"rn": "node1", "ni": "urn:gsma:imei:90420156-025763-0",
            "hael": [device], "acpi": [acpi]}})
        .to_string(),
    );
    assert_eq!(node.body["m2m:nod"]["ty"], json!(14));

    // The device describes itself: a battery and the place to reboot it.
    http.create(
        &device,
        "cse-in/node1",
        13,
        &json!({"m2m:bat": {"rn": "battery", "mgd": 1006, "btl": 77, "bts": 1, "acpi": [acpi]}})
            .to_string(),
    );
    let rbo = http.create(
        &device,
        "cse-in/node1",
        13,
        &json!({"m2m:rbo": {"rn": "reboot", "mgd": 1009, "acpi": [acpi]}}).to_string(),
    );
    assert_eq!(rbo.body["m2m:rbo"]["rbo"], json!(false));
    let got = http.get(&operator, "cse-in/node1/battery");
    assert_eq!(got.rsc, 2000, "{}", got.body);
    assert_eq!(got.body["m2m:bat"]["btl"], json!(77));

    // The same short names in CBOR: a memory object created and read back as CBOR.
    let mem = json!({"m2m:mem": {"rn": "memory", "mgd": 1003, "mma": 1024, "mmt": 4096}});
    let (rsc, created) = cbor_exchange(&server.url(), "POST", &device, "cse-in/node1", Some(&mem));
    assert_eq!(rsc, 2001, "{created}");
    assert_eq!(created["m2m:mem"]["mmt"], json!(4096));
    let (rsc, read) = cbor_exchange(&server.url(), "GET", &device, "cse-in/node1/memory", None);
    assert_eq!(rsc, 2000, "{read}");
    assert_eq!(
        (
            &read["m2m:mem"]["mgd"],
            &read["m2m:mem"]["mma"],
            &read["m2m:mem"]["ty"]
        ),
        (&json!(1003), &json!(1024), &json!(13))
    );

    // A battery attribute on the reboot object, and a reboot with a factory reset, are 4000.
    let bad = http.update(
        &operator,
        "cse-in/node1/reboot",
        &json!({"m2m:rbo": {"btl": 1}}).to_string(),
    );
    assert_eq!(bad.rsc, 4000, "{}", bad.body);
    let bad = http.update(
        &operator,
        "cse-in/node1/reboot",
        &json!({"m2m:rbo": {"rbo": true, "far": true}}).to_string(),
    );
    assert_eq!(bad.rsc, 4000, "{}", bad.body);

    // The device's agent subscribes to the reboot object.
    let agent = crate::notifications::Target::start();
    http.create(
        &device,
        "cse-in/node1/reboot",
        23,
        &json!({"m2m:sub": {"rn": "agent", "nu": [agent.url], "enc": {"net": [1]}}}).to_string(),
    );
    assert_eq!(agent.wait_for(1).len(), 1, "verification request");

    // An AE the policy does not name: 4103, nothing stored, nobody notified.
    let refused = http.update(
        &other,
        "cse-in/node1/reboot",
        &json!({"m2m:rbo": {"rbo": true}}).to_string(),
    );
    assert_eq!(refused.rsc, 4103, "{}", refused.body);
    assert_eq!(
        http.get(&device, "cse-in/node1/reboot").body["m2m:rbo"]["rbo"],
        json!(false)
    );

    // The admin asks for a reboot; the agent hears of it.
    let asked = http.update(
        "CAdmin",
        "cse-in/node1/reboot",
        &json!({"m2m:rbo": {"rbo": true}}).to_string(),
    );
    assert_eq!(asked.rsc, 2004, "{}", asked.body);
    let got = Arrived::bodies(&agent.wait_for(2));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[1]["m2m:sgn"]["nev"]["rep"]["m2m:rbo"]["rbo"],
        json!(true),
        "{got:?}"
    );
    // The agent reboots the device and clears the request.
    let done = http.update(
        &device,
        "cse-in/node1/reboot",
        &json!({"m2m:rbo": {"rbo": false}}).to_string(),
    );
    assert_eq!(done.rsc, 2004, "{}", done.body);
    // The operator the policy allows asks again.
    let asked = http.update(
        &operator,
        "cse-in/node1/reboot",
        &json!({"m2m:rbo": {"rbo": true}}).to_string(),
    );
    assert_eq!(asked.rsc, 2004, "{}", asked.body);
    let got = Arrived::bodies(&agent.wait_for(4));
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got[3]["m2m:sgn"]["nev"]["rep"]["m2m:rbo"]["rbo"],
        json!(true)
    );

    // Each request is in the audit log, written before the answer; the refused one is not.
    let entries = management_entries(&data.join("audit.log"));
    let who: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or(""),
                e["target"].as_str().unwrap_or(""),
                e["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        who,
        vec![
            ("CAdmin", "cse-in/node1/reboot", "reboot: rbo"),
            (operator.as_str(), "cse-in/node1/reboot", "reboot: rbo"),
        ]
    );
}

/// An execution request is never stored, nor notified, without its audit entry: when the
/// audit log cannot be written, the request is refused with 5000 and nothing changes
/// (`resources::mgo::audit_actions`). The audit log sits on a small tmpfs that is filled
/// once the device is set up; each reboot request (with a new label) is answered 2004 while
/// the log's last page still has room, until one finds none: 5000, and the object keeps
/// the label of the last request that was audited. Needs root (to mount the tmpfs).
#[test]
fn a_reboot_that_cannot_be_audited_is_refused_and_changes_nothing() {
    use crate::full_disk::{fill, running_as_root, Tmpfs};
    if skip_unless(running_as_root(), "root (mounting a tmpfs needs it)").is_some() || !have_curl()
    {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let volume = Tmpfs::mount(&dir.path().join("audit"), "256k");
    let log = dir.path().join("audit").join("audit.log");
    let file = dir.path().join("cse.toml");
    std::fs::write(
        &file,
        format!("[audit]\nenabled = true\nfile = \"{}\"\n", log.display()),
    )
    .expect("config");
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--config", file.to_str().expect("utf8")]);
    let http = Http { base: server.url() };
    let device = http.register("device");
    http.create(
        "CAdmin",
        "cse-in",
        14,
        &json!({"m2m:nod": {"rn": "node1", "ni": "urn:gsma:imei:90420156-025763-1",
            "hael": [device]}})
        .to_string(),
    );
    http.create(
        "CAdmin",
        "cse-in/node1",
        13,
        &json!({"m2m:rbo": {"rn": "reboot", "mgd": 1009}}).to_string(),
    );
    fill(&dir.path().join("audit").join("filler"));
    let mut last_audited = Value::Null;
    let mut refused = None;
    for i in 0..256 {
        let label = json!([format!("attempt-{i}")]);
        let a = http.update(
            "CAdmin",
            "cse-in/node1/reboot",
            &json!({"m2m:rbo": {"rbo": true, "lbl": label}}).to_string(),
        );
        match a.rsc {
            2004 => last_audited = label,
            5000 => {
                refused = Some(i);
                break;
            }
            other => panic!("attempt {i}: {other}: {}", a.body),
        }
    }
    let i = refused.expect("a request found the audit log full");
    let got = http.get("CAdmin", "cse-in/node1/reboot");
    assert_eq!(got.rsc, 2000, "{}", got.body);
    assert_eq!(
        got.body["m2m:rbo"]
            .get("lbl")
            .cloned()
            .unwrap_or(Value::Null),
        last_audited,
        "attempt {i} changed nothing"
    );
    // Every request that was answered 2004 is in the log; the refused one is not.
    let entries = management_entries(&log);
    assert_eq!(entries.len(), i, "{entries:?}");
    drop(server);
    drop(volume);
}
