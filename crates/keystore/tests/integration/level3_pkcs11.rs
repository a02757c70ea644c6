//! Level 3: PKCS#11 tokens, against SoftHSMv2 with tokens initialised by the tests.
#![allow(clippy::unwrap_used)]

use crate::support;

use keystore::pkcs11::{Pkcs11Config, Pkcs11Home};
use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::{
    Algorithm, ImportPolicy, KeyHome, KeyId, KeyOrigin, KeyRole, KeyStore, KeyStoreError,
    KeyStorePolicy, Level, Sealed, SecretBytes, SecretSource,
};
use openssl::pkey::PKey;
use std::path::PathBuf;
use std::sync::Arc;
use support::{softhsm, SOFTHSM_MODULE};

fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

fn config(label: &str, pin: SecretSource) -> Pkcs11Config {
    Pkcs11Config {
        module: PathBuf::from(SOFTHSM_MODULE),
        token_label: label.into(),
        pin,
    }
}

/// A fresh token and a home logged in to it.
fn home(label: &str) -> Option<(Pkcs11Home, PathBuf)> {
    let hsm = softhsm()?;
    let pin_file = hsm.token(label, "1234");
    let home = Pkcs11Home::open(&config(label, SecretSource::File(pin_file.clone()))).unwrap();
    Some((home, pin_file))
}

fn openssl_verify(spki: &[u8], message: &[u8], sig: &keystore::Signature) -> bool {
    let key = PKey::public_key_from_der(spki).unwrap().ec_key().unwrap();
    let sig = openssl::ecdsa::EcdsaSig::from_der(sig.as_der()).unwrap();
    sig.verify(&openssl::sha::sha256(message), &key).unwrap()
}

#[test]
fn keys_generated_in_the_token_sign_mac_and_seal() {
    let Some((home, _)) = home("t-ops") else {
        return;
    };
    assert_eq!(home.level(), Level::Hsm);
    let tls = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    assert_eq!(tls.level(), Level::Hsm);
    let spki = home.public_key(&tls).unwrap();
    let sig = home.sign(&tls, b"handshake").unwrap();
    assert!(
        openssl_verify(spki.as_der(), b"handshake", &sig),
        "DER signature verifies in OpenSSL"
    );
    assert!(home.verify(&tls, b"handshake", &sig).is_ok());
    assert!(home.verify(&tls, b"handshakE", &sig).is_err());

    let psk = home
        .generate(&id("psk"), KeyRole::PskMaster, Algorithm::HmacSha256)
        .unwrap();
    let m1 = home.hmac(&psk, b"kpsa label").unwrap();
    assert!(m1.verify(home.hmac(&psk, b"kpsa label").unwrap().expose()));
    assert!(!m1.verify(home.hmac(&psk, b"other").unwrap().expose()));
    let okm = home.derive(&psk, b"info", 48).unwrap();
    assert_eq!(okm.len(), 48);

    let wrap = home
        .generate(&id("wrap"), KeyRole::PseudonymMapping, Algorithm::Aes256Gcm)
        .unwrap();
    let sealed = home.encrypt(&wrap, b"aad", b"small secret").unwrap();
    assert_eq!(
        home.decrypt(&wrap, b"aad", &sealed).unwrap().expose(),
        b"small secret"
    );
    let err = home.decrypt(&wrap, b"aaD", &sealed).unwrap_err();
    assert!(matches!(err, KeyStoreError::DecryptFailed { .. }), "{err}");
    let mut bytes = sealed.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    assert!(matches!(
        home.decrypt(&wrap, b"aad", &Sealed::from_bytes(bytes)),
        Err(KeyStoreError::DecryptFailed { .. })
    ));
    assert!(matches!(
        home.generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256),
        Err(KeyStoreError::KeyExists { .. })
    ));
}

