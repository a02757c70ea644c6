//! The README's quick tour, run as written against the real binary (only the port differs).
use crate::common;

use common::*;
use std::process::Command;

fn tour_script(port_addr: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README");
    let tour = readme
        .split("## Quick tour")
        .nth(1)
        .expect("a quick tour section");
    let tour = tour.split("\n## ").next().unwrap_or(tour);
    let blocks: Vec<&str> = tour
        .split("```sh")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| b.contains("curl"))
        .collect();
    assert!(blocks.len() >= 2, "the tour has curl blocks");
    format!(
        "set -e\n{}",
        blocks.join("\n").replace("127.0.0.1:8080", port_addr)
    )
}

#[test]
fn readme_quick_tour_works_as_written() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let out = Command::new("bash")
        .arg("-c")
        .arg(tour_script(&server.addr))
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tour failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    // Registration answered with an AE, container and instance were created, the latest value
    // was read, the subscription made, and discovery found the one instance.
    assert!(stdout.contains("\"m2m:ae\""), "{stdout}");
    assert!(stdout.contains("\"rn\":\"temperature\""), "{stdout}");
    assert!(
        stdout.matches("\"con\":\"21.5\"").count() >= 2,
        "created and read back: {stdout}"
    );
    assert!(stdout.contains("\"rn\":\"alerts\""), "{stdout}");
    let uril = stdout
        .split("\"m2m:uril\":")
        .nth(1)
        .expect("discovery result");
    assert_eq!(
        uril.matches("cse-in/sensor/temperature/").count(),
        1,
        "{uril}"
    );
    // The light and its switch were created, the switch turned on and read back as such.
    assert!(stdout.contains("\"cod:devLt\""), "{stdout}");
    let switched = stdout.split("\"cod:binSh\"").skip(1).collect::<Vec<_>>();
    assert_eq!(switched.len(), 3, "created, updated, read: {stdout}");
    assert!(switched[1].contains("\"powSe\":true"), "{stdout}");
    assert!(switched[2].contains("\"powSe\":true"), "{stdout}");
}

#[test]
fn headers_keep_their_capitalisation_and_errors_carry_rsc() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let base = server.url();
    let ok = curl(&[
        &format!("{base}/cse-in"),
        "-H",
        "X-M2M-Origin: CAdmin",
        "-H",
        "X-M2M-RI: cap1",
        "-H",
        "X-M2M-RVI: 3",
    ]);
    for header in [
        "X-M2M-RSC: 2000",
        "X-M2M-RI: cap1",
        "X-M2M-RVI: 3",
        "X-M2M-OT: ",
    ] {
        assert!(ok.contains(header), "{header} in {ok}");
    }
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json;ty=3",
                "-d",
                "{\"m2m:cnt\":",
            ],
            "HTTP/1.1 400",
            "X-M2M-RSC: 4000",
        ),
        (
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json;ty=77",
                "-d",
                "{}",
            ],
            "HTTP/1.1 400",
            "X-M2M-RSC: 4000",
        ),
        (
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: text/plain;ty=3",
                "-d",
                "x",
            ],
            "HTTP/1.1 415",
            "X-M2M-RSC: 4015",
        ),
        (&["-H", "X-M2M-RVI: 1"], "HTTP/1.1 501", "X-M2M-RSC: 4001"),
        (&["-X", "PATCH"], "HTTP/1.1 405", "X-M2M-RSC: 4005"),
        (
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json;ty=3",
                "-d",
                "{\"m2m:cnt\":{\"rn\":\"x\",\"zz\":1}}",
            ],
            "HTTP/1.1 400",
            "X-M2M-RSC: 4000",
        ),
    ];
    for (extra, status, rsc) in cases {
        let mut args = vec![
            format!("{base}/cse-in"),
            "-H".into(),
            "X-M2M-Origin: CAdmin".into(),
            "-H".into(),
            "X-M2M-RI: e".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = curl(&refs);
        assert!(
            out.starts_with(status) && out.contains(rsc),
            "{extra:?}: {out}"
        );
    }
    let big = "x".repeat(2 * 1024 * 1024);
    let body = format!("{{\"m2m:cnt\":{{\"lbl\":[\"{big}\"]}}}}");
    let body_file = dir.path().join("big.json");
    std::fs::write(&body_file, body).expect("write");
    let at = format!("@{}", body_file.display());
    let out = curl(&[
        &format!("{base}/cse-in"),
        "-X",
        "POST",
        "-H",
        "X-M2M-Origin: CAdmin",
        "-H",
        "X-M2M-RI: big",
        "-H",
        "Content-Type: application/json;ty=3",
        "--data-binary",
        &at,
    ]);
    assert!(
        out.starts_with("HTTP/1.1 413") && out.contains("X-M2M-RSC: 4000"),
        "{}",
        &out[..out.len().min(300)]
    );
    // None of the refused requests created anything.
    let list = curl(&[
        &format!("{base}/cse-in?rcn=6"),
        "-H",
        "X-M2M-Origin: CAdmin",
        "-H",
        "X-M2M-RI: l",
    ]);
    assert!(list.contains("\"rrf\":[]"), "{list}");
}
