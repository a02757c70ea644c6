//! The TLS server key in a key home (levels 1-3): `openssl s_client` completes TLS 1.3 and
//! TLS 1.2 ECDHE-ECDSA handshakes whose signatures the home computed, and a home that can no
//! longer sign (swtpm killed) fails the handshake, not the listener.

use crate::common;

use common::*;
use keystore::pkcs11::{Pkcs11Config, Pkcs11Home};
use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
#[cfg(feature = "tpm")]
use keystore::testing::Swtpm;
use keystore::testing::SOFTHSM_MODULE;
#[cfg(feature = "tpm")]
use keystore::tpm::{TpmConfig, TpmHome};
use keystore::{
    Algorithm, KeyHome, KeyId, KeyRole, KeyStore, KeyStorePolicy, Level, SecretSource, SigningKey,
};
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};
use security::tls::{ServerKey, TlsAcceptor, TlsError, TlsPolicy};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A server certificate for the home's key, issued by the test CA (like a CSR signed by the
/// CA: only the public key leaves the home).
fn issue_for(key: &SigningKey, dir: &Path) -> PathBuf {
    let p = pki();
    let ca = X509::from_pem(&std::fs::read(&p.ca).expect("ca")).expect("ca pem");
    let ca_key =
        PKey::private_key_from_pem(&std::fs::read(&p.ca_key).expect("ca key")).expect("ca key pem");
    let public = PKey::public_key_from_der(key.public_key().as_der()).expect("spki");
    let mut name = X509Name::builder().expect("name");
    name.append_entry_by_text("CN", "id-in").expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    let serial = openssl::bn::BigNum::from_u32(rand_serial())
        .and_then(|n| n.to_asn1_integer())
        .expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(ca.subject_name()).expect("issuer");
    b.set_pubkey(&public).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("later"))
        .expect("na");
    let ctx = b.x509v3_context(Some(&ca), None);
    let san = SubjectAlternativeName::new()
        .dns("id-in.secure-cse.example")
        .dns("localhost")
        .build(&ctx)
        .expect("san");
    b.append_extension(san).expect("san");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    b.append_extension(ExtendedKeyUsage::new().server_auth().build().expect("eku"))
        .expect("eku");
    b.sign(&ca_key, MessageDigest::sha256()).expect("sign");
    let path = dir.join(format!("server-{}.pem", key.handle().id()));
    std::fs::write(&path, b.build().to_pem().expect("pem")).expect("write");
    path
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).expect("rand");
    u32::from_be_bytes(b) >> 1
}

fn policy_with(key: &SigningKey, dir: &Path) -> TlsPolicy {
    let mut policy = certificate_only();
    if let Some(c) = policy.certificate.as_mut() {
        c.chain = issue_for(key, dir);
        c.key = ServerKey::Home(key.clone());
    }
    policy
}

fn tls_key(store: &KeyStore, home: &Arc<dyn KeyHome>) -> SigningKey {
    let id = KeyId::new("tls").expect("id");
    let handle = store
        .generate(
            home.id(),
            &id,
            KeyRole::TlsServer,
            Algorithm::EcdsaP256Sha256,
        )
        .expect("generate in the home");
    store.signing_key(&handle).expect("signing key")
}

