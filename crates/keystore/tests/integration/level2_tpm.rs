//! Level 2: TPM 2.0, against a swtpm started by each test on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use crate::support;

use keystore::tpm::{TpmConfig, TpmHome};
use keystore::{
    Algorithm, ImportPolicy, KeyHome, KeyId, KeyRole, KeyStore, KeyStoreError, KeyStorePolicy,
    Level, SecretBytes,
};
use openssl::pkey::PKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::swtpm;

fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

fn config(tcti: String, dir: &Path) -> TpmConfig {
    TpmConfig {
        tcti,
        dir: dir.to_path_buf(),
    }
}

fn openssl_verify(spki: &[u8], message: &[u8], sig: &keystore::Signature) -> bool {
    let key = PKey::public_key_from_der(spki).unwrap().ec_key().unwrap();
    let sig = openssl::ecdsa::EcdsaSig::from_der(sig.as_der()).unwrap();
    sig.verify(&openssl::sha::sha256(message), &key).unwrap()
}

#[test]
fn tpm_keys_sign_and_mac_and_survive_a_restart_of_the_home() {
    let Some(tpm) = swtpm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tpm-keys");
    let home = TpmHome::open(&config(tpm.tcti(), &dir)).unwrap();
    assert_eq!(home.level(), Level::TrustedEnvironment);

    let ca = home
        .generate(&id("ca"), KeyRole::CaSigning, Algorithm::EcdsaP256Sha256)
        .unwrap();
    assert_eq!(ca.level(), Level::TrustedEnvironment);
    let spki = home.public_key(&ca).unwrap();
    let sig = home.sign(&ca, b"tbsCertificate").unwrap();
    assert!(openssl_verify(spki.as_der(), b"tbsCertificate", &sig));
    assert!(home.verify(&ca, b"tbsCertificate", &sig).is_ok());

    let psk = home
        .generate(&id("psk"), KeyRole::PskMaster, Algorithm::HmacSha256)
        .unwrap();
    let m = home.hmac(&psk, b"label").unwrap();
    assert!(m.verify(home.hmac(&psk, b"label").unwrap().expose()));
    assert!(!m.verify(home.hmac(&psk, b"label2").unwrap().expose()));
    // derive() is HKDF-Expand over TPM HMACs: T(1) = HMAC(key, info || 0x01).
    let okm = home.derive(&psk, b"info", 32).unwrap();
    assert!(home.hmac(&psk, b"info\x01").unwrap().verify(okm.expose()));
    assert!(matches!(
        home.hmac(&psk, &[0u8; 1025]),
        Err(KeyStoreError::InputTooLong { .. })
    ));

    // Only wrapped blobs are on disk; a new home (new TPM connection) loads them again.
    drop(home);
    let home = TpmHome::open(&config(tpm.tcti(), &dir)).unwrap();
    let ca2 = home.key(&id("ca")).unwrap();
    assert_eq!(ca2, ca);
    assert_eq!(home.public_key(&ca2).unwrap(), spki);
    assert!(openssl_verify(
        spki.as_der(),
        b"again",
        &home.sign(&ca2, b"again").unwrap()
    ));
    assert!(m.verify(
        home.hmac(&home.key(&id("psk")).unwrap(), b"label")
            .unwrap()
            .expose()
    ));
    let list = home.list().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list
        .iter()
        .all(|k| k.handle.level() == Level::TrustedEnvironment));

    // The policy's CA minimum (level 2) is met.
    let home = Arc::new(home);
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home.clone());
    let ca = store
        .open(home.id(), &id("ca"), KeyRole::CaSigning)
        .unwrap();
    store.signing_key(&ca).unwrap().sign(b"crl").unwrap();
    // ... but not an HSM-only minimum.
    let strict =
        KeyStore::new(KeyStorePolicy::default().with_minimum(KeyRole::CaSigning, Level::Hsm))
            .with_home(home.clone());
    let err = strict
        .open(home.id(), &id("ca"), KeyRole::CaSigning)
        .unwrap_err();
    assert!(
        err.to_string().contains("level 2") && err.to_string().contains("at least level 3"),
        "{err}"
    );

    home.delete(&ca).unwrap();
    assert!(matches!(
        home.key(&id("ca")),
        Err(KeyStoreError::KeyNotFound { .. })
    ));
}

