//! The certificate authority end to end: certificates it issues are verified by the `openssl`
//! command and accepted by `security`'s TLS acceptor, then refused once revoked and a new CRL
//! is loaded; CSRs naming another identity are refused; records survive `kill -9`; a CA key in
//! SoftHSM (level 3) signs what OpenSSL verifies; a level-1 CA key is refused by the default
//! policy.
//!
//! Tests that need a tool or service (`openssl`, SoftHSM) print `SKIPPED: ...` and pass
//! without it, unless `SECURE_CSE_REQUIRE_SERVICES` is set.
#![allow(clippy::unwrap_used, missing_docs)]

use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::{
    Algorithm, HomeId, KeyHandle, KeyHome, KeyId, KeyRole, KeyStore, KeyStoreError, KeyStorePolicy,
    Level,
};
use manager::ca::{
    AfterRenewal, CaConfig, CaError, CertificateAuthority, Grant, Identity, IssuedCertificate,
    RevocationReason, Serial, Status, SubjectName, Validity,
};
use rcgen::{CertificateParams, KeyPair, SanType};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use test_support::skip_unless;

const SP: &str = "secure-cse.example";
const CSE: &str = "id-in";
const DAY: Duration = Duration::from_secs(86_400);

// === fixtures ===

fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn write_private(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A level-1 home in `dir/keys` with a key-file KEK (`dir/kek`), created or reopened.
fn software_home(dir: &Path) -> Arc<SoftwareHome> {
    let kek = dir.join("kek");
    if !kek.exists() {
        write_private(&kek, hex_of(&[7u8; 32]).as_bytes());
    }
    let config = SoftwareConfig {
        dir: dir.join("keys"),
        kek: KekSource::KeyFile(kek),
    };
    Arc::new(if config.dir.exists() {
        SoftwareHome::open(&config).unwrap()
    } else {
        SoftwareHome::create(&config).unwrap()
    })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key store whose policy lets the CA key live at level 1 (tests only; the default needs 2).
fn permissive(home: Arc<SoftwareHome>) -> Arc<KeyStore> {
    Arc::new(
        KeyStore::new(KeyStorePolicy::default().with_minimum(KeyRole::CaSigning, Level::Software))
            .with_home(home),
    )
}

fn ca_key_id() -> KeyId {
    KeyId::new("ca").unwrap()
}

/// The CA key in `store`'s only home: opened when it exists, generated otherwise.
fn ca_key(store: &KeyStore, home: &HomeId) -> KeyHandle {
    store
        .open(home, &ca_key_id(), KeyRole::CaSigning)
        .or_else(|_| {
            store.generate(
                home,
                &ca_key_id(),
                KeyRole::CaSigning,
                Algorithm::EcdsaP256Sha256,
            )
        })
        .unwrap()
}

fn config() -> CaConfig {
    let mut c = CaConfig::new(SP, CSE);
    c.crl_distribution_points = vec!["http://localhost:8080/.well-known/crl/ca.crl".into()];
    c
}

/// A level-1 CA in `dir/ca`, created or reopened.
fn ca_in(dir: &Path) -> CertificateAuthority {
    let home = software_home(dir);
    let id = home.id().clone();
    let store = permissive(home);
    let key = ca_key(&store, &id);
    CertificateAuthority::open_or_create(&dir.join("ca"), config(), store, key).unwrap()
}

/// A P-256 key and a PEM CSR for it whose subjectAltName holds `sans`.
fn csr(sans: Vec<SanType>) -> (KeyPair, Vec<u8>) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = sans;
    let csr = params.serialize_request(&key).unwrap();
    (key, csr.pem().unwrap().into_bytes())
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().unwrap())
}

fn ae(ca: &CertificateAuthority, id: &str) -> Identity {
    ca.names().ae(id).unwrap()
}

fn grant(identity: Identity) -> Grant {
    Grant::new(identity, Validity::For(30 * DAY))
}

/// Runs `openssl ARGS` and returns (success, stdout + stderr).
fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn save(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// `openssl verify -CAfile ca -crl_check -CRLfile crl leaf`.
fn verify_with_crl(ca: &Path, crl: &Path, leaf: &Path) -> (bool, String) {
    openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        "-crl_check",
        "-CRLfile",
        crl.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ])
}

// === issuing, verified by the openssl command ===

