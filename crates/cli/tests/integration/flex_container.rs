//! `<flexContainer>` end to end, with the real binary and curl: a `deviceLight` with its
//! `binarySwitch` created, switched on and read back over HTTP in JSON and CBOR, discovered,
//! refused precisely when it breaks its schema or its parent's, kept from other AEs, and
//! still there after SIGKILL.
use crate::common;

use common::*;
use model::codec::{self, Format};
use serde_json::{json, Value};

const LIGHT: &str = "org.onem2m.common.device.deviceLight";
const SWITCH: &str = "org.onem2m.common.moduleclass.binarySwitch";

/// Registers `home` and creates its light `cse-in/home/lamp` with the switch
/// `cse-in/home/lamp/switch` (off); returns the AE-ID.
fn setup(http: &Http) -> String {
    let ae = http.register("home");
    let lamp = json!({"cod:devLt": {"rn": "lamp", "cnd": LIGHT}}).to_string();
    let a = http.create(&ae, "cse-in/home", 28, &lamp);
    assert_eq!(a.body["cod:devLt"]["ty"], json!(28));
    let switch = json!({"cod:binSh": {"rn": "switch", "cnd": SWITCH, "powSe": false}});
    let a = http.create(&ae, "cse-in/home/lamp", 28, &switch.to_string());
    assert_eq!(a.body["cod:binSh"]["powSe"], json!(false));
    ae
}

#[test]
fn a_light_is_switched_on_and_stays_on_after_kill_9() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(dir.path());
    let http = Http { base: server.url() };
    let ae = setup(&http);
    let a = http.update(
        &ae,
        "cse-in/home/lamp/switch",
        r#"{"cod:binSh": {"powSe": true}}"#,
    );
    assert_eq!(a.rsc, 2004, "{}", a.body);
    assert!(a.head.starts_with("HTTP/1.1 200"), "{}", a.head);
    assert_eq!(a.body["cod:binSh"]["st"], json!(1));
    let a = http.get(&ae, "cse-in/home/lamp/switch");
    assert_eq!(a.rsc, 2000);
    let before = a.body.clone();
    assert_eq!(before["cod:binSh"]["powSe"], json!(true));
    assert_eq!(before["cod:binSh"]["cnd"], json!(SWITCH));

    // Discovery by type and by custom attribute.
    let a = http.get(&ae, "cse-in/home?fu=1&ty=28");
    assert_eq!(
        a.body["m2m:uril"],
        json!(["cse-in/home/lamp", "cse-in/home/lamp/switch"])
    );
    let a = http.get(&ae, "cse-in/home?fu=1&powSe=true");
    assert_eq!(a.body["m2m:uril"], json!(["cse-in/home/lamp/switch"]));
    let a = http.get(&ae, "cse-in/home?fu=1&powSe=false");
    assert_eq!(a.body["m2m:uril"], json!([]), "{}", a.body);

    server.kill9();
    let server = Server::start(dir.path());
    let http = Http { base: server.url() };
    let a = http.get(&ae, "cse-in/home/lamp/switch");
    assert_eq!(a.rsc, 2000, "{}", a.body);
    assert_eq!(a.body, before);
}

