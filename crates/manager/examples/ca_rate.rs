//! Certificates issued per second by the certificate authority, with the CA key at level 1
//! (encrypted software store) and at level 3 (SoftHSM2, PKCS#11), next to a baseline in the
//! same run: the `openssl` crate's `X509Builder` signing with an in-memory key, with the
//! same extensions, after reading and verifying the same CSR.
//!
//! Each CA issue reads and verifies the CSR, builds the certificate with rcgen, signs it in
//! the key store and commits its record to SQLite with fsync. The baseline keeps no record.
//!
//! The rows are interleaved in rounds (each row runs for the given time once per round) and
//! each figure is the median over the rounds, with the minimum and maximum: on a shared
//! machine the rate moves a lot between seconds, and interleaving exposes every row to the
//! same noise.
//!
//! `cargo run --release -p manager --example ca_rate [SECONDS per row and round, default 1] [ROUNDS, default 7]`
#![allow(clippy::unwrap_used, missing_docs)]

use keystore::pkcs11::{Pkcs11Config, Pkcs11Home};
use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::{
    Algorithm, KeyHome, KeyId, KeyRole, KeyStore, KeyStorePolicy, Level, SecretBytes, SecretSource,
};
use manager::ca::{CaConfig, CertificateAuthority, Grant, Validity};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509Req, X509ReqBuilder, X509};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn p256() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn csr_pem(key: &PKey<Private>) -> Vec<u8> {
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_pubkey(key).unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build().to_pem().unwrap()
}

/// Runs `op` repeatedly for `secs` and returns operations per second.
fn rate(secs: Duration, mut op: impl FnMut()) -> f64 {
    op(); // warm-up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < secs {
        op();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn config() -> CaConfig {
    let mut c = CaConfig::new("secure-cse.example", "id-in");
    c.crl_distribution_points = vec!["http://localhost:8080/.well-known/crl/ca.crl".into()];
    c
}

fn ca_rate(ca: &CertificateAuthority, csr: &[u8], secs: Duration) -> f64 {
    let grant = Grant::new(
        ca.names().ae("Cbench").unwrap(),
        Validity::For(Duration::from_secs(30 * 86_400)),
    );
    rate(secs, || {
        ca.issue(csr, &grant).unwrap();
    })
}

/// Median, minimum and maximum.
fn summary(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

/// The baseline's CA: an in-memory key and its self-signed certificate.
fn openssl_ca() -> (PKey<Private>, X509) {
    let ca_key = p256();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "baseline CA").unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&ca_key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(3650).unwrap())
        .unwrap();
    b.append_extension(
        BasicConstraints::new()
            .critical()
            .ca()
            .pathlen(0)
            .build()
            .unwrap(),
    )
    .unwrap();
    let ski = openssl::x509::extension::SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    (ca_key, b.build())
}

/// The baseline: what `ca.issue` does, with the openssl crate and an in-memory CA key, and
/// no record.
fn openssl_rate(
    ca_key: &PKey<Private>,
    ca: &X509,
    csr: &[u8],
    secs: Duration,
    mut record: Option<&mut std::fs::File>,
) -> f64 {
    rate(secs, || {
        let req = X509Req::from_pem(csr).unwrap();
        let key = req.public_key().unwrap();
        assert!(req.verify(&key).unwrap());
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&X509NameBuilder::new().unwrap().build())
            .unwrap();
        b.set_issuer_name(ca.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.append_extension(ExtendedKeyUsage::new().client_auth().build().unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .critical()
            .uri("onem2m://secure-cse.example/id-in/Cbench")
            .build(&b.x509v3_context(Some(ca), None))
            .unwrap();
        b.append_extension(san).unwrap();
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(ca), None))
            .unwrap();
        b.append_extension(aki).unwrap();
        b.sign(ca_key, MessageDigest::sha256()).unwrap();
        let der = b.build().to_der().unwrap();
        if let Some(file) = record.as_deref_mut() {
            use std::io::Write;
            file.write_all(&der).unwrap();
            file.sync_data().unwrap();
        }
        std::hint::black_box(der);
    })
}