/// TLS 1.3 and TLS 1.2 (the mandatory ECDHE-ECDSA suite) with a client certificate; both
/// must verify the server's chain (`-verify_return_error`) and establish the association.
async fn both_versions_work(policy: TlsPolicy, home: &Arc<dyn KeyHome>) {
    let used_before = last_used(home);
    let mut server = Server::start(policy).await;
    let run = s_client_cert(&server, "ae1", &["-tls1_3"]).await;
    let e = server.established().await;
    assert!(run.success, "s_client TLS 1.3: {}", run.stderr);
    assert_eq!(e.protocol, "TLSv1.3");
    let run = s_client_cert(
        &server,
        "ae1",
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"],
    )
    .await;
    let e = server.established().await;
    assert!(run.success, "s_client TLS 1.2: {}", run.stderr);
    assert_eq!(e.cipher, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256");
    // The home signed (its usage record moved).
    let used_after = last_used(home);
    assert!(used_after.is_some() && used_after != used_before);
}

fn last_used(home: &Arc<dyn KeyHome>) -> Option<std::time::SystemTime> {
    home.list()
        .expect("list")
        .into_iter()
        .find(|m| m.handle.id().as_str() == "tls")
        .and_then(|m| m.last_used)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level1_software_home_key() {
    if !have("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let kek = tmp.path().join("kek");
    std::fs::write(&kek, [7u8; 32]).expect("kek");
    set_mode(&kek, 0o600);
    let config = SoftwareConfig {
        dir: tmp.path().join("keys"),
        kek: KekSource::KeyFile(kek),
    };
    let home: Arc<dyn KeyHome> = Arc::new(SoftwareHome::create(&config).expect("home"));
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home.clone());
    let key = tls_key(&store, &home);
    assert_eq!(key.level(), Level::Software);
    both_versions_work(policy_with(&key, tmp.path()), &home).await;
}

/// Needs the TPM home (feature `tpm`: `cargo test -p security --features tpm`).
#[cfg(feature = "tpm")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level2_tpm_key_and_a_tpm_that_goes_away() {
    if !have("openssl") {
        return;
    }
    let Some(mut tpm) = Swtpm::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let home: Arc<dyn KeyHome> = Arc::new(
        TpmHome::open(&TpmConfig {
            tcti: tpm.tcti(),
            dir: tmp.path().join("tpm-keys"),
        })
        .expect("tpm home"),
    );
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home.clone());
    let key = tls_key(&store, &home);
    assert_eq!(key.level(), Level::TrustedEnvironment);
    let policy = policy_with(&key, tmp.path());
    both_versions_work(policy.clone(), &home).await;

    // The TPM goes away: handshakes are refused (and logged), the listener keeps going.
    let mut server = Server::start(policy).await;
    tpm.kill();
    for _ in 0..2 {
        let run = s_client_cert(&server, "ae1", &["-tls1_3"]).await;
        assert!(!run.success, "no handshake without the TPM");
        server.refused("home could not sign").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level3_pkcs11_key() {
    if !have("openssl") {
        return;
    }
    let Some(_hsm) = softhsm() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let pin = tmp.path().join("pin");
    std::fs::write(&pin, "1234\n").expect("pin");
    set_mode(&pin, 0o600);
    let home: Arc<dyn KeyHome> = Arc::new(
        Pkcs11Home::open(&Pkcs11Config {
            module: SOFTHSM_MODULE.into(),
            token_label: "tls-test".into(),
            pin: SecretSource::File(pin),
        })
        .expect("token"),
    );
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home.clone());
    let key = tls_key(&store, &home);
    assert_eq!(key.level(), Level::Hsm);
    both_versions_work(policy_with(&key, tmp.path()), &home).await;
}

#[test]
fn a_home_key_that_does_not_match_the_certificate_is_refused_at_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let kek = tmp.path().join("kek");
    std::fs::write(&kek, [9u8; 32]).expect("kek");
    set_mode(&kek, 0o600);
    let home: Arc<dyn KeyHome> = Arc::new(
        SoftwareHome::create(&SoftwareConfig {
            dir: tmp.path().join("keys"),
            kek: KekSource::KeyFile(kek),
        })
        .expect("home"),
    );
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home.clone());
    let key = tls_key(&store, &home);
    let mut policy = certificate_only();
    if let Some(c) = policy.certificate.as_mut() {
        c.key = ServerKey::Home(key); // with the test PKI's server certificate
    }
    let err = TlsAcceptor::new(&policy, credentials(), local()).expect_err("mismatch");
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("key tls in home software:"),
        "{err}"
    );
}