#[test]
fn exporting_a_level_3_private_key_fails() {
    let Some((home, _)) = home("t-export") else {
        return;
    };
    let tls = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let psk = home
        .generate(&id("psk"), KeyRole::PskMaster, Algorithm::HmacSha256)
        .unwrap();
    let wrap = home
        .generate(&id("wrap"), KeyRole::PseudonymMapping, Algorithm::Aes256Gcm)
        .unwrap();
    // Asks the token for CKA_SENSITIVE/CKA_EXTRACTABLE and then for CKA_VALUE itself
    // (C_GetAttributeValue): the token answers CKR_ATTRIBUTE_SENSITIVE and returns nothing.
    for key in [&tls, &psk, &wrap] {
        home.verify_non_extractable(key).unwrap();
    }
    // Imported keys get the same protection.
    let imported = home
        .import(
            &id("imp"),
            KeyRole::PskMaster,
            Algorithm::HmacSha256,
            SecretBytes::from_slice(&[9; 32]),
        )
        .unwrap();
    home.verify_non_extractable(&imported).unwrap();
    // And the API has no export operation at all: `key()` re-checks on every open.
    assert_eq!(home.key(&id("tls")).unwrap(), tls);
}

#[test]
fn imported_keys_agree_with_the_software_home() {
    let Some((hsm, _)) = home("t-import") else {
        return;
    };
    assert_eq!(hsm.import_policy(), ImportPolicy::NonExtractableOnly);
    let tmp = tempfile::tempdir().unwrap();
    let soft = SoftwareHome::create(&SoftwareConfig {
        dir: tmp.path().join("k"),
        kek: KekSource::Passphrase(SecretSource::Provided(SecretBytes::from_slice(b"pw"))),
    })
    .unwrap();
    // RFC 5869 test case 1 PRK, in both homes: identical HMACs and HKDF output.
    let prk =
        hex::decode("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5").unwrap();
    let h = hsm
        .import(
            &id("km"),
            KeyRole::PskMaster,
            Algorithm::HmacSha256,
            SecretBytes::new(prk.clone()),
        )
        .unwrap();
    let s = soft
        .import(
            &id("km"),
            KeyRole::PskMaster,
            Algorithm::HmacSha256,
            SecretBytes::new(prk),
        )
        .unwrap();
    assert!(hsm
        .hmac(&h, b"data")
        .unwrap()
        .verify(soft.hmac(&s, b"data").unwrap().expose()));
    let okm = hsm
        .derive(&h, &hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap(), 42)
        .unwrap();
    assert_eq!(
        hex::encode(okm.expose()),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );

    // An ECDSA key imported from PKCS#8 keeps its public key and signs inside the token.
    let pkey = PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let k = hsm
        .import(
            &id("tls"),
            KeyRole::TlsServer,
            Algorithm::EcdsaP256Sha256,
            SecretBytes::new(pkey.private_key_to_pkcs8().unwrap()),
        )
        .unwrap();
    assert_eq!(
        hsm.public_key(&k).unwrap().as_der(),
        pkey.public_key_to_der().unwrap()
    );
    assert!(openssl_verify(
        &pkey.public_key_to_der().unwrap(),
        b"m",
        &hsm.sign(&k, b"m").unwrap()
    ));
    hsm.verify_non_extractable(&k).unwrap();

    // AES: a key imported in both homes opens the other's ciphertext.
    let aes = [5u8; 32];
    let ha = hsm
        .import(
            &id("aes"),
            KeyRole::PseudonymMapping,
            Algorithm::Aes256Gcm,
            SecretBytes::from_slice(&aes),
        )
        .unwrap();
    let sa = soft
        .import(
            &id("aes"),
            KeyRole::PseudonymMapping,
            Algorithm::Aes256Gcm,
            SecretBytes::from_slice(&aes),
        )
        .unwrap();
    let sealed = soft.encrypt(&sa, b"x", b"cross").unwrap();
    assert_eq!(hsm.decrypt(&ha, b"x", &sealed).unwrap().expose(), b"cross");
    let sealed = hsm.encrypt(&ha, b"y", b"back").unwrap();
    assert_eq!(soft.decrypt(&sa, b"y", &sealed).unwrap().expose(), b"back");

    let list = hsm.list().unwrap();
    assert_eq!(list.len(), 3);
    assert!(list
        .iter()
        .all(|m| m.origin == KeyOrigin::Imported && m.handle.level() == Level::Hsm));
}