#[test]
fn openssl_verifies_issued_certificates_before_and_refuses_them_after_revocation() {
    if skip_unless(have_openssl(), "the openssl command").is_some() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_in(tmp.path());
    let ca_pem = save(tmp.path(), "ca-copy.pem", ca.certificate_pem().as_bytes());
    let (ok, text) = openssl(&["x509", "-in", ca_pem.to_str().unwrap(), "-noout", "-text"]);
    assert!(ok, "{text}");
    for part in [
        "CA:TRUE, pathlen:0",
        "Certificate Sign, CRL Sign",
        "X509v3 Name Constraints: critical",
        "DNS:secure-cse.example",
        "URI:secure-cse.example",
        "ecdsa-with-SHA256",
    ] {
        assert!(text.contains(part), "CA certificate lacks {part}:\n{text}");
    }

    // A CSR made by the openssl command, with a subject that must not be copied.
    let key = tmp.path().join("ae1.key");
    let csr_path = tmp.path().join("ae1.csr");
    let (ok, text) = openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/CN=Alice's smart meter/O=Alice",
        "-addext",
        "subjectAltName=URI://secure-cse.example/id-in/Cae1",
        "-out",
        csr_path.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let issued = ca
        .issue(&std::fs::read(&csr_path).unwrap(), &grant(ae(&ca, "Cae1")))
        .unwrap();
    assert_eq!(
        issued.identity,
        Identity::Ae("//secure-cse.example/id-in/Cae1".into())
    );
    let leaf = save(tmp.path(), "ae1.pem", issued.pem().as_bytes());
    let (ok, text) = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-text"]);
    assert!(ok, "{text}");
    for part in [
        "X509v3 Subject Alternative Name: critical",
        "URI:onem2m://secure-cse.example/id-in/Cae1",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "TLS Web Client Authentication",
        "X509v3 Authority Key Identifier",
        "URI:http://localhost:8080/.well-known/crl/ca.crl",
        "CA:FALSE",
    ] {
        assert!(text.contains(part), "AE certificate lacks {part}:\n{text}");
    }
    assert!(
        !text.contains("Alice") && !text.contains("Server Authentication"),
        "nothing from the CSR's subject, no serverAuth:\n{text}"
    );
    let (ok, subject) = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-subject"]);
    assert!(
        ok && subject.trim() == "subject=",
        "empty subject: {subject:?}"
    );
    let (_, serial) = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-serial"]);
    assert_eq!(serial.trim(), format!("serial={}", issued.serial));

    // A CSE certificate: public domain name, serverAuth and clientAuth.
    let (_, mn_csr) = csr(vec![]);
    let mn = ca
        .issue(&mn_csr, &grant(ca.names().cse("id-mn").unwrap()))
        .unwrap();
    let mn_pem = save(tmp.path(), "mn.pem", mn.pem().as_bytes());
    let (_, text) = openssl(&["x509", "-in", mn_pem.to_str().unwrap(), "-noout", "-text"]);
    for part in [
        "DNS:id-mn.id-in.secure-cse.example",
        "TLS Web Server Authentication, TLS Web Client Authentication",
    ] {
        assert!(text.contains(part), "CSE certificate lacks {part}:\n{text}");
    }

    let crl = ca.crl().unwrap();
    let crl_path = tmp.path().join("ca.crl");
    crl.write_pem(&crl_path).unwrap();
    let ca_file = tmp.path().join("ca").join("ca.pem");
    for leaf in [&leaf, &mn_pem] {
        let (ok, text) = verify_with_crl(&ca_file, &crl_path, leaf);
        assert!(ok && text.contains(": OK"), "{text}");
    }

    let revoked = ca
        .revoke(&issued.serial, RevocationReason::KeyCompromise)
        .unwrap();
    assert!(matches!(
        revoked.status,
        Status::Revoked {
            reason: RevocationReason::KeyCompromise,
            ..
        }
    ));
    let next = ca.crl().unwrap();
    assert!(next.number > crl.number, "CRL numbers increase");
    assert_eq!(next.entries, 1);
    next.write_der(&crl_path).unwrap();
    let crl_pem = save(tmp.path(), "ca.crl.pem", next.pem().as_bytes());
    let (ok, text) = verify_with_crl(&ca_file, &crl_pem, &leaf);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify_with_crl(&ca_file, &crl_pem, &mn_pem);
    assert!(ok, "the CSE certificate is still good: {text}");
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_path.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(
        text.contains(&format!(
            "X509v3 CRL Number: \n                {}",
            next.number
        )) || text.contains(&format!("{}", next.number)),
        "{text}"
    );
}