#[test]
fn cbor_content_names_the_specialisation_too() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let http = Http { base: server.url() };
    let ae = setup(&http);
    let colour = json!({"cod:color": {"rn": "colour", "cnd": "org.onem2m.common.moduleclass.colour",
        "red": 255, "green": 160, "blue": 0}});
    let body = dir.path().join("colour.cbor");
    std::fs::write(&body, codec::encode(&colour, Format::Cbor)).expect("write");
    let answer = dir.path().join("answer.cbor");
    let url = format!("{}/cse-in/home/lamp", server.url());
    let origin = format!("X-M2M-Origin: {ae}");
    let data = format!("@{}", body.display());
    let head = curl(&[
        "-s",
        "-D",
        "-",
        "-o",
        answer.to_str().expect("path"),
        "-X",
        "POST",
        &url,
        "-H",
        &origin,
        "-H",
        "X-M2M-RI: cbor1",
        "-H",
        "X-M2M-RVI: 3",
        "-H",
        "Content-Type: application/cbor;ty=28",
        "-H",
        "Accept: application/cbor",
        "--data-binary",
        &data,
    ]);
    assert!(head.contains("X-M2M-RSC: 2001"), "{head}");
    // The helper runs curl with `-i`: the file holds the head, then the CBOR body.
    let raw = std::fs::read(&answer).expect("answer");
    let start = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| i + 4);
    let created = codec::decode(&raw[start..], Format::Cbor).expect("a CBOR answer");
    assert_eq!(created["cod:color"]["green"], json!(160));
    assert_eq!(created["cod:color"]["ty"], json!(28));
    let a = http.get(&ae, "cse-in/home/lamp/colour");
    assert_eq!(a.body["cod:color"]["red"], json!(255));
}

#[test]
fn misuse_is_answered_with_the_precise_code_and_changes_nothing() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let http = Http { base: server.url() };
    let ae = setup(&http);
    let other = http.register("other");
    let cases: [(&str, &str, Value, u16, &str); 6] = [
        // No schema for the specialisation: SPECIALIZATION_SCHEMA_NOT_FOUND.
        (
            &ae,
            "cse-in/home",
            json!({"cod:toaster": {"rn": "x", "cnd": "org.example.toaster"}}),
            4125,
            "HTTP/1.1 501",
        ),
        // A custom attribute the schema does not define, a value of the wrong type.
        (
            &ae,
            "cse-in/home",
            json!({"cod:binSh": {"rn": "x", "cnd": SWITCH, "powSe": true, "volume": 3}}),
            4000,
            "HTTP/1.1 400",
        ),
        (
            &ae,
            "cse-in/home",
            json!({"cod:binSh": {"rn": "x", "cnd": SWITCH, "powSe": "on"}}),
            4000,
            "HTTP/1.1 400",
        ),
        // `cnd` of another specialisation.
        (
            &ae,
            "cse-in/home",
            json!({"cod:binSh": {"rn": "x", "cnd": LIGHT, "powSe": true}}),
            4000,
            "HTTP/1.1 400",
        ),
        // A light is not a child of a switch.
        (
            &ae,
            "cse-in/home/lamp/switch",
            json!({"cod:devLt": {"rn": "x", "cnd": LIGHT}}),
            4108,
            "HTTP/1.1 403",
        ),
        // Another AE has no privilege on the light.
        (
            &other,
            "cse-in/home/lamp",
            json!({"cod:binSh": {"rn": "x", "cnd": SWITCH, "powSe": true}}),
            4103,
            "HTTP/1.1 403",
        ),
    ];
    for (from, path, body, rsc, status) in cases {
        let a = http.send("POST", from, path, Some((28, &body.to_string())));
        assert_eq!(a.rsc, rsc, "{body}: {}", a.body);
        assert!(a.head.starts_with(status), "{body}: {}", a.head);
        assert_eq!(http.get(&ae, &format!("{path}/x")).rsc, 4004, "{body}");
    }
    let before = http.get(&ae, "cse-in/home/lamp/switch").body;
    for (from, body, rsc) in [
        (&ae, r#"{"cod:binSh": {"powSe": null}}"#, 4000),
        (&ae, r#"{"cod:binSh": {"cnd": "x"}}"#, 4000),
        (&ae, r#"{"cod:color": {"red": 1}}"#, 4000),
        (&other, r#"{"cod:binSh": {"powSe": true}}"#, 4103),
    ] {
        let a = http.update(from, "cse-in/home/lamp/switch", body);
        assert_eq!(a.rsc, rsc, "{body}: {}", a.body);
    }
    assert_eq!(http.get(&other, "cse-in/home/lamp/switch").rsc, 4103);
    assert_eq!(http.get(&ae, "cse-in/home/lamp/switch").body, before);
}
