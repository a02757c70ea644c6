//! The audit log: appends, reopening, concurrency, durability across kill -9, and every kind
//! of tampering, each reported at the right entry.
#![allow(clippy::unwrap_used, missing_docs)]

use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::{
    Algorithm, KeyHome, KeyId, KeyRole, KeyStore, KeyStorePolicy, SecretBytes, SecretSource,
    SigningKey,
};
use manager::audit::{
    anchor_file, closed_segments, verify, verify_with_head, AuditError, AuditLog, AuditPublicKey,
    ChainHash, Checkpoint, Entry, Event, Head, Layout, Problem, Purpose, Tampered, VerifyError,
    WriterLock,
};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

pub(crate) fn refused(n: u64) -> Event {
    Event::AssociationRefused {
        peer: format!("127.0.0.1:{}", 40000 + n),
        credential: Some(format!("12-dev{n}@sp.example")),
        reason: "unknown PSK identity".to_owned(),
    }
}

fn temp_log() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    (tmp, path)
}

/// A log with `n` unsigned entries.
fn unsigned_log(n: u64) -> (tempfile::TempDir, PathBuf, Head) {
    let (tmp, path) = temp_log();
    let log = AuditLog::open(&path, None).unwrap();
    let mut head = None;
    for i in 1..=n {
        head = Some(log.append(refused(i)).unwrap());
    }
    (tmp, path, head.unwrap())
}

/// A level-1 key store with an audit-log signing key.
pub(crate) fn audit_key(dir: &Path, name: &str) -> SigningKey {
    let home = SoftwareHome::create(&SoftwareConfig {
        dir: dir.join(format!("keys-{name}")),
        kek: KekSource::Passphrase(SecretSource::Provided(SecretBytes::from_slice(
            b"audit tests",
        ))),
    })
    .unwrap();
    let home = Arc::new(home);
    let id = home.id().clone();
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home);
    let handle = store
        .generate(
            &id,
            &KeyId::new(name).unwrap(),
            KeyRole::AuditLog,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    store.signing_key(&handle).unwrap()
}

pub(crate) fn public(key: &SigningKey) -> AuditPublicKey {
    AuditPublicKey::from_der(key.public_key().as_der()).unwrap()
}

pub(crate) fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(crate) fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn tampered(result: Result<manager::audit::Verified, VerifyError>) -> Tampered {
    match result {
        Err(VerifyError::Tampered { tampered, .. }) => tampered,
        other => panic!("expected tampering to be detected, got {other:?}"),
    }
}

fn entry(line: &str) -> Entry {
    serde_json::from_str(line).unwrap()
}

/// Re-hashes every entry from index `from` on, as an attacker who rewrites the chain would.
fn rechain(lines: &mut [String], from: usize) {
    let mut prev = if from == 0 {
        ChainHash::GENESIS
    } else {
        entry(&lines[from - 1]).hash
    };
    for line in lines.iter_mut().skip(from) {
        let mut e = entry(line);
        e.prev = prev;
        e.hash = e.compute_hash().unwrap();
        prev = e.hash;
        *line = serde_json::to_string(&e).unwrap();
    }
}