#[test]
fn the_subject_names_the_identity_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_in(tmp.path());
    let (_, request) = csr(vec![]);
    let mut g = grant(ae(&ca, "Cae1"));
    g.subject = SubjectName::Identity;
    let issued = ca.issue(&request, &g).unwrap();
    let cert = openssl::x509::X509::from_der(&issued.der).unwrap();
    let cn: Vec<String> = cert
        .subject_name()
        .entries()
        .map(|e| e.data().to_string().unwrap())
        .collect();
    assert_eq!(cn, vec!["//secure-cse.example/id-in/Cae1".to_owned()]);
    let anonymous = ca.issue(&request, &grant(ae(&ca, "Cae1"))).unwrap();
    let cert = openssl::x509::X509::from_der(&anonymous.der).unwrap();
    assert_eq!(cert.subject_name().entries().count(), 0);
}

// === what a CSR may and may not do ===

#[test]
fn a_csr_naming_another_identity_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_in(tmp.path());
    let authorised = ae(&ca, "Cae1");
    for sans in [
        vec![uri("//secure-cse.example/id-in/Cae2")],
        vec![
            uri("onem2m://secure-cse.example/id-in/Cae1"),
            uri("//secure-cse.example/Sx"),
        ],
        vec![dns("id-in.secure-cse.example")],
        vec![dns("localhost")],
    ] {
        let (_, request) = csr(sans.clone());
        let err = ca.issue(&request, &grant(authorised.clone())).unwrap_err();
        assert!(
            matches!(&err, CaError::IdentityMismatch { authorised: a, .. } if a.contains("Cae1")),
            "{sans:?}: {err}"
        );
    }
    let (_, request) = csr(vec![uri("//secure-cse.example/id-mn/Cae1")]);
    assert!(matches!(
        ca.issue(&request, &grant(authorised.clone())),
        Err(CaError::IdentityMismatch { .. })
    ));
    // The authorised identity, in any form the TLS layer reads, is fine.
    for sans in [
        vec![],
        vec![uri("//secure-cse.example/id-in/Cae1")],
        vec![uri("https://secure-cse.example/id-in/Cae1")],
    ] {
        let (_, request) = csr(sans);
        assert!(ca.issue(&request, &grant(authorised.clone())).is_ok());
    }
    let (_, request) = csr(vec![dns("ID-MN.id-in.secure-cse.example")]);
    let mn = ca.names().cse("/id-mn").unwrap();
    assert!(ca.issue(&request, &grant(mn)).is_ok());
    // Nothing was recorded for the refused requests.
    assert_eq!(ca.list().unwrap().len(), 4);
}

#[test]
fn forged_garbled_and_non_p256_csrs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_in(tmp.path());
    let g = grant(ae(&ca, "Cae1"));
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut der = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec();
    assert!(ca.issue(&der, &g).is_ok(), "DER CSRs are read too");
    // Flip a bit of the public key, or of the signature: the self-signature no longer verifies.
    let point = der.windows(2).position(|w| w == [0x00, 0x04]).unwrap() + 10;
    let mut other_key = der.clone();
    other_key[point] ^= 1;
    assert!(matches!(
        ca.issue(&other_key, &g),
        Err(CaError::CsrSignature)
    ));
    let last = der.len() - 1;
    der[last] ^= 1;
    assert!(matches!(ca.issue(&der, &g), Err(CaError::CsrSignature)));
    assert!(matches!(
        ca.issue(b"not a csr", &g),
        Err(CaError::InvalidCsr(_))
    ));
    assert!(matches!(
        ca.issue(ca.certificate_pem().as_bytes(), &g),
        Err(CaError::InvalidCsr(_))
    ));
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let request = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&p384)
        .unwrap();
    assert!(matches!(
        ca.issue(request.pem().unwrap().as_bytes(), &g),
        Err(CaError::UnsupportedKey(_))
    ));
    assert_eq!(ca.list().unwrap().len(), 1);
}