#[test]
fn tpm_refuses_import_and_has_no_aead() {
    let Some(tpm) = swtpm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = TpmHome::open(&config(tpm.tcti(), &tmp.path().join("k"))).unwrap();
    assert_eq!(home.import_policy(), ImportPolicy::Refused);
    let err = home
        .import(
            &id("psk"),
            KeyRole::PskMaster,
            Algorithm::HmacSha256,
            SecretBytes::from_slice(&[1; 32]),
        )
        .unwrap_err();
    assert!(matches!(err, KeyStoreError::ImportRefused { .. }), "{err}");
    assert!(matches!(
        home.generate(&id("wrap"), KeyRole::PseudonymMapping, Algorithm::Aes256Gcm),
        Err(KeyStoreError::AlgorithmUnsupported { .. })
    ));
}

#[test]
fn an_unreachable_tpm_is_a_clear_error() {
    let Some(mut tpm) = swtpm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err =
        TpmHome::open(&config(format!("swtpm:host=127.0.0.1,port={closed}"), &dir)).unwrap_err();
    assert!(matches!(err, KeyStoreError::TpmUnreachable { .. }), "{err}");

    // The TPM goes away after start-up: operations fail, nothing falls back.
    let home = TpmHome::open(&config(tpm.tcti(), &dir)).unwrap();
    let k = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    home.sign(&k, b"ok").unwrap();
    tpm.kill();
    let err = home.sign(&k, b"now").unwrap_err();
    assert!(matches!(err, KeyStoreError::TpmUnreachable { .. }), "{err}");
}

