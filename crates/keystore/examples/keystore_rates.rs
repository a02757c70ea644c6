//! Signatures/s and HMACs/s at each level, next to the raw backend in the same run:
//! OpenSSL for level 1, direct tss-esapi calls for level 2, direct cryptoki calls for level 3.
//!
//! ```sh
//! cargo run --release -p keystore --example keystore_rates      # KEYSTORE_BENCH_SECS=1 by default
//! ```
//!
//! Needs swtpm and SoftHSM (`.ci/keystore-services.sh`); a level whose tool is missing is
//! skipped with a note. The raw figures exclude what the abstraction adds on purpose (SHA-256
//! of the message is precomputed, DER encoding, handle checks, locking, usage tracking).
#![allow(clippy::unwrap_used, missing_docs)]

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use keystore::pkcs11::{init_token, Pkcs11Config, Pkcs11Home};
use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::tpm::{TpmConfig, TpmHome};
use keystore::{Algorithm, KeyHome, KeyId, KeyRole, SecretBytes, SecretSource};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn rate(secs: f64, mut op: impl FnMut()) -> f64 {
    for _ in 0..10 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..10 {
            op();
        }
        n += 10;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn row(level: &str, op: &str, raw: f64, ks: f64) {
    println!(
        "{level:<22} {op:<10} raw {raw:>10.0}/s   keystore {ks:>10.0}/s   overhead {:>5.1} %",
        (raw / ks - 1.0) * 100.0
    );
}

fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

fn main() {
    let secs: f64 = std::env::var("KEYSTORE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let tmp = tempfile::tempdir().unwrap();
    // SoftHSM reads its configuration at C_Initialize: set it before anything else runs.
    let hsm_dir = tmp.path().join("softhsm");
    std::fs::create_dir_all(hsm_dir.join("tokens")).unwrap();
    std::fs::write(
        hsm_dir.join("softhsm2.conf"),
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            hsm_dir.join("tokens").display()
        ),
    )
    .unwrap();
    std::env::set_var("SOFTHSM2_CONF", hsm_dir.join("softhsm2.conf"));

    let digest = openssl::sha::sha256(b"benchmark message");
    println!("{secs} s per figure; message = 17 bytes, HMAC input = 32 bytes\n");
    level1(tmp.path(), secs, &digest);
    if Path::new(SOFTHSM).exists() {
        level3(secs, &digest);
    } else {
        println!("level 3 skipped: {SOFTHSM} missing");
    }
    match Command::new("swtpm").arg("--version").output() {
        Ok(_) => level2(tmp.path(), secs, &digest),
        Err(_) => println!("level 2 skipped: swtpm missing"),
    }
}

fn level1(dir: &Path, secs: f64, digest: &[u8; 32]) {
    let home = SoftwareHome::create(&SoftwareConfig {
        dir: dir.join("soft"),
        kek: KekSource::Passphrase(SecretSource::Provided(SecretBytes::from_slice(b"bench"))),
    })
    .unwrap();
    let k = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let h = home
        .generate(&id("psk"), KeyRole::PskMaster, Algorithm::HmacSha256)
        .unwrap();
    let raw_key = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap();
    let raw = rate(secs, || {
        openssl::ecdsa::EcdsaSig::sign(digest, &raw_key)
            .unwrap()
            .to_der()
            .unwrap();
    });
    let ks = rate(secs, || {
        home.sign_digest(&k, digest).unwrap();
    });
    row("level 1 (software)", "ECDSA", raw, ks);
    let hmac_key = openssl::pkey::PKey::hmac(&[7u8; 32]).unwrap();
    let raw = rate(secs, || {
        let mut s =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &hmac_key).unwrap();
        s.update(digest).unwrap();
        s.sign_to_vec().unwrap();
    });
    let ks = rate(secs, || {
        home.hmac(&h, digest).unwrap();
    });
    row("level 1 (software)", "HMAC", raw, ks);
}

fn level3(secs: f64, digest: &[u8; 32]) {
    let module = Path::new(SOFTHSM);
    init_token(
        module,
        "bench",
        &SecretBytes::from_slice(b"so-pin-5678"),
        &SecretBytes::from_slice(b"1234"),
    )
    .unwrap();
    let home = Pkcs11Home::open(&Pkcs11Config {
        module: module.into(),
        token_label: "bench".into(),
        pin: SecretSource::Provided(SecretBytes::from_slice(b"1234")),
    })
    .unwrap();
    let k = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let h = home
        .generate(&id("psk"), KeyRole::PskMaster, Algorithm::HmacSha256)
        .unwrap();

    // Raw cryptoki on a second session of the same (already initialised, logged-in) module.
    let ctx = cryptoki::context::Pkcs11::new(module).unwrap();
    let _ = ctx.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == "bench")
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    let find = |class| {
        session
            .find_objects(&[Attribute::Class(class), Attribute::Label(b"tls".to_vec())])
            .unwrap()[0]
    };
    let priv_key = find(ObjectClass::PRIVATE_KEY);
    let secret = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(b"psk".to_vec()),
        ])
        .unwrap()[0];
    let raw = rate(secs, || {
        session.sign(&Mechanism::Ecdsa, priv_key, digest).unwrap();
    });
    let ks = rate(secs, || {
        home.sign_digest(&k, digest).unwrap();
    });
    row("level 3 (SoftHSM)", "ECDSA", raw, ks);
    let raw = rate(secs, || {
        session
            .sign(&Mechanism::Sha256Hmac, secret, digest)
            .unwrap();
    });
    let ks = rate(secs, || {
        home.hmac(&h, digest).unwrap();
    });
    row("level 3 (SoftHSM)", "HMAC", raw, ks);
}