#[test]
fn identities_validity_and_name_constraints_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_in(tmp.path());
    for bad in ["C", "//other.example/id-in/Cae1", "C*", "x/y"] {
        assert!(matches!(
            ca.names().ae(bad),
            Err(CaError::InvalidIdentity { .. })
        ));
    }
    let (_, request) = csr(vec![]);
    let ten_years = Grant::new(ae(&ca, "Cae1"), Validity::For(20 * 365 * DAY));
    assert!(matches!(
        ca.issue(&request, &ten_years),
        Err(CaError::InvalidValidity(_))
    ));
    let now = SystemTime::now();
    let backwards = Grant::new(
        ae(&ca, "Cae1"),
        Validity::Window {
            not_before: now,
            not_after: now - DAY,
        },
    );
    assert!(matches!(
        ca.issue(&request, &backwards),
        Err(CaError::InvalidValidity(_))
    ));
    let window = Validity::Window {
        not_before: now - Duration::from_secs(300),
        not_after: now + DAY,
    };
    let issued = ca
        .issue(&request, &Grant::new(ae(&ca, "Cae1"), window))
        .unwrap();
    assert!(issued.not_before < now && issued.not_after > now);

    // A CA whose URI constraint does not cover our SP refuses AE certificates up front.
    let home = software_home(tmp.path());
    let store = permissive(home.clone());
    let other_key = store
        .generate(
            home.id(),
            &KeyId::new("ca2").unwrap(),
            KeyRole::CaSigning,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    let mut narrow = config();
    narrow.permitted_uri_hosts = vec!["other.example".into()];
    let ca2 =
        CertificateAuthority::create(&tmp.path().join("ca2"), narrow, store, other_key).unwrap();
    assert!(matches!(
        ca2.issue(&request, &grant(ae(&ca2, "Cae1"))),
        Err(CaError::OutsideNameConstraints { .. })
    ));
    // CSE certificates are still within the DNS constraint.
    assert!(ca2
        .issue(&request, &grant(ca2.names().cse("id-mn").unwrap()))
        .is_ok());
}

/// The CA works at its configured clock: what it issues starts, and its CRLs are dated, at
/// that clock's time; and a CA certificate past its notAfter on that clock does not open.
#[test]
fn the_ca_issues_and_judges_at_its_clock() {
    let tmp = tempfile::tempdir().unwrap();
    drop(ca_in(tmp.path()));
    let manual = model::clock::ManualClock::new();
    manual.advance(30 * DAY);
    let home = software_home(tmp.path());
    let id = home.id().clone();
    let store = permissive(home);
    let key = ca_key(&store, &id);
    let at_clock = CaConfig {
        clock: manual.clock(),
        ..config()
    };
    let ca = CertificateAuthority::open(
        &tmp.path().join("ca"),
        at_clock.clone(),
        store.clone(),
        key.clone(),
    )
    .unwrap();
    let (_, request) = csr(vec![]);
    let issued = ca.issue(&request, &grant(ae(&ca, "Cae1"))).unwrap();
    let ahead = |t: SystemTime| t.duration_since(SystemTime::now()).unwrap_or_default();
    assert!(
        ahead(issued.not_before) >= 29 * DAY,
        "{:?}",
        issued.not_before
    );
    assert!(ahead(ca.crl().unwrap().this_update) >= 29 * DAY);
    drop(ca);
    // Past the CA certificate's ten years on that clock: the CA does not open.
    manual.advance(3700 * DAY);
    assert!(matches!(
        CertificateAuthority::open(&tmp.path().join("ca"), at_clock, store, key),
        Err(CaError::InvalidCaCertificate { .. })
    ));
}

// === the CA key and the key store policy ===

#[test]
fn a_level_1_ca_key_is_refused_by_the_default_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let home = software_home(tmp.path());
    let strict = Arc::new(KeyStore::new(KeyStorePolicy::default()).with_home(home.clone()));
    let refused = strict
        .generate(
            home.id(),
            &ca_key_id(),
            KeyRole::CaSigning,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap_err();
    assert!(matches!(refused, KeyStoreError::Policy(_)), "{refused}");

    // A key made under a lowered minimum is still refused once the policy says level 2.
    let lax = permissive(home.clone());
    let key = ca_key(&lax, home.id());
    let err = CertificateAuthority::create(
        &tmp.path().join("ca"),
        config(),
        strict.clone(),
        key.clone(),
    )
    .unwrap_err();
    match &err {
        CaError::KeyStore(KeyStoreError::Policy(v)) => {
            assert_eq!(
                (v.configured, v.required),
                (Level::Software, Level::TrustedEnvironment)
            );
        }
        other => panic!("expected a policy refusal, got {other}"),
    }
    assert!(!tmp.path().join("ca").join("ca.pem").exists());

    // An existing CA cannot be opened with it either, and its key cannot sign a CRL.
    let ca =
        CertificateAuthority::create(&tmp.path().join("ca"), config(), lax, key.clone()).unwrap();
    assert!(ca.crl().is_ok());
    assert!(matches!(
        CertificateAuthority::open(&tmp.path().join("ca"), config(), strict, key),
        Err(CaError::KeyStore(KeyStoreError::Policy(_)))
    ));
}