fn edit_key_file(dir: &Path, id: &str, f: impl FnOnce(&mut serde_json::Value)) {
    let path: PathBuf = dir.join(format!("{id}.tpmkey"));
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn altered_blobs_and_metadata_are_detected() {
    let Some(tpm) = swtpm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let home = TpmHome::open(&config(tpm.tcti(), &dir)).unwrap();
    for name in ["a", "b", "c", "d"] {
        home.generate(&id(name), KeyRole::AuditLog, Algorithm::EcdsaP256Sha256)
            .unwrap();
    }
    drop(home);
    // a: one bit of the wrapped private blob flipped (the TPM's integrity check fails).
    edit_key_file(&dir, "a", |v| {
        let private = v["private"].as_str().unwrap().to_owned();
        let mut bytes = hex::decode(&private).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 1;
        v["private"] = hex::encode(bytes).into();
    });
    // b: the role rewritten (the auth-value binding fails).
    edit_key_file(&dir, "b", |v| v["role"] = "ca-signing".into());
    // c: not JSON at all.
    std::fs::write(dir.join("c.tpmkey"), b"garbage").unwrap();
    // d: another key's blob under this name.
    std::fs::copy(dir.join("a.tpmkey"), dir.join("d.tpmkey")).unwrap();

    let home = TpmHome::open(&config(tpm.tcti(), &dir)).unwrap();
    for name in ["a", "b", "c", "d"] {
        let err = home.key(&id(name)).unwrap_err();
        assert!(
            matches!(err, KeyStoreError::Corrupted { .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains(&format!("{name}.tpmkey")),
            "{name}: {err}"
        );
    }
}

/// A raw connection to the TPM, beside the home (swtpm serves one connection at a time:
/// the caller drops it before the home connects again).
fn raw_tpm(tcti: &str) -> tss_esapi::Context {
    use std::str::FromStr;
    tss_esapi::Context::new(tss_esapi::TctiNameConf::from_str(tcti).unwrap()).unwrap()
}

/// The transient objects loaded in the TPM now.
fn transient_objects(ctx: &mut tss_esapi::Context) -> Vec<tss_esapi::handles::TpmHandle> {
    use tss_esapi::constants::tss::TPM2_TRANSIENT_FIRST;
    use tss_esapi::constants::CapabilityType;
    use tss_esapi::structures::CapabilityData;
    match ctx
        .get_capability(CapabilityType::Handles, TPM2_TRANSIENT_FIRST, 64)
        .unwrap()
        .0
    {
        CapabilityData::Handles(list) => list.into_inner(),
        other => panic!("not a handle list: {other:?}"),
    }
}

/// How many transient objects the TPM holds.
fn loaded(tcti: &str) -> usize {
    transient_objects(&mut raw_tpm(tcti)).len()
}

#[test]
fn closing_or_dropping_the_home_flushes_what_it_loaded() {
    let Some(tpm) = swtpm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let home = TpmHome::open(&config(tpm.tcti(), &dir)).unwrap();
    let tls = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    home.sign(&tls, b"loads the key").unwrap();
    home.close();
    // Closed: nothing is left in the TPM, and the home says it is closed.
    let err = home.sign(&tls, b"after close").unwrap_err();
    assert!(matches!(err, KeyStoreError::HomeClosed { .. }), "{err}");
    assert!(err.to_string().contains("is closed"), "{err}");
    home.close();
    assert_eq!(loaded(&tpm.tcti()), 0);
    drop(home);

    // More opens in a row than the TPM has object slots (swtpm: 3), each using a key and
    // dropped without close: each leaves nothing behind.
    for round in 0..5 {
        let home = TpmHome::open(&config(tpm.tcti(), &dir)).unwrap();
        home.sign(&home.key(&id("tls")).unwrap(), b"again").unwrap();
        drop(home);
        assert_eq!(loaded(&tpm.tcti()), 0, "round {round}");
    }
}

#[test]
fn a_tpm_that_answers_an_error_is_not_called_unreachable() {
    let Some(tpm) = swtpm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    // Every object slot taken by objects another program left loaded: tpm2_createprimary
    // with no resource manager leaves its primary key in the TPM, as a process killed with
    // objects loaded does.
    if support::skip_unless(
        support::on_path("tpm2_createprimary"),
        "tpm2-tools (Debian package tpm2-tools)",
    )
    .is_some()
    {
        return;
    }
    let mut refused = None;
    for n in 0..16 {
        let out = std::process::Command::new("tpm2_createprimary")
            .args(["-C", "o", "-c"])
            .arg(tmp.path().join(format!("primary-{n}.ctx")))
            .env("TPM2TOOLS_TCTI", tpm.tcti())
            .output()
            .unwrap();
        if !out.status.success() {
            refused = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            break;
        }
    }
    let refused = refused.expect("the TPM's object slots fill up");
    assert!(refused.contains("0x902"), "{refused}");
    let err = TpmHome::open(&config(tpm.tcti(), &dir)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, KeyStoreError::TpmRefused { .. }), "{text}");
    for part in [
        "refused to create the storage primary key",
        "the TPM answered 0x902",
        "out of memory for object contexts",
        "tpm2_flushcontext",
        "resource manager",
    ] {
        assert!(text.contains(part), "{text} lacks {part}");
    }
    assert!(!text.contains("unreachable"), "{text}");
    // Flushed, the home opens again.
    let mut ctx = raw_tpm(&tpm.tcti());
    for handle in transient_objects(&mut ctx) {
        let object = ctx.tr_from_tpm_public(handle).unwrap();
        ctx.flush_context(object).unwrap();
    }
    drop(ctx);
    TpmHome::open(&config(tpm.tcti(), &dir)).unwrap();
}

/// Defines an NV index at `index` with the owner's authorisation (raw, beside the home).
fn define_raw_nv(tcti: &str, index: u32, counter: bool, orderly: bool) {
    use tss_esapi::attributes::NvIndexAttributesBuilder;
    use tss_esapi::constants::NvIndexType;
    use tss_esapi::handles::NvIndexTpmHandle;
    use tss_esapi::interface_types::algorithm::HashingAlgorithm;
    use tss_esapi::interface_types::resource_handles::Provision;
    use tss_esapi::interface_types::session_handles::AuthSession;
    use tss_esapi::structures::NvPublicBuilder;
    let mut ctx = raw_tpm(tcti);
    ctx.set_sessions((Some(AuthSession::Password), None, None));
    let attributes = NvIndexAttributesBuilder::new()
        .with_nv_index_type(if counter {
            NvIndexType::Counter
        } else {
            NvIndexType::Ordinary
        })
        .with_auth_read(true)
        .with_auth_write(true)
        .with_orderly(orderly)
        .with_no_da(true)
        .build()
        .unwrap();
    let public = NvPublicBuilder::new()
        .with_nv_index(NvIndexTpmHandle::new(index).unwrap())
        .with_index_name_algorithm(HashingAlgorithm::Sha256)
        .with_index_attributes(attributes)
        .with_data_area_size(8)
        .build()
        .unwrap();
    ctx.nv_define_space(Provision::Owner, None, public).unwrap();
}

/// Deletes the NV index at `index` with the owner's authorisation.
fn undefine_raw_nv(tcti: &str, index: u32) {
    use tss_esapi::handles::{NvIndexTpmHandle, TpmHandle};
    use tss_esapi::interface_types::resource_handles::Provision;
    use tss_esapi::interface_types::session_handles::AuthSession;
    let mut ctx = raw_tpm(tcti);
    // Without a session: TSS 3.2's Esys_TR_FromTPMPublic crashes when given the password one.
    let handle = ctx
        .tr_from_tpm_public(TpmHandle::NvIndex(NvIndexTpmHandle::new(index).unwrap()))
        .unwrap();
    ctx.set_sessions((Some(AuthSession::Password), None, None));
    ctx.nv_undefine_space(Provision::Owner, handle.into())
        .unwrap();
}

#[test]
fn an_nv_counter_only_grows_across_restarts_and_re_definition() {
    use keystore::anchor::MonotonicCounter;
    let Some(tpm) = swtpm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let home = Arc::new(TpmHome::open(&config(tpm.tcti(), &dir)).unwrap());
    let counter = home.nv_counter("0x01800100").unwrap();
    assert_eq!(counter.name(), "TPM NV counter 0x01800100");
    assert_eq!(counter.read().unwrap(), None, "not defined yet");
    let first = counter.create().unwrap();
    assert_eq!(counter.read().unwrap(), Some(first));
    assert_eq!(counter.increment().unwrap(), first + 1);
    assert_eq!(counter.increment().unwrap(), first + 2);
    let err = counter.create().unwrap_err();
    assert!(matches!(err, KeyStoreError::AnchorUnusable { .. }), "{err}");
    home.close();
    drop((counter, home));

    // A new home (a restart of the CSE) reads where it was.
    let home = Arc::new(TpmHome::open(&config(tpm.tcti(), &dir)).unwrap());
    let counter = home.nv_counter("0x01800100").unwrap();
    assert_eq!(counter.read().unwrap(), Some(first + 2));
    home.close();
    drop((counter, home));

    // Deleted (the owner's authorisation) and defined again: it does not start lower.
    undefine_raw_nv(&tpm.tcti(), 0x0180_0100);
    let home = Arc::new(TpmHome::open(&config(tpm.tcti(), &dir)).unwrap());
    let counter = home.nv_counter("0x01800100").unwrap();
    assert_eq!(counter.read().unwrap(), None);
    let again = counter.create().unwrap();
    assert!(
        again >= first + 2,
        "re-defined at {again}, was at {}",
        first + 2
    );
}

#[test]
fn only_a_plain_counter_in_the_owners_range_is_an_nv_anchor() {
    use keystore::anchor::MonotonicCounter;
    let Some(tpm) = swtpm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    // Other indices a counter must not be mistaken for.
    define_raw_nv(&tpm.tcti(), 0x0180_0200, false, false);
    define_raw_nv(&tpm.tcti(), 0x0180_0201, true, true);
    let home = Arc::new(TpmHome::open(&config(tpm.tcti(), &dir)).unwrap());
    for (index, why) in [("0x01800200", "not a counter"), ("0x01800201", "orderly")] {
        let err = home.nv_counter(index).unwrap().read().unwrap_err();
        assert!(matches!(err, KeyStoreError::AnchorUnusable { .. }), "{err}");
        assert!(err.to_string().contains(why), "{index}: {err}");
    }
    for index in ["0x01000000", "0x81000001", "audit", ""] {
        let err = home.nv_counter(index).unwrap_err();
        assert!(matches!(err, KeyStoreError::AnchorUnusable { .. }), "{err}");
    }
    // Defining over an existing index is refused, and the index is left alone.
    let err = home.nv_counter("0x01800200").unwrap().create().unwrap_err();
    assert!(matches!(err, KeyStoreError::AnchorUnusable { .. }), "{err}");
}
