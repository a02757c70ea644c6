//! Level 1: the encrypted software store.
#![allow(clippy::unwrap_used)]

use crate::support;

use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::{
    Algorithm, KeyHome, KeyId, KeyOrigin, KeyRole, KeyStore, KeyStoreError, KeyStorePolicy, Level,
    Sealed, SecretBytes, SecretSource, Signature,
};
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::PKey;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::write_private;

fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

fn passphrase(p: &str) -> KekSource {
    KekSource::Passphrase(SecretSource::Provided(SecretBytes::from_slice(
        p.as_bytes(),
    )))
}

fn config(dir: &Path, kek: KekSource) -> SoftwareConfig {
    SoftwareConfig {
        dir: dir.to_path_buf(),
        kek,
    }
}

fn new_home() -> (tempfile::TempDir, SoftwareHome, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let home = SoftwareHome::create(&config(&dir, passphrase("correct horse"))).unwrap();
    (tmp, home, dir)
}

/// Verifies with plain OpenSSL from the exported SPKI, outside the key store.
fn openssl_verify(spki: &[u8], message: &[u8], sig: &Signature) -> bool {
    let key = PKey::public_key_from_der(spki).unwrap().ec_key().unwrap();
    let sig = EcdsaSig::from_der(sig.as_der()).unwrap();
    sig.verify(&openssl::sha::sha256(message), &key).unwrap()
}

#[test]
fn every_algorithm_works_and_signatures_verify_outside() {
    let (_tmp, home, _) = new_home();
    let tls = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    assert_eq!(tls.level(), Level::Software);
    let sig = home.sign(&tls, b"hello").unwrap();
    let spki = home.public_key(&tls).unwrap();
    assert!(openssl_verify(spki.as_der(), b"hello", &sig));
    assert!(home.verify(&tls, b"hello", &sig).is_ok());
    assert!(matches!(
        home.verify(&tls, b"hellO", &sig),
        Err(KeyStoreError::SignatureInvalid { .. })
    ));

    let psk = home
        .generate(&id("psk"), KeyRole::PskMaster, Algorithm::HmacSha256)
        .unwrap();
    let a = home.hmac(&psk, b"label").unwrap();
    assert!(a.verify(home.hmac(&psk, b"label").unwrap().expose()));
    assert!(!a.verify(home.hmac(&psk, b"other").unwrap().expose()));

    let wrap = home
        .generate(&id("wrap"), KeyRole::PseudonymMapping, Algorithm::Aes256Gcm)
        .unwrap();
    let sealed = home.encrypt(&wrap, b"ae-123", b"real identity").unwrap();
    assert_eq!(
        home.decrypt(&wrap, b"ae-123", &sealed).unwrap().expose(),
        b"real identity"
    );
    assert!(matches!(
        home.decrypt(&wrap, b"ae-124", &sealed),
        Err(KeyStoreError::DecryptFailed { .. })
    ));
    let mut bytes = sealed.as_bytes().to_vec();
    bytes[14] ^= 1;
    assert!(matches!(
        home.decrypt(&wrap, b"ae-123", &Sealed::from_bytes(bytes)),
        Err(KeyStoreError::DecryptFailed { .. })
    ));

    // Operations that do not fit the algorithm are refused, not attempted.
    assert!(matches!(
        home.sign(&psk, b"x"),
        Err(KeyStoreError::OperationUnsupported { .. })
    ));
    assert!(matches!(
        home.hmac(&tls, b"x"),
        Err(KeyStoreError::OperationUnsupported { .. })
    ));
    assert!(matches!(
        home.public_key(&wrap),
        Err(KeyStoreError::OperationUnsupported { .. })
    ));
    // Roles accept only fitting algorithms.
    assert!(matches!(
        home.generate(&id("ca"), KeyRole::CaSigning, Algorithm::Aes256Gcm),
        Err(KeyStoreError::AlgorithmNotAllowedForRole { .. })
    ));
}

