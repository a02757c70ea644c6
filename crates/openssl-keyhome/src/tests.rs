#![allow(clippy::unwrap_used)]

use super::*;
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::sign::{Signer, Verifier};
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::{X509Name, X509};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A software signer standing in for a home: counts its signatures, can be told to fail or
/// to panic.
struct Soft {
    key: EcKey<Private>,
    calls: AtomicUsize,
    mode: AtomicUsize, // 0 sign, 1 refuse, 2 panic
}

impl DigestSigner for Soft {
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, SignRefused> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode.load(Ordering::SeqCst) {
            0 => openssl::ecdsa::EcdsaSig::sign(digest, &self.key)
                .and_then(|s| s.to_der())
                .map_err(|_| SignRefused),
            1 => Err(SignRefused),
            _ => panic!("signer panics"),
        }
    }
}

fn soft() -> Arc<Soft> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    Arc::new(Soft {
        key: EcKey::generate(&group).unwrap(),
        calls: AtomicUsize::new(0),
        mode: AtomicUsize::new(0),
    })
}

fn spki(key: &EcKey<Private>) -> Vec<u8> {
    PKey::from_ec_key(key.clone())
        .unwrap()
        .public_key_to_der()
        .unwrap()
}

/// A self-signed certificate for the key (signed by the remote key itself).
fn certificate(key: &PKey<Private>) -> X509 {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build()
}

#[test]
fn signatures_come_from_the_signer_and_verify() {
    let s = soft();
    let key = remote_ec_key(&spki(&s.key), s.clone()).unwrap();
    for md in [
        MessageDigest::sha256(),
        MessageDigest::sha384(),
        MessageDigest::sha1(),
    ] {
        let mut signer = Signer::new(md, &key).unwrap();
        signer.update(b"hello").unwrap();
        let sig = signer.sign_to_vec().unwrap();
        let public = PKey::public_key_from_der(&spki(&s.key)).unwrap();
        let mut v = Verifier::new(md, &public).unwrap();
        v.update(b"hello").unwrap();
        assert!(v.verify(&sig).unwrap());
    }
    assert_eq!(s.calls.load(Ordering::SeqCst), 3);
    // The low-level path (ECDSA_do_sign, through sign_sig).
    let ec = key.ec_key().unwrap();
    let sig = openssl::ecdsa::EcdsaSig::sign(&[7u8; 32], &ec).unwrap();
    assert!(sig.verify(&[7u8; 32], &s.key).unwrap());
    assert_eq!(s.calls.load(Ordering::SeqCst), 4);
}

#[test]
fn refuses_what_is_not_a_p256_public_key() {
    let s = soft();
    assert!(matches!(
        remote_ec_key(b"garbage", s.clone()),
        Err(RemoteKeyError::NotAnEcKey)
    ));
    let p384 = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap();
    assert!(matches!(
        remote_ec_key(&spki(&p384), s),
        Err(RemoteKeyError::NotP256)
    ));
}

#[test]
fn digests_are_normalised_as_ecdsa_does() {
    assert_eq!(p256_digest(&[1u8; 48]), Some([1u8; 32]));
    let short = p256_digest(&[9u8; 20]).unwrap();
    assert_eq!(&short[..12], &[0u8; 12]);
    assert_eq!(&short[12..], &[9u8; 20]);
    assert_eq!(p256_digest(&[]), None);
    assert_eq!(p256_digest(&[0u8; 65]), None);
}

/// One handshake at `version` against a server whose key is `key`; the result of the
/// client's connect.
fn handshake(key: &PKey<Private>, cert: &X509, version: SslVersion) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    acceptor.set_private_key(key).unwrap();
    acceptor.set_certificate(cert).unwrap();
    acceptor.check_private_key().unwrap();
    acceptor.set_min_proto_version(Some(version)).unwrap();
    acceptor.set_max_proto_version(Some(version)).unwrap();
    let acceptor = acceptor.build();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        acceptor.accept(tcp).map(|_| ()).map_err(|e| e.to_string())
    });
    let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
    connector.set_verify(SslVerifyMode::PEER);
    connector.cert_store_mut().add_cert(cert.clone()).unwrap();
    if version == SslVersion::TLS1_2 {
        connector
            .set_cipher_list("ECDHE-ECDSA-AES128-GCM-SHA256")
            .unwrap();
    }
    let connector = connector.build();
    let tcp = TcpStream::connect(addr).unwrap();
    let client = connector
        .connect("localhost", tcp)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let _ = server.join();
    client
}

#[test]
fn tls12_and_tls13_handshakes_sign_through_the_signer() {
    let s = soft();
    let key = remote_ec_key(&spki(&s.key), s.clone()).unwrap();
    let cert = certificate(&key);
    let before = s.calls.load(Ordering::SeqCst);
    handshake(&key, &cert, SslVersion::TLS1_3).unwrap();
    handshake(&key, &cert, SslVersion::TLS1_2).unwrap();
    assert_eq!(s.calls.load(Ordering::SeqCst), before + 2);
}

#[test]
fn a_failing_or_panicking_signer_fails_the_handshake_only() {
    let s = soft();
    let key = remote_ec_key(&spki(&s.key), s.clone()).unwrap();
    let cert = certificate(&key);
    s.mode.store(1, Ordering::SeqCst);
    assert!(handshake(&key, &cert, SslVersion::TLS1_3).is_err());
    s.mode.store(2, Ordering::SeqCst);
    assert!(handshake(&key, &cert, SslVersion::TLS1_2).is_err());
    s.mode.store(0, Ordering::SeqCst);
    handshake(&key, &cert, SslVersion::TLS1_3).unwrap();
}

#[test]
fn the_signer_is_released_with_the_key() {
    let s = soft();
    let key = remote_ec_key(&spki(&s.key), s.clone()).unwrap();
    let copy = key.ec_key().unwrap(); // another reference to the same EC_KEY
    assert_eq!(Arc::strong_count(&s), 2);
    drop(key);
    assert_eq!(Arc::strong_count(&s), 2);
    drop(copy);
    assert_eq!(Arc::strong_count(&s), 1);
}