#[test]
fn the_ca_key_must_be_a_ca_key_and_match_the_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let home = software_home(tmp.path());
    let store = permissive(home.clone());
    let tls = store
        .generate(
            home.id(),
            &KeyId::new("tls").unwrap(),
            KeyRole::TlsServer,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    assert!(matches!(
        CertificateAuthority::create(&tmp.path().join("ca"), config(), store.clone(), tls),
        Err(CaError::WrongKeyRole { .. })
    ));
    let key = ca_key(&store, home.id());
    let dir = tmp.path().join("ca");
    drop(CertificateAuthority::create(&dir, config(), store.clone(), key.clone()).unwrap());
    assert!(matches!(
        CertificateAuthority::create(&dir, config(), store.clone(), key.clone()),
        Err(CaError::AlreadyExists { .. })
    ));
    let other = store
        .generate(
            home.id(),
            &KeyId::new("ca-other").unwrap(),
            KeyRole::CaSigning,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    assert!(matches!(
        CertificateAuthority::open(&dir, config(), store.clone(), other),
        Err(CaError::KeyMismatch { .. })
    ));
    assert!(matches!(
        CertificateAuthority::open(&tmp.path().join("none"), config(), store, key),
        Err(CaError::NotFound { .. })
    ));
}

// === records, renewal, suspension ===

#[test]
fn records_statuses_renewal_and_crls_survive_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c, d, first_crl);
    {
        let ca = ca_in(tmp.path());
        let (_, r1) = csr(vec![]);
        a = ca.issue(&r1, &grant(ae(&ca, "Cae1"))).unwrap();
        b = ca.issue(&r1, &grant(ae(&ca, "Cae2"))).unwrap();
        c = ca.issue(&r1, &grant(ae(&ca, "Sae3"))).unwrap();
        assert_ne!(a.serial, b.serial);
        assert!(a.serial.as_bytes().len() >= 8, ">= 64 bits");
        ca.suspend(&b.serial).unwrap();
        ca.revoke(&c.serial, RevocationReason::CessationOfOperation)
            .unwrap();
        // Renewal with a new key; the old certificate stays valid until it expires.
        let (_, r2) = csr(vec![uri("//secure-cse.example/id-in/Cae1")]);
        d = ca
            .renew(
                &a.serial,
                &r2,
                Validity::For(60 * DAY),
                AfterRenewal::KeepUntilExpiry,
            )
            .unwrap();
        assert_eq!(d.identity, a.identity);
        assert!(matches!(
            ca.renew(&a.serial, &r2, Validity::For(DAY), AfterRenewal::Revoke),
            Err(CaError::InvalidTransition { .. })
        ));
        assert!(matches!(
            ca.renew(&c.serial, &r2, Validity::For(DAY), AfterRenewal::Revoke),
            Err(CaError::InvalidTransition {
                status: "revoked",
                ..
            })
        ));
        // A renewal CSR must not switch identity.
        let (_, wrong) = csr(vec![uri("//secure-cse.example/id-in/Cae9")]);
        assert!(matches!(
            ca.renew(&d.serial, &wrong, Validity::For(DAY), AfterRenewal::Revoke),
            Err(CaError::IdentityMismatch { .. })
        ));
        first_crl = ca.crl().unwrap();
        assert_eq!(first_crl.entries, 2);
    }
    let ca = ca_in(tmp.path());
    let list = ca.list().unwrap();
    assert_eq!(list.len(), 4);
    let record = |s: &Serial| list.iter().find(|r| &r.serial == s).unwrap().clone();
    assert_eq!(record(&a.serial).status, Status::Active);
    assert_eq!(record(&a.serial).superseded_by.as_ref(), Some(&d.serial));
    assert!(matches!(record(&b.serial).status, Status::Suspended { .. }));
    assert!(matches!(
        record(&c.serial).status,
        Status::Revoked {
            reason: RevocationReason::CessationOfOperation,
            ..
        }
    ));
    assert_eq!(record(&d.serial).der, d.der);
    assert_eq!(ca.list_for(&a.identity).unwrap().len(), 2);
    let shown = ca
        .show(&c.serial.to_string().to_lowercase().parse().unwrap())
        .unwrap();
    assert_eq!(
        shown.identity,
        Identity::Ae("//secure-cse.example/Sae3".into())
    );

    // Renewal that revokes the old certificate at once.
    let (_, r3) = csr(vec![]);
    let e = ca
        .renew(&d.serial, &r3, Validity::For(DAY), AfterRenewal::Revoke)
        .unwrap();
    assert!(matches!(
        ca.show(&d.serial).unwrap().status,
        Status::Revoked {
            reason: RevocationReason::Superseded,
            ..
        }
    ));
    assert_eq!(ca.show(&e.serial).unwrap().status, Status::Active);

    // Transitions that make no sense are refused.
    assert!(matches!(
        ca.revoke(&c.serial, RevocationReason::KeyCompromise),
        Err(CaError::InvalidTransition { .. })
    ));
    assert!(matches!(
        ca.resume(&a.serial),
        Err(CaError::InvalidTransition { .. })
    ));
    assert!(matches!(
        ca.suspend(&b.serial),
        Err(CaError::InvalidTransition { .. })
    ));
    assert!(matches!(
        ca.show(&"0123".parse().unwrap()),
        Err(CaError::UnknownSerial { .. })
    ));

    // The CRL number continues after reopening; resumed certificates drop off the CRL.
    let crl = ca.crl().unwrap();
    assert!(crl.number > first_crl.number);
    assert_eq!(crl.entries, 3, "suspended b, revoked c and d");
    ca.resume(&b.serial).unwrap();
    let after = ca.crl().unwrap();
    assert!(after.number > crl.number);
    assert_eq!(after.entries, 2);
    let parsed = openssl::x509::X509Crl::from_der(&after.der).unwrap();
    let listed: Vec<Vec<u8>> = parsed
        .get_revoked()
        .unwrap()
        .iter()
        .map(|r| r.serial_number().to_bn().unwrap().to_vec())
        .collect();
    assert!(listed.contains(&c.serial.as_bytes().to_vec()));
    assert!(listed.contains(&d.serial.as_bytes().to_vec()));
    assert!(!listed.contains(&b.serial.as_bytes().to_vec()));
    let ca_cert = openssl::x509::X509::from_der(ca.certificate_der()).unwrap();
    assert!(parsed.verify(&ca_cert.public_key().unwrap()).unwrap());
}