fn main() {
    let arg = |n: usize, default: u64| {
        std::env::args()
            .nth(n)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let secs = Duration::from_secs(arg(1, 1));
    let rounds = arg(2, 7).max(1);
    let tmp = tempfile::tempdir().unwrap();
    // SoftHSM reads its configuration once, when the module is loaded: set it first.
    let hsm_dir = tmp.path().join("softhsm");
    std::fs::create_dir_all(hsm_dir.join("tokens")).unwrap();
    let conf = hsm_dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            hsm_dir.join("tokens").display()
        ),
    )
    .unwrap();
    std::env::set_var("SOFTHSM2_CONF", &conf);

    let leaf_key = p256();
    let csr = csr_pem(&leaf_key);
    let ca_id = KeyId::new("ca").unwrap();

    // Level 1: the encrypted software store (the policy is lowered for it: default is 2).
    let kek = tmp.path().join("kek");
    std::fs::write(&kek, "07".repeat(32)).unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let home = Arc::new(
        SoftwareHome::create(&SoftwareConfig {
            dir: tmp.path().join("keys"),
            kek: KekSource::KeyFile(kek),
        })
        .unwrap(),
    );
    let store = Arc::new(
        KeyStore::new(KeyStorePolicy::default().with_minimum(KeyRole::CaSigning, Level::Software))
            .with_home(home.clone()),
    );
    let key = store
        .generate(
            home.id(),
            &ca_id,
            KeyRole::CaSigning,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    let sign1 = (store.clone(), key.clone());
    let ca1 = CertificateAuthority::create(&tmp.path().join("ca1"), config(), store, key).unwrap();

    // Level 3: SoftHSM.
    let ca3 = if Path::new(SOFTHSM_MODULE).exists() {
        keystore::pkcs11::init_token(
            Path::new(SOFTHSM_MODULE),
            "bench",
            &SecretBytes::from_slice(b"so-pin-5678"),
            &SecretBytes::from_slice(b"1234"),
        )
        .unwrap();
        let home = Arc::new(
            Pkcs11Home::open(&Pkcs11Config {
                module: SOFTHSM_MODULE.into(),
                token_label: "bench".into(),
                pin: SecretSource::Provided(SecretBytes::from_slice(b"1234")),
            })
            .unwrap(),
        );
        let store = Arc::new(KeyStore::new(KeyStorePolicy::default()).with_home(home.clone()));
        let key = store
            .generate(
                home.id(),
                &ca_id,
                KeyRole::CaSigning,
                Algorithm::EcdsaP256Sha256,
            )
            .unwrap();
        let sign3 = (store.clone(), key.clone());
        Some((
            CertificateAuthority::create(&tmp.path().join("ca3"), config(), store, key).unwrap(),
            sign3,
        ))
    } else {
        println!("level 3 skipped: {SOFTHSM_MODULE} is missing");
        None
    };
    let (base_key, base_ca) = openssl_ca();

    // A to-be-signed certificate is about 400 bytes.
    let tbs = [0x5au8; 400];
    let sign_rate = |(store, key): &(Arc<KeyStore>, keystore::KeyHandle)| {
        rate(secs, || {
            std::hint::black_box(store.sign(key, &tbs).unwrap());
        })
    };
    let mut record = std::fs::File::create(tmp.path().join("baseline-records")).unwrap();
    let (mut l1, mut l3, mut base, mut base_sync, mut s1, mut s3) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for _ in 0..rounds {
        base.push(openssl_rate(&base_key, &base_ca, &csr, secs, None));
        base_sync.push(openssl_rate(
            &base_key,
            &base_ca,
            &csr,
            secs,
            Some(&mut record),
        ));
        l1.push(ca_rate(&ca1, &csr, secs));
        s1.push(sign_rate(&sign1));
        if let Some((ca3, sign3)) = &ca3 {
            l3.push(ca_rate(ca3, &csr, secs));
            s3.push(sign_rate(sign3));
        }
    }
    println!(
        "certificates issued per second: {rounds} rounds of {} s per row",
        secs.as_secs()
    );
    println!("| row | median/s | min/s | max/s |\n|---|---:|---:|---:|");
    let row = |name: &str, rates: Vec<f64>| {
        if !rates.is_empty() {
            let (median, min, max) = summary(rates);
            println!("| {name} | {median:.0} | {min:.0} | {max:.0} |");
        }
    };
    row(
        "baseline: openssl X509Builder, in-memory key, no record",
        base,
    );
    row(
        "baseline + append the DER to a file and fdatasync it",
        base_sync,
    );
    row("CA, key at level 1 (software store)", l1);
    row("CA, key at level 3 (SoftHSM2)", l3);
    row("for reference: KeyStore::sign alone, level 1", s1);
    row(
        "for reference: KeyStore::sign alone, level 3 (SoftHSM2)",
        s3,
    );
}