#[test]
fn hkdf_expand_matches_rfc5869_and_hmac_matches_openssl() {
    let (_tmp, home, _) = new_home();
    // RFC 5869 test case 1: PRK, info, L = 42 -> OKM.
    let prk =
        hex::decode("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5").unwrap();
    let key = home
        .import(
            &id("km"),
            KeyRole::PskMaster,
            Algorithm::HmacSha256,
            SecretBytes::new(prk.clone()),
        )
        .unwrap();
    let okm = home
        .derive(&key, &hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap(), 42)
        .unwrap();
    assert_eq!(
        hex::encode(okm.expose()),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
    let mut signer = openssl::sign::Signer::new(
        openssl::hash::MessageDigest::sha256(),
        &PKey::hmac(&prk).unwrap(),
    )
    .unwrap();
    assert!(home
        .hmac(&key, b"data")
        .unwrap()
        .verify(&signer.sign_oneshot_to_vec(b"data").unwrap()));
    assert!(matches!(
        home.derive(&key, b"", 255 * 32 + 1),
        Err(KeyStoreError::InputTooLong { .. })
    ));
}

#[test]
fn keys_survive_reopen_and_list_shows_metadata_only() {
    let (_tmp, home, dir) = new_home();
    let tls = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let spki = home.public_key(&tls).unwrap();
    let secret = b"0123456789abcdef0123456789abcdef".to_vec();
    home.import(
        &id("audit"),
        KeyRole::AuditLog,
        Algorithm::HmacSha256,
        SecretBytes::new(secret.clone()),
    )
    .unwrap();
    home.sign(&tls, b"x").unwrap();
    drop(home);

    let home = SoftwareHome::open(&config(&dir, passphrase("correct horse"))).unwrap();
    let tls = home.key(&id("tls")).unwrap();
    assert_eq!(tls.role(), KeyRole::TlsServer);
    assert_eq!(home.public_key(&tls).unwrap(), spki);
    home.sign(&tls, b"y").unwrap();
    let list = home.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].handle.id().as_str(), "audit");
    assert_eq!(list[0].origin, KeyOrigin::Imported);
    assert!(list[0].last_used.is_none());
    assert_eq!(list[1].handle.id().as_str(), "tls");
    assert_eq!(list[1].origin, KeyOrigin::Generated);
    assert!(list[1].last_used.is_some());
    assert!(list[1].created <= std::time::SystemTime::now());
    let shown = format!("{list:?}");
    assert!(!shown.contains("0123456789abcdef"), "{shown}");

    // At rest, neither the raw key nor its hex appears in any file.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()));
        let hexed = hex::encode(&secret);
        assert!(!bytes.windows(hexed.len()).any(|w| w == hexed.as_bytes()));
    }
}

#[test]
fn wrong_passphrase_and_missing_store_are_refused() {
    let (_tmp, home, dir) = new_home();
    drop(home);
    let err = SoftwareHome::open(&config(&dir, passphrase("wrong horse"))).unwrap_err();
    assert!(
        matches!(err, KeyStoreError::WrongPassphrase { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    let err = SoftwareHome::open(&config(&dir.join("nope"), passphrase("x"))).unwrap_err();
    assert!(matches!(err, KeyStoreError::NotInitialised { .. }), "{err}");
    let err = SoftwareHome::open(&config(
        &dir,
        KekSource::Passphrase(SecretSource::Env("CSE_TEST_UNSET_VAR".into())),
    ))
    .unwrap_err();
    assert!(
        matches!(err, KeyStoreError::SecretUnavailable { .. }),
        "{err}"
    );
    // Creating over an existing store is refused.
    assert!(SoftwareHome::create(&config(&dir, passphrase("correct horse"))).is_err());
}

#[test]
fn key_file_kek_works_and_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let kek = tmp.path().join("kek");
    write_private(&kek, format!("{}\n", "ab".repeat(32)).as_bytes());
    let dir = tmp.path().join("keys");
    let home = SoftwareHome::create(&config(&dir, KekSource::KeyFile(kek.clone()))).unwrap();
    let k = home
        .generate(&id("ca"), KeyRole::CaSigning, Algorithm::EcdsaP256Sha256)
        .unwrap();
    drop(home);
    let home = SoftwareHome::open(&config(&dir, KekSource::KeyFile(kek.clone()))).unwrap();
    home.sign(&k, b"x").unwrap();

    let other = tmp.path().join("other");
    write_private(&other, &[7u8; 32]);
    assert!(matches!(
        SoftwareHome::open(&config(&dir, KekSource::KeyFile(other.clone()))),
        Err(KeyStoreError::WrongPassphrase { .. })
    ));
    write_private(&other, &[7u8; 31]);
    assert!(matches!(
        SoftwareHome::open(&config(&dir, KekSource::KeyFile(other))),
        Err(KeyStoreError::SecretUnavailable { .. })
    ));
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        SoftwareHome::open(&config(&dir, KekSource::KeyFile(kek))),
        Err(KeyStoreError::InsecurePermissions { .. })
    ));
}

