//! Start-up checks: a policy or file that cannot work stops `TlsAcceptor::new` with an error
//! naming the file and the problem.

use crate::common;

use common::*;
use security::tls::{CertificateConfig, LocalIdentity, TlsAcceptor, TlsError, TlsPolicy};
use std::path::{Path, PathBuf};

fn build(policy: &TlsPolicy) -> Result<TlsAcceptor, TlsError> {
    TlsAcceptor::new(policy, credentials(), local())
}

fn with(change: impl FnOnce(&mut CertificateConfig)) -> TlsPolicy {
    let mut config = certificate_config();
    change(&mut config);
    TlsPolicy {
        certificate: Some(config),
        ..both()
    }
}

fn scratch(name: &str, content: &[u8], mode: u32) -> PathBuf {
    let path = pki().dir.join(name);
    std::fs::write(&path, content).expect("write");
    set_mode(&path, mode);
    path
}

#[track_caller]
fn fails(policy: TlsPolicy, names: &Path, says: &str) -> TlsError {
    let err = build(&policy).expect_err("must not start");
    let text = err.to_string();
    assert!(
        text.contains(&*names.to_string_lossy()),
        "error names {}: {text}",
        names.display()
    );
    assert!(text.contains(says), "error says {says:?}: {text}");
    err
}

#[test]
fn a_policy_without_framework_or_with_zero_limits_is_refused() {
    assert!(matches!(
        build(&TlsPolicy::default()),
        Err(TlsError::NoFramework)
    ));
    assert!(matches!(
        build(&TlsPolicy {
            max_handshakes: 0,
            ..psk_only()
        }),
        Err(TlsError::InvalidPolicy(_))
    ));
    assert!(matches!(
        build(&TlsPolicy {
            max_handshakes_per_ip: 0,
            ..psk_only()
        }),
        Err(TlsError::InvalidPolicy(_))
    ));
    assert!(matches!(
        build(&TlsPolicy {
            handshake_timeout: std::time::Duration::ZERO,
            ..psk_only()
        }),
        Err(TlsError::InvalidPolicy(_))
    ));
    assert!(matches!(
        build(&with(|c| c.trust_anchors.clear())),
        Err(TlsError::InvalidPolicy(_))
    ));
    let nobody = LocalIdentity {
        sp_id: "".into(),
        cse_id: "id-in".into(),
    };
    assert!(matches!(
        TlsAcceptor::new(&psk_only(), credentials(), nobody),
        Err(TlsError::InvalidPolicy(_))
    ));
}

#[test]
fn psk_alone_needs_no_file_and_debug_shows_no_secret() {
    let acceptor = build(&psk_only()).expect("PSK only");
    let text = format!("{acceptor:?}");
    assert!(
        text.contains("psk: true") && text.contains("certificate: false"),
        "{text}"
    );
    let acceptor = build(&both()).expect("both");
    let text = format!("{acceptor:?}");
    assert!(
        !text.contains("PRIVATE") && !text.contains(PSK_HEX) && !text.contains(".key"),
        "{text}"
    );
    let suites = acceptor.cipher_suites();
    assert_eq!(
        suites.first(),
        Some(&"TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256")
    );
    assert!(
        suites.contains(&"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256")
            && suites.contains(&"TLS_PSK_WITH_AES_128_CBC_SHA256")
    );
    assert_eq!(suites.last(), Some(&"TLS_CHACHA20_POLY1305_SHA256"));
}

#[test]
fn missing_and_garbage_files() {
    let missing = pki().dir.join("nope.pem");
    let err = fails(with(|c| c.chain = missing.clone()), &missing, "cannot read");
    assert!(matches!(err, TlsError::Read { .. }));
    let garbage = scratch("garbage.pem", b"hello", 0o644);
    fails(
        with(|c| c.chain = garbage.clone()),
        &garbage,
        "PEM certificate",
    );
    fails(
        with(|c| c.trust_anchors = vec![garbage.clone()]),
        &garbage,
        "PEM certificate",
    );
    let garbage_key = scratch(
        "garbage.key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        0o600,
    );
    fails(
        with(|c| c.key = garbage_key.clone().into()),
        &garbage_key,
        "not an unencrypted PEM private key",
    );
}