struct Swtpm(Child);
impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_swtpm(state: &Path) -> (Swtpm, String) {
    for attempt in 0u32.. {
        // Below the ephemeral range: a busy machine leaves ephemeral ports in TIME_WAIT, and
        // swtpm binds without SO_REUSEADDR.
        let port =
            20_000 + ((std::process::id().wrapping_mul(7919) + attempt * 104_729) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 1)).is_err() {
            continue;
        }
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let tpm = Swtpm(child);
        for _ in 0..250 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (tpm, format!("swtpm:host=127.0.0.1,port={port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    unreachable!("the port loop does not end")
}

fn level2(dir: &Path, secs: f64, digest: &[u8; 32]) {
    use tss_esapi::attributes::ObjectAttributesBuilder;
    use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
    use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
    use tss_esapi::interface_types::ecc::EccCurve;
    use tss_esapi::interface_types::resource_handles::Hierarchy;
    use tss_esapi::interface_types::session_handles::AuthSession;
    use tss_esapi::structures::{
        Digest, EccPoint, EccScheme, HashScheme, HashcheckTicket, KeyedHashScheme, MaxBuffer,
        PublicBuilder, PublicEccParametersBuilder, PublicKeyedHashParameters, SignatureScheme,
        SymmetricDefinitionObject,
    };
    use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;

    let state = dir.join("swtpm");
    std::fs::create_dir_all(&state).unwrap();
    let (_tpm, tcti) = start_swtpm(&state);

    // Raw tss-esapi first (swtpm serves one connection at a time): keys stay loaded.
    let (raw_sign, raw_hmac) = {
        let mut ctx =
            tss_esapi::Context::new(tss_esapi::TctiNameConf::from_str(&tcti).unwrap()).unwrap();
        ctx.set_sessions((Some(AuthSession::Password), None, None));
        let attrs = |restricted: bool| {
            ObjectAttributesBuilder::new()
                .with_fixed_tpm(true)
                .with_fixed_parent(true)
                .with_sensitive_data_origin(true)
                .with_user_with_auth(true)
                .with_restricted(restricted)
                .with_decrypt(restricted)
                .with_sign_encrypt(!restricted)
                .build()
                .unwrap()
        };
        let primary = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs(true))
            .with_ecc_parameters(
                PublicEccParametersBuilder::new_restricted_decryption_key(
                    SymmetricDefinitionObject::AES_128_CFB,
                    EccCurve::NistP256,
                )
                .build()
                .unwrap(),
            )
            .with_ecc_unique_identifier(EccPoint::default())
            .build()
            .unwrap();
        let primary = ctx
            .create_primary(Hierarchy::Owner, primary, None, None, None, None)
            .unwrap()
            .key_handle;
        let ecc = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs(false))
            .with_ecc_parameters(
                PublicEccParametersBuilder::new_unrestricted_signing_key(
                    EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
                    EccCurve::NistP256,
                )
                .build()
                .unwrap(),
            )
            .with_ecc_unique_identifier(EccPoint::default())
            .build()
            .unwrap();
        let created = ctx.create(primary, ecc, None, None, None, None).unwrap();
        let key = ctx
            .load(primary, created.out_private, created.out_public)
            .unwrap();
        let raw_sign = rate(secs, || {
            let ticket = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
                tag: TPM2_ST_HASHCHECK,
                hierarchy: TPM2_RH_NULL,
                digest: Default::default(),
            })
            .unwrap();
            ctx.sign(
                key,
                Digest::try_from(digest.to_vec()).unwrap(),
                SignatureScheme::Null,
                ticket,
            )
            .unwrap();
        });
        ctx.flush_context(key.into()).unwrap();
        let keyed = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::KeyedHash)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs(false))
            .with_keyed_hash_parameters(PublicKeyedHashParameters::new(
                KeyedHashScheme::HMAC_SHA_256,
            ))
            .with_keyed_hash_unique_identifier(Digest::default())
            .build()
            .unwrap();
        let created = ctx.create(primary, keyed, None, None, None, None).unwrap();
        let key = ctx
            .load(primary, created.out_private, created.out_public)
            .unwrap();
        let raw_hmac = rate(secs, || {
            ctx.hmac(
                key.into(),
                MaxBuffer::try_from(digest.to_vec()).unwrap(),
                HashingAlgorithm::Sha256,
            )
            .unwrap();
        });
        ctx.flush_context(key.into()).unwrap();
        ctx.flush_context(primary.into()).unwrap();
        (raw_sign, raw_hmac)
    };

    let home = TpmHome::open(&TpmConfig {
        tcti,
        dir: dir.join("tpm-keys"),
    })
    .unwrap();
    let k = home
        .generate(&id("ca"), KeyRole::CaSigning, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let h = home
        .generate(&id("psk"), KeyRole::PskMaster, Algorithm::HmacSha256)
        .unwrap();
    let ks = rate(secs, || {
        home.sign_digest(&k, digest).unwrap();
    });
    row("level 2 (swtpm)", "ECDSA", raw_sign, ks);
    let ks = rate(secs, || {
        home.hmac(&h, digest).unwrap();
    });
    row("level 2 (swtpm)", "HMAC", raw_hmac, ks);
    // Alternating two keys defeats the home's one-key load cache (a TPM load per operation).
    let k2 = home
        .generate(&id("tls"), KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)
        .unwrap();
    let mut flip = false;
    let ks = rate(secs, || {
        flip = !flip;
        home.sign_digest(if flip { &k } else { &k2 }, digest)
            .unwrap();
    });
    row("level 2 (swtpm)", "ECDSA*", raw_sign, ks);
    println!("  * two keys alternating: every signature reloads the wrapped key");
}