#[test]
fn group_or_other_access_is_refused() {
    let (_tmp, home, dir) = new_home();
    home.generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    drop(home);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let err = SoftwareHome::open(&config(&dir, passphrase("correct horse"))).unwrap_err();
    assert!(
        matches!(err, KeyStoreError::InsecurePermissions { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod go-rwx"), "{err}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key_file = dir.join("tls.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let home = SoftwareHome::open(&config(&dir, passphrase("correct horse"))).unwrap();
    assert!(matches!(
        home.key(&id("tls")),
        Err(KeyStoreError::InsecurePermissions { .. })
    ));
}

/// Opens `tls` after `tamper` changed its file; returns the error.
fn tampered(tamper: impl FnOnce(&Path)) -> KeyStoreError {
    let (_tmp, home, dir) = new_home();
    home.generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    home.generate(&id("audit"), KeyRole::AuditLog, Algorithm::EcdsaP256Sha256)
        .unwrap();
    drop(home);
    tamper(&dir);
    let home = SoftwareHome::open(&config(&dir, passphrase("correct horse"))).unwrap();
    home.key(&id("tls")).unwrap_err()
}

#[test]
fn corrupted_or_tampered_key_files_are_detected() {
    let edit = |f: fn(&mut String)| {
        move |dir: &Path| {
            let path = dir.join("tls.key");
            let mut text = std::fs::read_to_string(&path).unwrap();
            f(&mut text);
            std::fs::write(&path, text).unwrap();
        }
    };
    let cases: Vec<(&str, KeyStoreError)> = vec![
        (
            "flipped ciphertext",
            tampered(edit(|t| {
                let at = t.len() - 5;
                let c = if &t[at..at + 1] == "0" { "1" } else { "0" };
                t.replace_range(at..at + 1, c);
            })),
        ),
        (
            "role changed in header",
            tampered(edit(|t| *t = t.replacen("tls-server", "ca-signing", 1))),
        ),
        ("truncated", tampered(edit(|t| t.truncate(t.len() / 2)))),
        ("garbage", tampered(edit(|t| *t = "not a key file".into()))),
        (
            "another key's file under this name",
            tampered(|dir| std::fs::rename(dir.join("audit.key"), dir.join("tls.key")).unwrap()),
        ),
    ];
    for (case, err) in cases {
        assert!(
            matches!(err, KeyStoreError::Corrupted { .. }),
            "{case}: {err}"
        );
        assert!(err.to_string().contains("tls.key"), "{case}: {err}");
    }
}

#[test]
fn existing_keys_are_never_overwritten_and_delete_works() {
    let (_tmp, home, _) = new_home();
    let k = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let spki = home.public_key(&k).unwrap();
    assert!(matches!(
        home.generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256),
        Err(KeyStoreError::KeyExists { .. })
    ));
    assert_eq!(home.public_key(&k).unwrap(), spki);
    home.delete(&k).unwrap();
    assert!(matches!(
        home.sign(&k, b"x"),
        Err(KeyStoreError::KeyNotFound { .. })
    ));
    assert!(matches!(
        home.key(&id("tls")),
        Err(KeyStoreError::KeyNotFound { .. })
    ));
    assert!(home.list().unwrap().is_empty());
}

#[test]
fn imported_pkcs8_key_signs() {
    let (_tmp, home, _) = new_home();
    let ec = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap();
    let pkey = PKey::from_ec_key(ec).unwrap();
    let der = pkey.private_key_to_pkcs8().unwrap();
    let k = home
        .import(
            &id("tls"),
            KeyRole::TlsServer,
            Algorithm::EcdsaP256Sha256,
            SecretBytes::new(der),
        )
        .unwrap();
    assert_eq!(
        home.public_key(&k).unwrap().as_der(),
        pkey.public_key_to_der().unwrap()
    );
    let sig = home.sign(&k, b"m").unwrap();
    assert!(openssl_verify(
        &pkey.public_key_to_der().unwrap(),
        b"m",
        &sig
    ));
    assert!(matches!(
        home.import(
            &id("bad"),
            KeyRole::TlsServer,
            Algorithm::EcdsaP256Sha256,
            SecretBytes::from_slice(b"junk")
        ),
        Err(KeyStoreError::InvalidKeyMaterial { .. })
    ));
    assert!(matches!(
        home.import(
            &id("short"),
            KeyRole::PseudonymMapping,
            Algorithm::Aes256Gcm,
            SecretBytes::from_slice(&[1; 16])
        ),
        Err(KeyStoreError::InvalidKeyMaterial { .. })
    ));
}

#[test]
fn a_handle_from_another_home_is_refused() {
    let (_t1, a, _) = new_home();
    let (_t2, b, _) = new_home();
    let k = a
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    b.generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let err = b.sign(&k, b"x").unwrap_err();
    assert!(matches!(err, KeyStoreError::WrongHome { .. }), "{err}");
    assert!(matches!(b.delete(&k), Err(KeyStoreError::WrongHome { .. })));
}

#[test]
fn the_store_enforces_policy_and_never_falls_back() {
    let (_t1, soft, _) = new_home();
    let soft = Arc::new(soft);
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(soft.clone());

    // The CA key needs level 2 by default: refused in a level-1 home, with the reason.
    let err = store
        .generate(
            soft.id(),
            &id("ca"),
            KeyRole::CaSigning,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, KeyStoreError::Policy(_)), "{msg}");
    for part in ["key ca", "role ca-signing", "level 1", "at least level 2"] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
    assert!(soft.list().unwrap().is_empty(), "nothing was generated");

    // A CA key already in the level-1 home is refused at start-up, and so is every use.
    let ca = soft
        .generate(&id("ca"), KeyRole::CaSigning, Algorithm::EcdsaP256Sha256)
        .unwrap();
    assert!(matches!(
        store.open(soft.id(), &id("ca"), KeyRole::CaSigning),
        Err(KeyStoreError::Policy(_))
    ));
    assert!(matches!(
        store.sign(&ca, b"x"),
        Err(KeyStoreError::Policy(_))
    ));
    assert!(matches!(
        store.signing_key(&ca),
        Err(KeyStoreError::Policy(_))
    ));

    // A lowered policy is a deliberate configuration choice.
    let relaxed =
        KeyStore::new(KeyStorePolicy::default().with_minimum(KeyRole::CaSigning, Level::Software))
            .with_home(soft.clone());
    let ca = relaxed
        .open(soft.id(), &id("ca"), KeyRole::CaSigning)
        .unwrap();
    let signer = relaxed.signing_key(&ca).unwrap();
    let sig = signer.sign(b"tbs").unwrap();
    assert!(openssl_verify(signer.public_key().as_der(), b"tbs", &sig));
    assert_eq!(signer.level(), Level::Software);

    // Role mismatch and unknown keys are errors too.
    let tls = store
        .generate(
            soft.id(),
            &id("tls"),
            KeyRole::TlsServer,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    assert!(matches!(
        store.open(soft.id(), &id("tls"), KeyRole::AuditLog),
        Err(KeyStoreError::RoleMismatch { .. })
    ));
    assert!(matches!(
        store.open(soft.id(), &id("missing"), KeyRole::TlsServer),
        Err(KeyStoreError::KeyNotFound { .. })
    ));
    // A handle naming a home the store does not have is refused.
    let (_t2, other, _) = new_home();
    let foreign = other
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    assert!(matches!(
        store.sign(&foreign, b"x"),
        Err(KeyStoreError::UnknownHome { .. })
    ));
    assert_eq!(store.list().unwrap().len(), 2);
    store.sign(&tls, b"x").unwrap();
}

#[test]
fn config_parses_from_toml() {
    let c: SoftwareConfig = toml::from_str(
        "dir = \"/var/lib/cse/keys\"\nkek = { passphrase = { env = \"CSE_KEYSTORE_PASSPHRASE\" } }\n",
    )
    .unwrap();
    assert!(matches!(c.kek, KekSource::Passphrase(SecretSource::Env(_))));
    let c: SoftwareConfig =
        toml::from_str("dir = \"/k\"\nkek = { key-file = \"/etc/cse/kek\" }\n").unwrap();
    assert!(matches!(c.kek, KekSource::KeyFile(_)));
    assert!(
        toml::from_str::<SoftwareConfig>("dir = \"/k\"\nkek = { passphrase = \"inline\" }\n")
            .is_err()
    );
}