#[test]
fn appends_verify_and_reopen_continues_the_chain() {
    let (_tmp, path, head) = unsigned_log(3);
    assert_eq!(head.seq, 3);
    let v = verify(&path, None).unwrap();
    assert_eq!(v.count, 3);
    assert_eq!(v.head, Some(head));
    assert!(!v.signatures_checked);

    let log = AuditLog::open(&path, None).unwrap();
    assert_eq!(log.head(), Some(head));
    let next = log
        .append(Event::Revoked {
            credential: "12-dev1@sp.example".to_owned(),
            actor: "CAdmin".to_owned(),
            reason: "key compromise".to_owned(),
        })
        .unwrap();
    assert_eq!(next.seq, 4);
    let all = lines(&path);
    assert_eq!(entry(&all[3]).prev, head.hash);
    assert_eq!(verify(&path, None).unwrap().count, 4);
    assert!(all[3].contains(r#""kind":"revoked""#), "{}", all[3]);
}

#[test]
fn every_event_kind_round_trips() {
    let (_tmp, path) = temp_log();
    let log = AuditLog::open(&path, None).unwrap();
    let events = vec![
        Event::CertificateIssued {
            subject: "/id-in".to_owned(),
            serial: "01ab".to_owned(),
            not_after: "2027-01-01T00:00:00Z".to_owned(),
        },
        Event::CredentialIssued {
            credential: "12-k1@sp.example".to_owned(),
            holder: "CAE1".to_owned(),
            parent: Some("ABCD@mef.example".to_owned()),
        },
        Event::Enrolled {
            enrolee: "CAE1".to_owned(),
            ke_id: "ABCD@mef.example".to_owned(),
        },
        Event::AssociationOpened {
            peer: "127.0.0.1:1".to_owned(),
            identity: "CAE1".to_owned(),
            credential: "12-k1@sp.example".to_owned(),
            framework: "tls-psk".to_owned(),
        },
        refused(1),
        Event::AssociationsRefused {
            listener: "https".to_owned(),
            source: "2001:db8:1:2::/64".to_owned(),
            credential: None,
            reason: "certificate verify failed".to_owned(),
            count: 5000,
            first: "2026-01-01T00:00:00.000000Z".to_owned(),
            last: "2026-01-01T00:01:00.000000Z".to_owned(),
        },
        Event::AssociationClosed {
            peer: "127.0.0.1:1".to_owned(),
            identity: "CAE1".to_owned(),
            reason: "revoked".to_owned(),
        },
        Event::Revoked {
            credential: "c".to_owned(),
            actor: "a".to_owned(),
            reason: "r".to_owned(),
        },
        Event::Suspended {
            credential: "c".to_owned(),
            actor: "a".to_owned(),
            reason: "r".to_owned(),
        },
        Event::Resumed {
            credential: "c".to_owned(),
            actor: "a".to_owned(),
        },
        Event::AdminAction {
            actor: "CAdmin".to_owned(),
            action: "policy-update".to_owned(),
            target: None,
        },
        Event::PseudonymResolved {
            actor: "privacy-officer".to_owned(),
            pseudonym: "CAE-7f3a".to_owned(),
            purpose: "court order 12/2026".to_owned(),
        },
    ];
    for e in &events {
        log.append(e.clone()).unwrap();
    }
    let read: Vec<Event> = lines(&path).iter().map(|l| entry(l).event).collect();
    assert_eq!(read, events);
    assert_eq!(verify(&path, None).unwrap().count, events.len() as u64);
}

#[test]
fn one_changed_byte_is_reported_at_its_entry() {
    let (_tmp, path, _) = unsigned_log(5);
    let mut all = lines(&path);
    // 127.0.0.1:40003 -> 127.0.0.1:40009 in entry 3.
    assert!(all[2].contains("40003"));
    all[2] = all[2].replacen("40003", "40009", 1);
    write_lines(&path, &all);
    let t = tampered(verify(&path, None));
    assert_eq!((t.line, t.seq), (3, Some(3)));
    assert!(matches!(t.problem, Problem::HashMismatch { .. }), "{t}");
    assert!(t.to_string().contains("line 3 (seq 3)"), "{t}");
}

#[test]
fn added_whitespace_is_reported() {
    let (_tmp, path, _) = unsigned_log(3);
    let mut all = lines(&path);
    all[1] = all[1].replacen(",", ", ", 1);
    write_lines(&path, &all);
    let t = tampered(verify(&path, None));
    assert_eq!((t.line, t.problem), (2, Problem::NotCanonical));
}

#[test]
fn a_deleted_entry_is_reported_where_it_is_missing() {
    let (_tmp, path, _) = unsigned_log(5);
    let mut all = lines(&path);
    all.remove(2);
    write_lines(&path, &all);
    let t = tampered(verify(&path, None));
    assert_eq!((t.line, t.seq), (3, Some(4)));
    assert_eq!(
        t.problem,
        Problem::UnexpectedSeq {
            expected: 3,
            found: 4
        }
    );
}

#[test]
fn a_deleted_and_renumbered_entry_breaks_the_link() {
    // The attacker deletes entry 3 and renumbers the later ones (recomputing their own
    // hashes but keeping their prev): the link from entry 2 is broken.
    let (_tmp, path, _) = unsigned_log(5);
    let mut all = lines(&path);
    all.remove(2);
    for (i, line) in all.iter_mut().enumerate().skip(2) {
        let mut e = entry(line);
        e.seq = i as u64 + 1;
        e.hash = e.compute_hash().unwrap();
        *line = serde_json::to_string(&e).unwrap();
    }
    write_lines(&path, &all);
    let t = tampered(verify(&path, None));
    assert_eq!((t.line, t.seq), (3, Some(3)));
    assert!(matches!(t.problem, Problem::BrokenLink { .. }), "{t}");
}

#[test]
fn swapped_entries_are_reported_at_the_first() {
    let (_tmp, path, _) = unsigned_log(5);
    let mut all = lines(&path);
    all.swap(1, 2);
    write_lines(&path, &all);
    let t = tampered(verify(&path, None));
    assert_eq!((t.line, t.seq), (2, Some(3)));
    assert_eq!(
        t.problem,
        Problem::UnexpectedSeq {
            expected: 2,
            found: 3
        }
    );
}

#[test]
fn an_inserted_entry_is_reported() {
    let (_tmp, path, _) = unsigned_log(4);
    let mut all = lines(&path);
    // A copy of entry 2 inserted after it.
    let copy = all[1].clone();
    all.insert(2, copy);
    write_lines(&path, &all);
    let t = tampered(verify(&path, None));
    assert_eq!((t.line, t.seq), (3, Some(2)));
    assert!(matches!(
        t.problem,
        Problem::UnexpectedSeq {
            expected: 3,
            found: 2
        }
    ));
}

#[test]
fn a_naively_forged_last_entry_is_reported() {
    let (_tmp, path, _) = unsigned_log(3);
    let mut all = lines(&path);
    // A forger copies the last line and edits it without knowing how the hash is made.
    let forged = all[2]
        .replacen(r#""seq":3"#, r#""seq":4"#, 1)
        .replacen("40003", "40099", 1);
    all.push(forged);
    write_lines(&path, &all);
    let t = tampered(verify(&path, None));
    assert_eq!((t.line, t.seq), (4, Some(4)));
    assert!(matches!(t.problem, Problem::HashMismatch { .. }), "{t}");
}

/// The limit of an unsigned chain: a forger who knows the format can append a well-formed
/// entry. Signatures catch it (next test).
#[test]
fn a_well_formed_forgery_passes_an_unsigned_chain_but_not_a_signed_one() {
    let (tmp, path) = temp_log();
    let key = audit_key(tmp.path(), "audit");
    let log = AuditLog::open(&path, Some(key.clone())).unwrap();
    for i in 1..=3 {
        log.append(refused(i)).unwrap();
    }
    drop(log);
    let mut all = lines(&path);
    let last = entry(&all[2]);
    let mut forged = Entry {
        seq: 4,
        time: last.time.clone(),
        event: Event::AdminAction {
            actor: "CAdmin".to_owned(),
            action: "disable-audit".to_owned(),
            target: None,
        },
        prev: last.hash,
        hash: ChainHash::GENESIS,
        sig: last.sig.clone(), // a signature copied from another entry
    };
    forged.hash = forged.compute_hash().unwrap();
    all.push(serde_json::to_string(&forged).unwrap());
    write_lines(&path, &all);

    // The chain alone accepts it...
    assert_eq!(verify(&path, None).unwrap().count, 4);
    // ...the signatures do not.
    let t = tampered(verify(&path, Some(&public(&key))));
    assert_eq!(
        (t.line, t.seq, t.problem),
        (4, Some(4), Problem::BadSignature)
    );

    // Without any signature it is reported as unsigned.
    forged.sig = None;
    all[3] = serde_json::to_string(&forged).unwrap();
    write_lines(&path, &all);
    let t = tampered(verify(&path, Some(&public(&key))));
    assert_eq!((t.line, t.problem), (4, Problem::MissingSignature));
    // And even without the key, an unsigned entry in a signed log stands out.
    let t = tampered(verify(&path, None));
    assert_eq!((t.line, t.problem), (4, Problem::MixedSigning));
}

#[test]
fn a_signed_log_rejects_a_rechained_forgery() {
    let (tmp, path) = temp_log();
    let key = audit_key(tmp.path(), "audit");
    let log = AuditLog::open(&path, Some(key.clone())).unwrap();
    for i in 1..=5 {
        log.append(refused(i)).unwrap();
    }
    drop(log);
    assert_eq!(verify(&path, Some(&public(&key))).unwrap().count, 5);

    // Change entry 2 and rebuild every hash after it, keeping the old signatures.
    let mut all = lines(&path);
    let mut e = entry(&all[1]);
    e.event = refused(77);
    all[1] = serde_json::to_string(&e).unwrap();
    rechain(&mut all, 1);
    write_lines(&path, &all);

    assert_eq!(
        verify(&path, None).unwrap().count,
        5,
        "the chain alone is fooled"
    );
    let t = tampered(verify(&path, Some(&public(&key))));
    assert_eq!(
        (t.line, t.seq, t.problem),
        (2, Some(2), Problem::BadSignature)
    );

    // A different key does not verify the genuine entries either.
    let other = audit_key(tmp.path(), "other");
    let t = tampered(verify(&path, Some(&public(&other))));
    assert_eq!((t.line, t.problem), (1, Problem::BadSignature));
}

#[test]
fn truncation_is_caught_with_the_kept_head() {
    let (tmp, path, head) = unsigned_log(6);
    let head_file = tmp.path().join("audit.head");
    head.save(&head_file).unwrap();
    let mut all = lines(&path);
    all.truncate(4);
    write_lines(&path, &all);

    // Without the head the shorter log looks intact: the limit of a bare chain.
    assert_eq!(verify(&path, None).unwrap().count, 4);
    let kept = Head::load(&head_file).unwrap();
    let t = tampered(verify_with_head(&path, None, Some(&kept)));
    assert_eq!((t.line, t.seq), (5, Some(5)));
    assert_eq!(t.problem, Problem::Truncated { last: 4, head: 6 });

    // Truncated to nothing.
    std::fs::write(&path, b"").unwrap();
    let t = tampered(verify_with_head(&path, None, Some(&kept)));
    assert_eq!(t.problem, Problem::Truncated { last: 0, head: 6 });
}

#[test]
fn a_rewritten_log_does_not_match_the_kept_head() {
    let (_tmp, path, head) = unsigned_log(4);
    let mut all = lines(&path);
    let mut e = entry(&all[2]);
    e.event = refused(99);
    all[2] = serde_json::to_string(&e).unwrap();
    rechain(&mut all, 2);
    write_lines(&path, &all);
    assert_eq!(verify(&path, None).unwrap().count, 4);
    let t = tampered(verify_with_head(&path, None, Some(&head)));
    assert_eq!((t.line, t.seq), (4, Some(4)));
    assert!(matches!(t.problem, Problem::HeadMismatch { .. }));
    // A head older than the log is fine: the log has grown since.
    let older = Head {
        seq: 2,
        hash: entry(&all[1]).hash,
    };
    assert_eq!(
        verify_with_head(&path, None, Some(&older)).unwrap().count,
        4
    );
}

#[test]
fn a_cut_last_line_is_reported_and_repaired_on_open() {
    let (_tmp, path, _) = unsigned_log(3);
    // An append interrupted half-way (never acknowledged, so never checkpointed).
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(br#"{"seq":4,"time":"2026-"#);
    std::fs::write(&path, &text).unwrap();
    let t = tampered(verify(&path, None));
    assert_eq!((t.line, t.problem), (4, Problem::IncompleteLastLine));

    // Opening treats it as an interrupted append and cuts it.
    let log = AuditLog::open(&path, None).unwrap();
    assert!(log.recovered_bytes() > 0);
    assert_eq!(log.head().unwrap().seq, 3);
    assert_eq!(log.append(refused(4)).unwrap().seq, 4);
    assert_eq!(verify(&path, None).unwrap().count, 4);
}

#[test]
fn open_refuses_a_tampered_log_and_mixed_signing() {
    let (tmp, path, _) = unsigned_log(3);
    let mut all = lines(&path);
    all.swap(0, 1);
    write_lines(&path, &all);
    assert!(matches!(
        AuditLog::open(&path, None),
        Err(AuditError::Tampered { .. })
    ));

    let (_tmp2, unsigned, _) = unsigned_log(1);
    let key = audit_key(tmp.path(), "audit");
    assert!(matches!(
        AuditLog::open(&unsigned, Some(key.clone())),
        Err(AuditError::SigningMismatch { signed: false, .. })
    ));
    let signed = tmp.path().join("signed.log");
    AuditLog::open(&signed, Some(key))
        .unwrap()
        .append(refused(1))
        .unwrap();
    assert!(matches!(
        AuditLog::open(&signed, None),
        Err(AuditError::SigningMismatch { signed: true, .. })
    ));
}

#[test]
fn only_audit_keys_sign() {
    let (tmp, path) = temp_log();
    let home = Arc::new(
        SoftwareHome::create(&SoftwareConfig {
            dir: tmp.path().join("keys"),
            kek: KekSource::Passphrase(SecretSource::Provided(SecretBytes::from_slice(b"x"))),
        })
        .unwrap(),
    );
    let id = home.id().clone();
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home);
    let tls = store
        .generate(
            &id,
            &KeyId::new("tls").unwrap(),
            KeyRole::TlsServer,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    let err = AuditLog::open(&path, Some(store.signing_key(&tls).unwrap())).unwrap_err();
    assert!(matches!(err, AuditError::NotAnAuditKey { .. }), "{err}");
}

#[test]
fn the_public_key_round_trips_through_pem() {
    let (tmp, path) = temp_log();
    let key = audit_key(tmp.path(), "audit");
    let log = AuditLog::open(&path, Some(key.clone())).unwrap();
    log.append(refused(1)).unwrap();
    let pem = log.public_key().unwrap().unwrap().to_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let back = AuditPublicKey::from_pem(pem.as_bytes()).unwrap();
    assert!(verify(&path, Some(&back)).unwrap().signatures_checked);
    assert!(AuditPublicKey::from_pem(b"not a key").is_err());
}

#[test]
fn many_threads_append_one_chain() {
    let (tmp, path) = temp_log();
    let key = audit_key(tmp.path(), "audit");
    let log = Arc::new(AuditLog::open(&path, Some(key.clone())).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| log.append(refused(t * 100 + i)).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    let v = verify(&path, Some(&public(&key))).unwrap();
    assert_eq!(v.count, 200);
    assert_eq!(v.head, log.head());
}

/// Child side of the kill -9 test: appends until killed, printing each acknowledged seq.
/// Run only by `acknowledged_appends_survive_kill_9`.
#[test]
#[ignore = "helper process for acknowledged_appends_survive_kill_9"]
fn child_appender() {
    let path = std::env::var_os("AUDIT_CHILD_LOG").expect("run by the kill -9 test");
    let log = AuditLog::open(Path::new(&path), None).unwrap();
    let stdout = std::io::stdout();
    for i in 0.. {
        let head = log.append(refused(i)).unwrap();
        let mut out = stdout.lock();
        writeln!(out, "acked {}", head.seq).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_appends_survive_kill_9() {
    let (_tmp, path) = temp_log();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "audit::child_appender",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AUDIT_CHILD_LOG", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut acked = 0;
    let mut line = String::new();
    while acked < 100 {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "child ended early"
        );
        if let Some(n) = line.trim().strip_prefix("acked ") {
            acked = n.parse().unwrap();
        }
    }
    child.kill().unwrap(); // SIGKILL, possibly in the middle of an append
    child.wait().unwrap();

    // Every acknowledged entry is there and intact; an interrupted last line is cut on open.
    let log = AuditLog::open(&path, None).unwrap();
    let head = log.head().unwrap();
    assert!(head.seq >= acked, "acked {acked}, on disk {}", head.seq);
    assert_eq!(log.append(refused(0)).unwrap().seq, head.seq + 1);
    assert_eq!(verify(&path, None).unwrap().count, head.seq + 1);
}

// === checkpoints (issue 9, M3) ===

/// A signed log with `n` entries and its checkpoint file.
fn signed_log(n: u64) -> (tempfile::TempDir, PathBuf, SigningKey) {
    let (tmp, path) = temp_log();
    let key = audit_key(tmp.path(), "audit");
    let log = AuditLog::open(&path, Some(key.clone())).unwrap();
    for i in 1..=n {
        log.append(refused(i)).unwrap();
    }
    (tmp, path, key)
}

fn head_file(path: &Path) -> PathBuf {
    Layout::for_log(path).head_file
}

fn refused_open(result: Result<AuditLog, AuditError>) -> (PathBuf, Tampered) {
    match result {
        Err(AuditError::Tampered { path, tampered }) => (path, tampered),
        other => panic!("expected the open to be refused, got {other:?}"),
    }
}

#[test]
fn entries_cut_off_the_end_are_refused_at_open_and_by_verify_with_the_checkpoint() {
    // The proof of M3: keep entries 1-9 of 97 and restart.
    let (_tmp, path, key) = signed_log(97);
    let checkpoint = Checkpoint::load(&head_file(&path)).unwrap().unwrap();
    assert_eq!(checkpoint.seq, 97);
    assert!(checkpoint.verifies(&public(&key), Purpose::Head));
    let mut all = lines(&path);
    all.truncate(9);
    write_lines(&path, &all);

    let (_, t) = refused_open(AuditLog::open(&path, Some(key.clone())));
    assert_eq!(t.problem, Problem::Truncated { last: 9, head: 97 });
    // The bare chain and its signatures are fooled; the checkpoint is not.
    assert_eq!(verify(&path, Some(&public(&key))).unwrap().count, 9);
    let t = tampered(verify_with_head(
        &path,
        Some(&public(&key)),
        Some(&checkpoint.head()),
    ));
    assert_eq!(t.problem, Problem::Truncated { last: 9, head: 97 });
}

#[test]
fn a_forged_signature_in_the_middle_is_refused_at_open() {
    let (tmp, path, key) = signed_log(10);
    // Entry 5 keeps its hash but carries another key's signature.
    let other = audit_key(tmp.path(), "other");
    let forger = AuditLog::open(&tmp.path().join("forger.log"), Some(other)).unwrap();
    forger.append(refused(5)).unwrap();
    let forged_sig = entry(&lines(&tmp.path().join("forger.log"))[0]).sig;
    let mut all = lines(&path);
    let mut e = entry(&all[4]);
    e.sig = forged_sig;
    all[4] = serde_json::to_string(&e).unwrap();
    write_lines(&path, &all);

    assert_eq!(
        verify(&path, None).unwrap().count,
        10,
        "the chain is intact"
    );
    let (_, t) = refused_open(AuditLog::open(&path, Some(key)));
    assert_eq!(
        (t.line, t.seq, t.problem),
        (5, Some(5), Problem::BadSignature)
    );
}

#[test]
fn a_missing_or_forged_checkpoint_is_refused() {
    let (_tmp, path, key) = signed_log(5);
    let file = head_file(&path);
    let genuine = Checkpoint::load(&file).unwrap().unwrap();

    // Moved forward to an entry that does not exist, keeping the old signature.
    let forged = Checkpoint {
        seq: 4,
        ..genuine.clone()
    };
    forged.save(&file).unwrap();
    let (at, t) = refused_open(AuditLog::open(&path, Some(key.clone())));
    assert_eq!(
        (at, t.problem),
        (file.clone(), Problem::BadCheckpointSignature)
    );

    std::fs::remove_file(&file).unwrap();
    assert!(matches!(
        AuditLog::open(&path, Some(key.clone())),
        Err(AuditError::MissingCheckpoint { .. })
    ));

    // Adopting the log: the head that verify prints, saved as the checkpoint.
    let verified = verify(&path, Some(&public(&key))).unwrap();
    verified.head.unwrap().save(&file).unwrap();
    let log = AuditLog::open(&path, Some(key.clone())).unwrap();
    assert_eq!(log.append(refused(6)).unwrap().seq, 6);
    let now = log.checkpoint().unwrap();
    assert_eq!(now.seq, 6);
    assert!(now.verifies(&public(&key), Purpose::Head), "signed again");
}

// === segments and retention (issue 10, finding 1) ===

fn small_segments(path: &Path, keep: usize) -> Layout {
    Layout {
        segment_bytes: 1000,
        keep_segments: keep,
        ..Layout::for_log(path)
    }
}

#[test]
fn the_log_rotates_into_segments_and_the_chain_continues_across_them() {
    let (tmp, path) = temp_log();
    let key = audit_key(tmp.path(), "audit");
    let log = AuditLog::open_with(&path, Some(key.clone()), small_segments(&path, 0)).unwrap();
    for i in 1..=40 {
        log.append(refused(i)).unwrap();
    }
    drop(log);
    let segments = closed_segments(&path).unwrap();
    assert!(segments.len() >= 5, "{segments:?}");
    assert_eq!(segments[0].0, 1);
    let v = verify(&path, Some(&public(&key))).unwrap();
    assert_eq!((v.count, v.head.unwrap().seq), (40, 40));
    assert_eq!(v.segments, segments.len());

    // Reopening walks every segment and continues the chain.
    let log = AuditLog::open_with(&path, Some(key.clone()), small_segments(&path, 0)).unwrap();
    assert_eq!(log.append(refused(41)).unwrap().seq, 41);
    drop(log);
    assert_eq!(verify(&path, Some(&public(&key))).unwrap().count, 41);

    // Tampering in a middle segment is named there, and the CSE refuses to continue.
    let middle = &closed_segments(&path).unwrap()[2].1;
    let mut all = lines(middle);
    let mut e = entry(&all[1]);
    e.event = refused(99);
    all[1] = serde_json::to_string(&e).unwrap();
    write_lines(middle, &all);
    match verify(&path, None) {
        Err(VerifyError::Tampered { path: at, tampered }) => {
            assert_eq!(&at, middle);
            assert_eq!(tampered.line, 2);
            assert!(matches!(tampered.problem, Problem::HashMismatch { .. }));
        }
        other => panic!("expected tampering in {middle:?}, got {other:?}"),
    }
    let (at, _) = refused_open(AuditLog::open_with(
        &path,
        Some(key),
        small_segments(&path, 0),
    ));
    assert_eq!(&at, middle);
}

#[test]
fn retention_removes_the_oldest_segments_behind_a_signed_anchor() {
    let (tmp, path) = temp_log();
    let key = audit_key(tmp.path(), "audit");
    let log = AuditLog::open_with(&path, Some(key.clone()), small_segments(&path, 2)).unwrap();
    for i in 1..=40 {
        log.append(refused(i)).unwrap();
    }
    drop(log);
    let segments = closed_segments(&path).unwrap();
    assert_eq!(segments.len(), 2, "{segments:?}");
    let anchor = Checkpoint::load(&anchor_file(&path)).unwrap().unwrap();
    assert_eq!(
        anchor.seq + 1,
        segments[0].0,
        "the anchor is where the kept chain starts"
    );
    let v = verify(&path, Some(&public(&key))).unwrap();
    assert_eq!(v.head.unwrap().seq, 40);
    assert_eq!(v.anchor, Some(anchor.head()));
    assert_eq!(v.count, 40 - anchor.seq);
    // The CSE reopens the shortened log and continues.
    let log = AuditLog::open_with(&path, Some(key.clone()), small_segments(&path, 2)).unwrap();
    assert_eq!(log.append(refused(41)).unwrap().seq, 41);
    drop(log);

    // Removing the oldest kept segment by hand shows against the anchor.
    let oldest = closed_segments(&path).unwrap()[0].1.clone();
    let saved = std::fs::read(&oldest).unwrap();
    std::fs::remove_file(&oldest).unwrap();
    let t = tampered(verify(&path, Some(&public(&key))));
    assert!(matches!(t.problem, Problem::UnexpectedSeq { .. }), "{t}");
    std::fs::write(&oldest, saved).unwrap();

    // An anchor moved by hand does not carry a valid signature.
    let moved = Checkpoint {
        seq: anchor.seq + 3,
        ..anchor
    };
    moved.save(&anchor_file(&path)).unwrap();
    let t = tampered(verify(&path, Some(&public(&key))));
    assert_eq!(t.problem, Problem::BadCheckpointSignature);
}

/// A new log has its checkpoint before its first entry, so a crash between the first entry's
/// sync and the first checkpoint (simulated: the checkpoint put back to what the empty log
/// had) leaves a log longer than its checkpoint, which the next open adopts, rather than a
/// log with entries and no checkpoint, which it would refuse.
#[test]
fn a_crash_before_the_first_checkpoint_does_not_stop_the_next_start() {
    let (tmp, path) = temp_log();
    let head_path = head_file(&path);
    let log = AuditLog::open(&path, None).unwrap();
    assert!(head_path.exists(), "an empty log has its checkpoint");
    let genesis = std::fs::read(&head_path).unwrap();
    let head = log.append(refused(1)).unwrap();
    drop(log);
    std::fs::write(&head_path, genesis).unwrap();
    let log = AuditLog::open(&path, None).expect("a log longer than its checkpoint opens");
    assert_eq!(log.head(), Some(head));
    assert_eq!(log.checkpoint().map(|c| c.seq), Some(1), "moved up");
    drop(log);
    // Deleting the checkpoint is still caught.
    std::fs::remove_file(&head_path).unwrap();
    assert!(AuditLog::open(&path, None).is_err());
    drop(tmp);
}

/// The log owns its writer lock: a second writer on the same log (another process, or this
/// one) is refused while the first is open, so no caller can fork the chain by forgetting to
/// lock, and a lock taken ahead (to act only when the action can be audited) opens the log.
#[test]
fn a_second_writer_is_refused_while_the_log_is_open() {
    let (_tmp, path) = temp_log();
    let log = AuditLog::open(&path, None).unwrap();
    log.append(refused(1)).unwrap();
    assert!(matches!(
        AuditLog::open(&path, None),
        Err(AuditError::InUse { path: p }) if p == path
    ));
    assert!(
        WriterLock::try_take(&path).unwrap().is_none(),
        "held by the log"
    );
    drop(log);
    let lock = WriterLock::try_take(&path)
        .unwrap()
        .expect("released with the log");
    let log = AuditLog::open_locked(lock, None, Layout::for_log(&path)).unwrap();
    assert_eq!(log.append(refused(2)).unwrap().seq, 2);
    assert!(matches!(
        AuditLog::open(&path, None),
        Err(AuditError::InUse { .. })
    ));
}