#[test]
fn keys_persist_in_the_token_and_can_be_deleted() {
    let Some((home, pin_file)) = home("t-persist") else {
        return;
    };
    let tls = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let spki = home.public_key(&tls).unwrap();
    home.sign(&tls, b"x").unwrap();
    drop(home);
    let home = Pkcs11Home::open(&config("t-persist", SecretSource::File(pin_file))).unwrap();
    let again = home.key(&id("tls")).unwrap();
    assert_eq!(again, tls);
    assert_eq!(home.public_key(&again).unwrap(), spki);
    let list = home.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].handle.role(), KeyRole::TlsServer);
    assert_eq!(list[0].origin, KeyOrigin::Generated);
    home.delete(&again).unwrap();
    assert!(matches!(
        home.key(&id("tls")),
        Err(KeyStoreError::KeyNotFound { .. })
    ));
    assert!(matches!(
        home.sign(&again, b"x"),
        Err(KeyStoreError::KeyNotFound { .. })
    ));
    assert!(home.list().unwrap().is_empty());
}

#[test]
fn wrong_pin_missing_token_missing_module_and_missing_pin_are_clear_errors() {
    let Some(hsm) = softhsm() else { return };
    hsm.token("t-errors", "1234");
    let wrong = hsm.dir.join("wrong.pin");
    support::write_private(&wrong, b"9999");
    let err = Pkcs11Home::open(&config("t-errors", SecretSource::File(wrong))).unwrap_err();
    assert!(matches!(err, KeyStoreError::WrongPin { .. }), "{err}");
    assert!(err.to_string().contains("t-errors"), "{err}");

    let err = Pkcs11Home::open(&config(
        "no-such-token",
        SecretSource::Provided(SecretBytes::from_slice(b"1234")),
    ))
    .unwrap_err();
    assert!(matches!(err, KeyStoreError::TokenNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("\"t-errors\""),
        "lists the tokens present: {err}"
    );

    let mut missing = config(
        "t-errors",
        SecretSource::Provided(SecretBytes::from_slice(b"1234")),
    );
    missing.module = PathBuf::from("/usr/lib/no-such-pkcs11-module.so");
    let err = Pkcs11Home::open(&missing).unwrap_err();
    assert!(
        matches!(err, KeyStoreError::ModuleUnavailable { .. }),
        "{err}"
    );

    let err = Pkcs11Home::open(&config(
        "t-errors",
        SecretSource::Env("CSE_TEST_NO_SUCH_PIN_VAR".into()),
    ))
    .unwrap_err();
    assert!(
        matches!(err, KeyStoreError::SecretUnavailable { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("CSE_TEST_NO_SUCH_PIN_VAR"),
        "{err}"
    );

    let err = Pkcs11Home::open(&config(
        "t-errors",
        SecretSource::File(hsm.dir.join("no-pin-file")),
    ))
    .unwrap_err();
    assert!(
        matches!(err, KeyStoreError::SecretUnavailable { .. }),
        "{err}"
    );
}

#[test]
fn a_key_is_only_ever_looked_for_in_its_configured_home() {
    let Some((hsm, _)) = home("t-wrong-home") else {
        return;
    };
    let hsm = Arc::new(hsm);
    let tmp = tempfile::tempdir().unwrap();
    let soft = Arc::new(
        SoftwareHome::create(&SoftwareConfig {
            dir: tmp.path().join("k"),
            kek: KekSource::Passphrase(SecretSource::Provided(SecretBytes::from_slice(b"pw"))),
        })
        .unwrap(),
    );
    let store =
        KeyStore::new(KeyStorePolicy::default().with_minimum(KeyRole::TlsServer, Level::Hsm))
            .with_home(hsm.clone())
            .with_home(soft.clone());

    // The TLS key exists only in the software home; the configuration says HSM.
    let soft_tls = soft
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let err = store
        .open(hsm.id(), &id("tls"), KeyRole::TlsServer)
        .unwrap_err();
    assert!(
        matches!(err, KeyStoreError::KeyNotFound { .. }),
        "no fallback to level 1: {err}"
    );
    // The level-1 handle is refused by the HSM home and by the policy.
    assert!(matches!(
        hsm.sign(&soft_tls, b"x"),
        Err(KeyStoreError::WrongHome { .. })
    ));
    let err = store.sign(&soft_tls, b"x").unwrap_err();
    assert!(matches!(err, KeyStoreError::Policy(_)), "{err}");
    assert!(err.to_string().contains("at least level 3"), "{err}");
    // Configured in the software home, the TLS key is below this policy.
    assert!(matches!(
        store.open(soft.id(), &id("tls"), KeyRole::TlsServer),
        Err(KeyStoreError::Policy(_))
    ));

    // Generated in the HSM, everything works, and the CA key (>= 2 by default) is fine there.
    let tls = store
        .generate(
            hsm.id(),
            &id("tls"),
            KeyRole::TlsServer,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    let signer = store.signing_key(&tls).unwrap();
    assert_eq!(signer.level(), Level::Hsm);
    assert!(openssl_verify(
        signer.public_key().as_der(),
        b"m",
        &signer.sign(b"m").unwrap()
    ));
    store
        .generate(
            hsm.id(),
            &id("ca"),
            KeyRole::CaSigning,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    assert!(matches!(
        soft.sign(&tls, b"x"),
        Err(KeyStoreError::WrongHome { .. })
    ));
}

#[test]
fn config_parses_from_toml() {
    let c: Pkcs11Config = toml::from_str(
        "module = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken-label = \"cse-token\"\npin = { env = \"CSE_HSM_PIN\" }\n",
    )
    .unwrap();
    assert_eq!(c.token_label, "cse-token");
    assert!(
        toml::from_str::<Pkcs11Config>("module = \"/m.so\"\ntoken-label = \"t\"\npin = \"1234\"\n")
            .is_err(),
        "a PIN in the configuration itself is refused"
    );
}

#[test]
fn an_anchor_record_is_replaced_in_place_and_read_by_a_new_session() {
    use keystore::anchor::AnchorRecord;
    let Some((home, pin)) = home("t-anchor") else {
        return;
    };
    let home = Arc::new(home);
    let record = home.anchor_record("audit-head").unwrap();
    assert_eq!(
        record.name(),
        "PKCS#11 data object audit-head on token t-anchor"
    );
    assert_eq!(record.read().unwrap(), None);
    record.write(b"{\"seq\":1}").unwrap();
    record.write(b"{\"seq\":2}").unwrap();
    assert_eq!(record.read().unwrap().as_deref(), Some(&b"{\"seq\":2}"[..]));
    // Another record on the same token is another object; neither is a key.
    let other = home.anchor_record("other-head").unwrap();
    assert_eq!(other.read().unwrap(), None);
    assert!(
        home.list().unwrap().is_empty(),
        "a record is not listed as a key"
    );
    // A key with the record's name does not collide with it.
    home.generate(
        &id("audit-head"),
        KeyRole::AuditLog,
        Algorithm::EcdsaP256Sha256,
    )
    .unwrap();
    assert_eq!(record.read().unwrap().as_deref(), Some(&b"{\"seq\":2}"[..]));

    // Another session (a restart) reads what was written.
    let again = Arc::new(Pkcs11Home::open(&config("t-anchor", SecretSource::File(pin))).unwrap());
    let record = again.anchor_record("audit-head").unwrap();
    assert_eq!(record.read().unwrap().as_deref(), Some(&b"{\"seq\":2}"[..]));

    // Too large, or a label that is not an identifier: refused.
    let err = record
        .write(&vec![b'x'; keystore::pkcs11::RECORD_LIMIT + 1])
        .unwrap_err();
    assert!(matches!(err, KeyStoreError::InputTooLong { .. }), "{err}");
    let err = again.anchor_record("no spaces").unwrap_err();
    assert!(matches!(err, KeyStoreError::AnchorUnusable { .. }), "{err}");
}
