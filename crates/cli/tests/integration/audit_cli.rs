//! `m2m audit verify` and `m2m audit tail`, run as the real binary on logs written by
//! `manager::audit`.
#![allow(clippy::unwrap_used, missing_docs)]

use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::{
    Algorithm, KeyHome, KeyId, KeyRole, KeyStore, KeyStorePolicy, SecretBytes, SecretSource,
};
use manager::audit::{closed_segments, AuditLog, Entry, Event, Layout};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

fn m2m(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(args)
        .output()
        .expect("run m2m")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn refused(n: u64) -> Event {
    Event::AssociationRefused {
        peer: format!("127.0.0.1:{}", 40000 + n),
        credential: None,
        reason: "no client certificate".to_owned(),
    }
}

fn fill(log: &AuditLog, n: u64) {
    for i in 1..=n {
        log.append(refused(i)).unwrap();
    }
}

fn edit_line(path: &Path, index: usize, f: impl FnOnce(&mut Entry)) {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut entry: Entry = serde_json::from_str(&lines[index]).unwrap();
    f(&mut entry);
    lines[index] = serde_json::to_string(&entry).unwrap();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn verify_accepts_a_good_log_and_names_the_first_bad_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    fill(&AuditLog::open(&path, None).unwrap(), 5);
    let file = path.to_str().unwrap();

    let out = m2m(&["audit", "verify", file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ok: 5 entries"), "{stdout}");
    assert!(stdout.contains(r#""seq":5"#), "{stdout}");

    // Change one byte of entry 3.
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, original.replacen("40003", "40004", 1)).unwrap();
    let out = m2m(&["audit", "verify", file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("TAMPERED"), "{stderr}");
    assert!(stderr.contains("line 3 (seq 3)"), "{stderr}");
    assert!(stderr.contains("the entry was changed"), "{stderr}");
}

#[test]
fn verify_with_public_key_and_head() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Arc::new(
        SoftwareHome::create(&SoftwareConfig {
            dir: tmp.path().join("keys"),
            kek: KekSource::Passphrase(SecretSource::Provided(SecretBytes::from_slice(b"t"))),
        })
        .unwrap(),
    );
    let id = home.id().clone();
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home);
    let handle = store
        .generate(
            &id,
            &KeyId::new("audit").unwrap(),
            KeyRole::AuditLog,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    let path = tmp.path().join("audit.log");
    let log = AuditLog::open(&path, Some(store.signing_key(&handle).unwrap())).unwrap();
    fill(&log, 4);
    let pem = tmp.path().join("audit.pub.pem");
    std::fs::write(&pem, log.public_key().unwrap().unwrap().to_pem().unwrap()).unwrap();
    let head = tmp.path().join("audit.head");
    log.checkpoint_head(&head).unwrap();
    drop(log);
    let (file, pem, head) = (
        path.to_str().unwrap(),
        pem.to_str().unwrap(),
        head.to_str().unwrap(),
    );

    let out = m2m(&["audit", "verify", file, "--public-key", pem, "--head", head]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ok: 4 entries"), "{stdout}");
    assert!(stdout.contains("every signature valid"), "{stdout}");

    // Rewrite entry 2 with a correct hash (and re-link entry 3 and 4): only the signature
    // shows it.
    edit_line(&path, 1, |e| {
        e.event = refused(99);
        e.hash = e.compute_hash().unwrap();
    });
    let new2: Entry = serde_json::from_str(
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    let mut prev = new2.hash;
    for i in 2..4 {
        edit_line(&path, i, |e| {
            e.prev = prev;
            e.hash = e.compute_hash().unwrap();
            prev = e.hash;
        });
    }
    // The log's own checkpoint (audit.log.head) names the last entry's hash.
    let out = m2m(&["audit", "verify", file]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the checkpoint catches the rewrite"
    );
    assert!(
        text(&out.stderr).contains("rewritten"),
        "{}",
        text(&out.stderr)
    );
    let own = format!("{file}.head");
    std::fs::rename(&own, format!("{own}.aside")).unwrap();
    let out = m2m(&["audit", "verify", file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without the key and the checkpoint the chain is fooled"
    );
    let out = m2m(&["audit", "verify", file, "--public-key", pem]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 2 (seq 2)"), "{stderr}");
    assert!(stderr.contains("signature does not verify"), "{stderr}");
    let out = m2m(&["audit", "verify", file, "--head", head]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the kept head catches the rewrite too"
    );

    // Cut the last entry: the head catches it.
    let all = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = all.lines().take(3).collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let out = m2m(&["audit", "verify", file, "--head", head]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cut off the end"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn tail_shows_the_last_entries_and_bad_input_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    fill(&AuditLog::open(&path, None).unwrap(), 5);
    let file = path.to_str().unwrap();

    let out = m2m(&["audit", "tail", file, "-n", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].trim_start().starts_with("4 "), "{stdout}");
    assert!(lines[1].contains("association-refused"), "{stdout}");
    assert!(lines[1].contains(r#"peer="127.0.0.1:40005""#), "{stdout}");

    let out = m2m(&["audit", "tail", file, "-n", "1", "--json"]);
    let entry: Entry = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(entry.seq, 5);

    let missing = tmp.path().join("missing.log");
    let out = m2m(&["audit", "verify", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = m2m(&["audit", "verify", file, "--public-key", file]);
    assert_eq!(out.status.code(), Some(2), "a log is not a PEM key");
}

#[test]
fn verify_walks_every_segment_and_names_the_one_tampered_with() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let layout = Layout {
        segment_bytes: 1000,
        keep_segments: 0,
        ..Layout::for_log(&path)
    };
    fill(&AuditLog::open_with(&path, None, layout).unwrap(), 30);
    let segments = closed_segments(&path).unwrap();
    assert!(segments.len() >= 3, "{segments:?}");
    let file = path.to_str().unwrap();

    let out = m2m(&["audit", "verify", file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "ok: 30 entries in {} closed segments",
            segments.len()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("reaches its checkpoint (seq 30)"),
        "{stdout}"
    );

    let middle = &segments[1].1;
    edit_line(middle, 0, |e| e.event = refused(77));
    let out = m2m(&["audit", "verify", file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("TAMPERED: {}: line 1", middle.display())),
        "{stderr}"
    );
}