#[test]
fn the_key_must_match_and_stay_private() {
    let other = pki().client("ae1").key.clone();
    let err = fails(
        with(|c| c.key = other.clone().into()),
        &other,
        "does not belong to the certificate",
    );
    assert!(matches!(err, TlsError::KeyMismatch { .. }));
    let content = std::fs::read(&pki().server.key).expect("read");
    let open = scratch("server-open.key", &content, 0o644);
    let err = fails(with(|c| c.key = open.clone().into()), &open, "chmod 600");
    assert!(
        !err.to_string().contains("PRIVATE KEY"),
        "no key material in errors"
    );
}

#[test]
fn server_chain_checks() {
    let p = pki();
    let expired = p.client("expired").clone();
    fails(
        with(|c| (c.chain, c.key) = (expired.cert.clone(), expired.key.clone().into())),
        &expired.cert,
        "expired on",
    );
    let ca = std::fs::read_to_string(&p.ca).expect("read");
    let server = std::fs::read_to_string(&p.server.cert).expect("read");
    let reversed = scratch("reversed.pem", (ca + &server).as_bytes(), 0o644);
    fails(
        with(|c| c.chain = reversed.clone()),
        &reversed,
        "leaf first",
    );
    // An RSA server certificate cannot serve the ECDHE_ECDSA suites.
    let rsa = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa"))
        .expect("pkey");
    let mut name = openssl::x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "rsa").expect("cn");
    let name = name.build();
    let mut b = openssl::x509::X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&rsa).expect("key");
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("now"))
        .expect("nb");
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).expect("later"))
        .expect("na");
    b.sign(&rsa, openssl::hash::MessageDigest::sha256())
        .expect("sign");
    let cert = scratch("rsa.pem", &b.build().to_pem().expect("pem"), 0o644);
    let key = scratch(
        "rsa.key",
        &rsa.private_key_to_pem_pkcs8().expect("pem"),
        0o600,
    );
    fails(
        with(|c| (c.chain, c.key) = (cert.clone(), key.clone().into())),
        &cert,
        "not an ECDSA key",
    );
}

#[test]
fn crl_checks() {
    let p = pki();
    let garbage = scratch("garbage.crl", b"\x30\x03\x02\x01\x00", 0o644);
    let err = fails(
        with(|c| c.crls = vec![garbage.clone()]),
        &garbage,
        "neither a PEM nor a DER CRL",
    );
    assert!(matches!(err, TlsError::InvalidCrl { .. }));
    let other = p.other_crl.clone();
    fails(
        with(|c| c.crls = vec![other.clone()]),
        &other,
        "not issued (or not signed) by any configured trust anchor",
    );
    let other_ca = p.other_ca.clone();
    fails(
        with(|c| c.trust_anchors.push(other_ca.clone())),
        &other_ca,
        "no CRL is given for the trust anchor",
    );
    // With both CRLs both anchors are covered.
    build(&with(|c| {
        c.trust_anchors.push(p.other_ca.clone());
        c.crls.push(p.other_crl.clone());
    }))
    .expect("both anchors have CRLs");

    // An expired CRL.
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(&p.ca_key).expect("read")).expect("key");
    let ca =
        rcgen::CertificateParams::from_ca_cert_pem(&std::fs::read_to_string(&p.ca).expect("read"))
            .expect("params")
            .self_signed(&ca_key)
            .expect("ca");
    let stale = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2020, 1, 1),
        next_update: rcgen::date_time_ymd(2021, 1, 1),
        crl_number: rcgen::SerialNumber::from_slice(&[2]),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca, &ca_key)
    .expect("crl");
    let stale = scratch("stale.crl", stale.pem().expect("pem").as_bytes(), 0o644);
    fails(with(|c| c.crls = vec![stale.clone()]), &stale, "expired");
}