#[test]
fn suspended_certificates_are_on_hold_in_the_crl() {
    if skip_unless(have_openssl(), "the openssl command").is_some() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_in(tmp.path());
    let (_, request) = csr(vec![]);
    let issued = ca.issue(&request, &grant(ae(&ca, "Cae1"))).unwrap();
    let leaf = save(tmp.path(), "leaf.pem", issued.pem().as_bytes());
    let ca_file = tmp.path().join("ca").join("ca.pem");
    let crl_path = tmp.path().join("ca.crl.pem");
    ca.suspend(&issued.serial).unwrap();
    ca.crl().unwrap().write_pem(&crl_path).unwrap();
    let (ok, text) = verify_with_crl(&ca_file, &crl_path, &leaf);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (_, text) = openssl(&["crl", "-in", crl_path.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("Certificate Hold"), "{text}");
    ca.resume(&issued.serial).unwrap();
    ca.crl().unwrap().write_pem(&crl_path).unwrap();
    let (ok, text) = verify_with_crl(&ca_file, &crl_path, &leaf);
    assert!(ok, "resumed: {text}");
}

// === durability: a certificate returned survives kill -9 ===

const CHILD_DIR: &str = "MANAGER_CA_TEST_CHILD_DIR";

/// Not a test on its own: the body of the child process of
/// `a_returned_certificate_survives_kill_9` (does nothing without its environment variable).
#[test]
fn child_issues_then_waits_to_be_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let ca = ca_in(Path::new(&dir));
    let (_, request) = csr(vec![]);
    let issued = ca.issue(&request, &grant(ae(&ca, "Cdurable"))).unwrap();
    ca.revoke(&issued.serial, RevocationReason::KeyCompromise)
        .unwrap();
    let crl = ca.crl().unwrap();
    // Reported through a file (renamed into place): libtest may capture a child's stdout.
    let report = Path::new(&dir).join("issued.txt");
    let tmp = Path::new(&dir).join("issued.tmp");
    std::fs::write(&tmp, format!("ISSUED {} CRL {}", issued.serial, crl.number)).unwrap();
    std::fs::rename(&tmp, &report).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_returned_certificate_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    drop(ca_in(tmp.path()));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ca::child_issues_then_waits_to_be_killed",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, tmp.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let report = tmp.path().join("issued.txt");
    // Wait for the child's report (or its death, which fails the test).
    while !report.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child exited before reporting: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let line = std::fs::read_to_string(&report).unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.len(), 4, "child printed {line:?}");
    let serial: Serial = parts[1].parse().unwrap();
    let crl_number: u64 = parts[3].parse().unwrap();
    let ca = ca_in(tmp.path());
    let record = ca.show(&serial).unwrap();
    assert_eq!(record.identity, ae(&ca, "Cdurable"));
    assert!(matches!(record.status, Status::Revoked { .. }));
    assert!(ca.crl().unwrap().number > crl_number);
}

// === the TLS acceptor of `security` ===

mod tls {
    use super::*;
    use security::association::{Framework, PeerIdentity};
    use security::credentials::FileCredentials;
    use security::tls::{
        CertificateConfig, HandshakeError, LocalIdentity, ServerKey, TlsAcceptor, TlsPolicy,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    type Outcome = Result<security::association::Established, HandshakeError>;

    /// Accepts one connection with `acceptor`, answers a line and reports the outcome, while
    /// `openssl s_client` connects with `cert`/`key`.
    async fn handshake(acceptor: &TlsAcceptor, cert: &Path, key: &Path, ca: &Path) -> Outcome {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let a = acceptor.clone();
        let server = tokio::spawn(async move {
            let (tcp, peer) = listener.accept().await.unwrap();
            let result = a.accept(tcp, peer).await;
            match result {
                Ok((mut stream, established)) => {
                    let _ = stream.write_all(b"hello\n").await;
                    let _ = stream.shutdown().await;
                    let mut buf = [0u8; 256];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    Ok(established)
                }
                Err(e) => Err(e),
            }
        });
        let client = tokio::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-ign_eof"])
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .arg("-CAfile")
            .arg(ca)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status();
        let (outcome, _) = tokio::join!(server, client);
        outcome.unwrap()
    }

    fn acceptor(dir: &Path, crl: &Path) -> TlsAcceptor {
        let policy = TlsPolicy {
            certificate: Some(CertificateConfig {
                chain: dir.join("server.pem"),
                key: ServerKey::File(dir.join("server.key")),
                trust_anchors: vec![dir.join("ca").join("ca.pem")],
                crls: vec![crl.to_owned()],
            }),
            handshake_timeout: Duration::from_secs(10),
            ..TlsPolicy::default()
        };
        let credentials = Arc::new(FileCredentials::parse("").unwrap());
        let local = LocalIdentity {
            sp_id: SP.into(),
            cse_id: CSE.into(),
        };
        TlsAcceptor::new(&policy, credentials, local).unwrap()
    }

    /// Writes `<name>.pem` and `<name>.key` for a certificate the CA issues to a fresh key.
    fn issue_to_files(
        ca: &CertificateAuthority,
        dir: &Path,
        name: &str,
        identity: Identity,
    ) -> IssuedCertificate {
        let (key, request) = csr(vec![]);
        let issued = ca.issue(&request, &grant(identity)).unwrap();
        save(dir, &format!("{name}.pem"), issued.pem().as_bytes());
        write_private(
            &dir.join(format!("{name}.key")),
            key.serialize_pem().as_bytes(),
        );
        issued
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_tls_acceptor_accepts_issued_certificates_and_refuses_revoked_ones() {
        if skip_unless(have_openssl(), "the openssl command").is_some() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let ca = ca_in(dir);
        // The CSE's own server certificate comes from the same CA.
        issue_to_files(&ca, dir, "server", ca.names().cse(CSE).unwrap());
        let ae1 = issue_to_files(&ca, dir, "ae1", ae(&ca, "Cae1"));
        let mn = issue_to_files(&ca, dir, "mn", ca.names().cse("id-mn").unwrap());
        let crl = dir.join("ca.crl");
        ca.crl().unwrap().write_der(&crl).unwrap();
        let ca_pem = dir.join("ca").join("ca.pem");

        let tls = acceptor(dir, &crl);
        let e = handshake(&tls, &dir.join("ae1.pem"), &dir.join("ae1.key"), &ca_pem)
            .await
            .unwrap();
        assert_eq!(e.framework, Framework::Certificate);
        assert_eq!(
            e.binding.identity,
            PeerIdentity::Ae("//secure-cse.example/id-in/Cae1".into())
        );
        assert_eq!(
            e.binding.identity,
            PeerIdentity::Ae(ae1.identity.as_str().into())
        );
        let digest = security::tls::certificate_id::certificate_digest(&ae1.der).expect("digest");
        assert_eq!(e.credential_id, format!("33-{digest}"));
        let e = handshake(&tls, &dir.join("mn.pem"), &dir.join("mn.key"), &ca_pem)
            .await
            .unwrap();
        assert_eq!(
            e.binding.identity,
            PeerIdentity::Cse(mn.identity.as_str().into())
        );

        ca.revoke(&ae1.serial, RevocationReason::KeyCompromise)
            .unwrap();
        ca.crl().unwrap().write_der(&crl).unwrap();
        let tls = acceptor(dir, &crl);
        let refused = handshake(&tls, &dir.join("ae1.pem"), &dir.join("ae1.key"), &ca_pem).await;
        match refused {
            Err(HandshakeError::Refused { reason, .. }) => {
                assert!(reason.contains("revoked"), "{reason}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Others from the same CA are unaffected.
        assert!(
            handshake(&tls, &dir.join("mn.pem"), &dir.join("mn.key"), &ca_pem)
                .await
                .is_ok()
        );
    }
}

// === level 3: the CA key in SoftHSM ===

const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// SoftHSM with a token directory of this test process (the module reads `SOFTHSM2_CONF`
/// once, so it is set before any test loads it).
fn softhsm_dir() -> Option<&'static PathBuf> {
    if skip_unless(Path::new(SOFTHSM_MODULE).exists(), "SoftHSMv2 (softhsm2)").is_some() {
        return None;
    }
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    Some(DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "manager-softhsm-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        // NOTE(ca tests): set once, before this process loads the PKCS#11 module.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        dir
    }))
}

#[test]
fn a_ca_key_in_softhsm_signs_certificates_openssl_verifies() {
    use keystore::pkcs11::{Pkcs11Config, Pkcs11Home};
    use keystore::{SecretBytes, SecretSource};
    let Some(hsm) = softhsm_dir() else {
        return;
    };
    if skip_unless(have_openssl(), "the openssl command").is_some() {
        return;
    }
    keystore::pkcs11::init_token(
        Path::new(SOFTHSM_MODULE),
        "ca-token",
        &SecretBytes::from_slice(b"so-pin-5678"),
        &SecretBytes::from_slice(b"1234"),
    )
    .unwrap();
    let pin = hsm.join("ca-token.pin");
    write_private(&pin, b"1234\n");
    let home = Arc::new(
        Pkcs11Home::open(&Pkcs11Config {
            module: SOFTHSM_MODULE.into(),
            token_label: "ca-token".into(),
            pin: SecretSource::File(pin),
        })
        .unwrap(),
    );
    // The default policy: the CA key needs level 2 or more; the token is level 3.
    let store = Arc::new(KeyStore::new(KeyStorePolicy::default()).with_home(home.clone()));
    let key = store
        .generate(
            home.id(),
            &ca_key_id(),
            KeyRole::CaSigning,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    home.verify_non_extractable(&key).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ca =
        CertificateAuthority::create(&tmp.path().join("ca"), config(), store.clone(), key.clone())
            .unwrap();
    assert_eq!(ca.key_level(), Level::Hsm);
    let (_, request) = csr(vec![]);
    let issued = ca.issue(&request, &grant(ae(&ca, "Chsm"))).unwrap();
    let leaf = save(tmp.path(), "leaf.pem", issued.pem().as_bytes());
    let crl_path = tmp.path().join("ca.crl.pem");
    ca.crl().unwrap().write_pem(&crl_path).unwrap();
    let ca_file = tmp.path().join("ca").join("ca.pem");
    let (ok, text) = verify_with_crl(&ca_file, &crl_path, &leaf);
    assert!(ok, "{text}");
    // Reopened with the token's key, it keeps issuing.
    drop(ca);
    let ca = CertificateAuthority::open(&tmp.path().join("ca"), config(), store, key).unwrap();
    ca.revoke(&issued.serial, RevocationReason::Unspecified)
        .unwrap();
    ca.crl().unwrap().write_pem(&crl_path).unwrap();
    let (ok, text) = verify_with_crl(&ca_file, &crl_path, &leaf);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
}
