//! Test vectors for the key derivations: every derivation is computed by `manager::kdf` (in
//! software and, where the parent key can live in a key store, inside a level-1 home) and
//! compared with an independent computation done at test time by Python 3 (`hmac`,
//! `hashlib`, `unicodedata`) and, for HMAC and HKDF-Extract, by the `openssl` command. Fixed
//! expected values, computed once with the same Python script, are checked too, so a change
//! that moved both sides at once would still show.
#![allow(clippy::unwrap_used, missing_docs)]

use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::{Algorithm, KeyId, KeyRole, KeyStore, KeyStorePolicy, SecretBytes, SecretSource};
use manager::kdf::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

/// The reference implementation, written from TS-0003 clause 10.3 and TS 33.220 B.2/B.3
/// without looking at the Rust code. Identifiers arrive as hex of their UTF-8 bytes.
const REFERENCE: &str = r#"import hashlib, hmac, sys, unicodedata
def mac(k, m): return hmac.new(k, m, hashlib.sha256).digest()
def text(h): return unicodedata.normalize("NFKC", bytes.fromhex(h).decode("utf-8")).encode("utf-8")
a = sys.argv[1:]
op = a[0]
x = lambda i: bytes.fromhex(a[i])
if op == "split":
    ekm = x(1); print(ekm[16:].hex(), ekm[:16].hex().upper())
elif op == "km":
    print(mac(x(1), b"oneM2M Enrolment Key to Master Credential derivation" + text(a[2])).hex())
elif op == "kpsa":
    print(mac(x(1), b"oneM2M Enrolment Key to Provisioned Secure Connection Key derivation" + text(a[2])).hex())
elif op == "kuc":
    print(mac(x(1), b"oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation" + a[2].encode("ascii") + text(a[3])).hex())
elif op == "e2e-master":
    salt = x(2) if len(a) > 2 and a[2] else bytes(32)
    print(mac(salt, x(1)).hex())
elif op == "e2e":
    t = b""; out = []
    labels = [b"E2E Message Authentication Key", b"E2E Message Confidentiality Key", b"E2E Attribute Authenticity Key", b"E2E Attribute Confidentiality Key"]
    for i, label in enumerate(labels, 1):
        t = mac(x(1), t + label + bytes([i])); out.append(t.hex())
    print(" ".join(out))
elif op == "session":
    print(mac(x(1), x(2) + x(3) + b"oneM2M HMAC-SHA256 sessionESPrimKey derivation algorithm").hex())
elif op == "gba":
    s = b"\x01"
    for p in (a[2].encode("ascii"), x(3), text(a[4]), text(a[5]) + x(6)):
        s += p + len(p).to_bytes(2, "big")
    print(mac(x(1), s).hex())
elif op == "edge":
    s = b"\x01"
    for p in (b"secure-cse GBA edge node key v1", a[2].encode("ascii"), a[3].encode("ascii")):
        s += p + len(p).to_bytes(2, "big")
    print(mac(x(1), s).hex())
else:
    sys.exit("unknown op " + op)
"#;

fn python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(REFERENCE)
        .args(args)
        .output()
        .expect("python3 must be installed (the test vectors are computed by it)");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `openssl mac -digest SHA256 -macopt hexkey:KEY HMAC` over `data` (stdin).
fn openssl_hmac(key: &[u8], data: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["mac", "-digest", "SHA256", "-macopt"])
        .arg(format!("hexkey:{}", hex::encode(key)))
        .arg("HMAC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl must be installed");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .to_ascii_lowercase()
}

/// `openssl kdf ... HKDF` in EXTRACT_ONLY mode: HMAC(salt, ikm).
fn openssl_hkdf_extract(salt: &[u8], ikm: &[u8]) -> String {
    let out = Command::new("openssl")
        .args([
            "kdf",
            "-keylen",
            "32",
            "-kdfopt",
            "digest:SHA256",
            "-kdfopt",
        ])
        .arg(format!("hexkey:{}", hex::encode(ikm)))
        .arg("-kdfopt")
        .arg(format!("hexsalt:{}", hex::encode(salt)))
        .args(["-kdfopt", "mode:EXTRACT_ONLY", "HKDF"])
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .replace(':', "")
        .to_ascii_lowercase()
}

fn h(text: &str) -> String {
    hex::encode(text.as_bytes())
}

fn bytes(range: std::ops::Range<u8>) -> Vec<u8> {
    range.collect()
}

fn fqdn(s: &str) -> Fqdn {
    Fqdn::new(s).unwrap()
}

const MAF_ID: &str = "maf.example.com";
/// Starts with U+FF23 (fullwidth C): NFKC turns it into "C".
const ENROLEE_B_FULLWIDTH: &str = "\u{FF23}AE-sensor-1";
const ENROLEE_B: &str = "CAE-sensor-1";
const TARGET: &str = "cse1.sp.example";
const SALT: &[u8] = b"oneM2M salt";
const IMPI: &str = "user@ims.mnc001.mcc001.3gppnetwork.org";

// Fixed vectors, computed once with the reference script above.
const KE_HEX: &str = "505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f";
const KM_HEX: &str = "aad213145b9709f6a54faa1e779864a950b046fe4372646e8a615b6f25b61307";
const KPSA_HEX: &str = "6a06bcfaeb704689755334071abfcbe36e45e2830e2f3168dc8f35c04e168226";
const KUC_22_HEX: &str = "adfedd7c5ddc57cc63ba879906444fa719bce271b77867582f2904d7e5d60573";
const E2E_MASTER_HEX: &str = "d07a26750808b158414e92c241cb1afe7cda26f94939f560479674de9a17dab6";
const E2E_MASTER_NO_SALT_HEX: &str =
    "f16c81bba2d9df7f08c0e0e2b56f45bd3783f0b0cca9bdccf2a9801dab09444d";
const E2E_HEX: [&str; 4] = [
    "a93a81d75c5339b92cadd8e15f3862dd6d671f87f7e837a3cb66673a5deb4124",
    "ee736dcaf1930330df8d1d175979107073c5be026dd8bcd0dd9dbbfec4ca8d88",
    "566a428b221e00c3c0bd079b271aa6cfbc1c8ebb4ffa86f1b43032a1923b840b",
    "4f89359f897cd1bab85bbdf3b4761cd1344f473ebb54ac26a8b401fdd090b9af",
];
const SESSION_HEX: &str = "5a07a61750da2ff5d175f45e6c2c9aea751f79dc7599235482d39e4cb95e89fa";
const KS_NAF_HEX: &str = "0cdcf1701ff873aaa4032bb5db793f841881c1f8b7f79a167a6ceabf98db9e8c";
const KS_INT_NAF_HEX: &str = "584fb05e22075a75fb01c48a0ded135c5a03015aa9416fee7804f42c0c0b3cec";
/// The edge-node key of "meter-7" behind the gateway whose NAF key is [`KS_NAF_HEX`].
const EDGE_METER_7_HEX: &str = "7ece6e1afafea8ef327c78178ee1e1d1d862ac5d6dfaa1372a5abe44e2ec89e2";
const GATEWAY_BTID: &str = "WlpaWlpaWlpaWlpaWlpaWg==@bsf.secure-cse.example";

fn ke() -> EnrolmentKey {
    let ekm = ExporterOutput::new(ExporterLabel::Bootstrap, &bytes(0x40..0x70)).unwrap();
    enrolment_key(ekm).unwrap().0
}

fn kpsa() -> ProvisionedSecureConnectionKey {
    provisioned_secure_connection_key(&ke(), &EnroleeId::new(ENROLEE_B).unwrap()).unwrap()
}

/// A level-1 key store in a temporary directory.
fn store() -> (tempfile::TempDir, KeyStore, keystore::HomeId) {
    let tmp = tempfile::tempdir().unwrap();
    let home = SoftwareHome::create(&SoftwareConfig {
        dir: tmp.path().join("keys"),
        kek: KekSource::Passphrase(SecretSource::Provided(SecretBytes::from_slice(
            b"kdf vectors",
        ))),
    })
    .unwrap();
    let home = Arc::new(home);
    let id = keystore::KeyHome::id(home.as_ref()).clone();
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home);
    (tmp, store, id)
}

#[test]
fn exporter_split_matches_python() {
    let ekm = bytes(0x40..0x70);
    let reference = python(&["split", &hex::encode(&ekm)]);
    let (key_hex, id_hex) = reference.split_once(' ').unwrap();
    let (ke, rel) =
        enrolment_key(ExporterOutput::new(ExporterLabel::Bootstrap, &ekm).unwrap()).unwrap();
    assert_eq!(hex::encode(ke.expose()), key_hex);
    assert_eq!(hex::encode(ke.expose()), KE_HEX);
    assert_eq!(rel.hex_binary(), id_hex);
    let ke_id = KeId::new(&rel, &fqdn("mef.example.com"));
    assert_eq!(ke_id.to_string(), format!("{id_hex}@mef.example.com"));

    // Kc and pairwiseE2EKey split the same way, under their own labels only.
    let (kc, kc_id) =
        secure_connection_key(ExporterOutput::new(ExporterLabel::Connection, &ekm).unwrap())
            .unwrap();
    assert_eq!(hex::encode(kc.expose()), key_hex);
    assert_eq!(
        MafKeyId::new(&kc_id, &fqdn("maf.example.com")).to_string(),
        format!("{id_hex}@maf.example.com")
    );
    let (e2e, _) =
        pairwise_e2e_key(ExporterOutput::new(ExporterLabel::EsCertKe, &ekm).unwrap()).unwrap();
    assert_eq!(hex::encode(e2e.expose()), key_hex);
    assert!(
        pairwise_e2e_key(ExporterOutput::new(ExporterLabel::Bootstrap, &ekm).unwrap()).is_err()
    );
}

#[test]
fn master_credential_matches_python_and_openssl() {
    let km = master_credential(&ke(), &MafId::new(MAF_ID).unwrap()).unwrap();
    assert_eq!(
        hex::encode(km.expose()),
        python(&["km", KE_HEX, &h(MAF_ID)])
    );
    assert_eq!(hex::encode(km.expose()), KM_HEX);
    let input = master_credential_input(&MafId::new(MAF_ID).unwrap());
    assert_eq!(openssl_hmac(ke().expose(), &input), KM_HEX);
}

#[test]
fn kpsa_matches_python_with_nfkc() {
    let plain = kpsa();
    assert_eq!(
        hex::encode(plain.expose()),
        python(&["kpsa", KE_HEX, &h(ENROLEE_B)])
    );
    assert_eq!(hex::encode(plain.expose()), KPSA_HEX);
    // The fullwidth spelling normalises to the same identifier, on both sides.
    let wide =
        provisioned_secure_connection_key(&ke(), &EnroleeId::new(ENROLEE_B_FULLWIDTH).unwrap())
            .unwrap();
    assert_eq!(
        hex::encode(wide.expose()),
        python(&["kpsa", KE_HEX, &h(ENROLEE_B_FULLWIDTH)])
    );
    assert!(wide.ct_eq(&plain));
}

#[test]
fn usage_constrained_keys_match_python() {
    let target = EnrolmentTargetId::new(TARGET).unwrap();
    for code in 21..=25u8 {
        let key = usage_constrained_key(&ke(), Suid::try_from(code).unwrap(), &target).unwrap();
        assert_eq!(
            hex::encode(key.expose()),
            python(&["kuc", KE_HEX, &code.to_string(), &h(TARGET)]),
            "SUID {code}"
        );
    }
    let key = usage_constrained_key(&ke(), Suid::RSPF_SAEF, &target).unwrap();
    assert_eq!(hex::encode(key.expose()), KUC_22_HEX);
    // Different SUIDs give different keys.
    let other = usage_constrained_key(&ke(), Suid::RSPF_ESPRIM, &target).unwrap();
    assert!(!key.ct_eq(&other));
}

#[test]
fn e2e_master_matches_python_and_openssl() {
    let master = e2e_master_key(Some(SALT), &kpsa());
    assert_eq!(
        hex::encode(master.expose()),
        python(&["e2e-master", KPSA_HEX, &hex::encode(SALT)])
    );
    assert_eq!(
        hex::encode(master.expose()),
        openssl_hkdf_extract(SALT, kpsa().expose())
    );
    assert_eq!(hex::encode(master.expose()), E2E_MASTER_HEX);
    let unsalted = e2e_master_key(None, &kpsa());
    assert_eq!(
        hex::encode(unsalted.expose()),
        python(&["e2e-master", KPSA_HEX, ""])
    );
    assert_eq!(hex::encode(unsalted.expose()), E2E_MASTER_NO_SALT_HEX);
}

#[test]
fn e2e_keys_match_python() {
    let master = e2e_master_key(Some(SALT), &kpsa());
    let keys = e2e_keys(&master).unwrap();
    let got = [
        hex::encode(keys.msg_auth.expose()),
        hex::encode(keys.msg_conf.expose()),
        hex::encode(keys.att_auth.expose()),
        hex::encode(keys.att_conf.expose()),
    ];
    let reference = python(&["e2e", E2E_MASTER_HEX]);
    assert_eq!(got.join(" "), reference);
    assert_eq!(got, E2E_HEX);
}

#[test]
fn session_esprim_key_matches_python() {
    let pairwise = PairwiseEsprimKey::from_slice(&bytes(0x80..0xa0)).unwrap();
    let receiver = [0x11u8; 16];
    let originator = [0x22u8; 16];
    let key = session_esprim_key(&pairwise, &receiver, &originator).unwrap();
    assert_eq!(
        hex::encode(key.expose()),
        python(&[
            "session",
            &hex::encode(bytes(0x80..0xa0)),
            &hex::encode(receiver),
            &hex::encode(originator)
        ])
    );
    assert_eq!(hex::encode(key.expose()), SESSION_HEX);
    // The order of the two rand objects matters.
    let swapped = session_esprim_key(&pairwise, &originator, &receiver).unwrap();
    assert!(!key.ct_eq(&swapped));
}

#[test]
fn gba_naf_keys_match_python() {
    let ks = GbaBootstrapKey::from_slice(&bytes(0xa0..0xc0)).unwrap();
    let rand = GbaRand([0x5a; 16]);
    let impi = Impi::new(IMPI).unwrap();
    let naf = NafId {
        fqdn: fqdn(MAF_ID),
        ua_protocol: UaSecurityProtocolId([1, 0, 0, 0, 0]),
    };
    let reference = |p0: &str| {
        python(&[
            "gba",
            &hex::encode(bytes(0xa0..0xc0)),
            p0,
            &hex::encode(rand.0),
            &h(IMPI),
            &h(MAF_ID),
            "0100000000",
        ])
    };
    let me = gba_naf_key(&ks, GbaNafKeyKind::KsNaf, &rand, &impi, &naf).unwrap();
    let ext = gba_naf_key(&ks, GbaNafKeyKind::KsExtNaf, &rand, &impi, &naf).unwrap();
    let int = gba_naf_key(&ks, GbaNafKeyKind::KsIntNaf, &rand, &impi, &naf).unwrap();
    assert_eq!(hex::encode(me.expose()), reference("gba-me"));
    assert_eq!(hex::encode(me.expose()), KS_NAF_HEX);
    assert!(me.ct_eq(&ext), "Ks_ext_NAF uses the same P0 as Ks_NAF");
    assert_eq!(hex::encode(int.expose()), reference("gba-u"));
    assert_eq!(hex::encode(int.expose()), KS_INT_NAF_HEX);
    // Another Ua protocol gives another key.
    let other = NafId {
        ua_protocol: UaSecurityProtocolId([1, 0, 0, 0, 2]),
        ..naf
    };
    let other = gba_naf_key(&ks, GbaNafKeyKind::KsNaf, &rand, &impi, &other).unwrap();
    assert!(!other.ct_eq(&me));
    // Clause 8.3.2.3: the NAF key is the Km (or Kpsa).
    assert_eq!(
        hex::encode(me.into_master_credential().expose()),
        KS_NAF_HEX
    );
}

#[test]
fn gba_edge_node_keys_match_python() {
    // The gateway's own Ks_NAF, derived as in `gba_naf_keys_match_python`.
    let ks = GbaBootstrapKey::from_slice(&bytes(0xa0..0xc0)).unwrap();
    let naf = NafId {
        fqdn: fqdn(MAF_ID),
        ua_protocol: UaSecurityProtocolId([1, 0, 0, 0, 0]),
    };
    let gateway = gba_naf_key(
        &ks,
        GbaNafKeyKind::KsNaf,
        &GbaRand([0x5a; 16]),
        &Impi::new(IMPI).unwrap(),
        &naf,
    )
    .unwrap();
    assert_eq!(hex::encode(gateway.expose()), KS_NAF_HEX);
    let btid = BootstrapTransactionId::new(GATEWAY_BTID).unwrap();
    for node in ["meter-7", "meter-8", "n", &"x".repeat(EDGE_NODE_NAME_MAX)] {
        let key = gba_edge_node_key(&gateway, &btid, &EdgeNodeName::new(node).unwrap()).unwrap();
        assert_eq!(
            hex::encode(key.expose()),
            python(&["edge", KS_NAF_HEX, node, GATEWAY_BTID]),
            "node {node}"
        );
        let input = gba_edge_node_key_input(&EdgeNodeName::new(node).unwrap(), &btid).unwrap();
        assert_eq!(
            openssl_hmac(gateway.expose(), &input),
            hex::encode(key.expose())
        );
    }
    let meter = EdgeNodeName::new("meter-7").unwrap();
    let key = gba_edge_node_key(&gateway, &btid, &meter).unwrap();
    assert_eq!(hex::encode(key.expose()), EDGE_METER_7_HEX);
    // The identity the node presents, and its key as a Kpsa.
    let identity = EdgeIdentity::new(meter, btid.clone()).unwrap();
    assert_eq!(identity.to_string(), format!("meter-7.{GATEWAY_BTID}"));
    assert_eq!(
        EdgeIdentity::parse(&identity.to_string()).unwrap(),
        identity
    );
    assert_eq!(
        hex::encode(key.into_provisioned_secure_connection_key().expose()),
        EDGE_METER_7_HEX
    );
    // Another gateway (B-TID) gives another key for the same node name.
    let other =
        BootstrapTransactionId::new("AAAAAAAAAAAAAAAAAAAAAA==@bsf.secure-cse.example").unwrap();
    let elsewhere = gba_edge_node_key(&gateway, &other, identity.node()).unwrap();
    assert_ne!(hex::encode(elsewhere.expose()), EDGE_METER_7_HEX);
}

/// The same derivations with the parent key inside a key-store home give the same bytes.
#[test]
fn key_store_variant_matches_software_and_python() {
    let (_tmp, store, home) = store();
    let ke_handle = store
        .import(
            &home,
            &KeyId::new("ke").unwrap(),
            KeyRole::PskMaster,
            Algorithm::HmacSha256,
            ke().into_secret_bytes(),
        )
        .unwrap();
    let ke_home: HomeKey<'_, EnrolmentKey> = HomeKey::new(&store, &ke_handle).unwrap();

    let km = master_credential(&ke_home, &MafId::new(MAF_ID).unwrap()).unwrap();
    assert_eq!(hex::encode(km.expose()), KM_HEX);
    assert_eq!(
        hex::encode(km.expose()),
        python(&["km", KE_HEX, &h(MAF_ID)])
    );
    let kpsa_home =
        provisioned_secure_connection_key(&ke_home, &EnroleeId::new(ENROLEE_B).unwrap()).unwrap();
    assert!(kpsa_home.ct_eq(&kpsa()));
    let kuc = usage_constrained_key(
        &ke_home,
        Suid::RSPF_SAEF,
        &EnrolmentTargetId::new(TARGET).unwrap(),
    )
    .unwrap();
    assert_eq!(hex::encode(kuc.expose()), KUC_22_HEX);

    // Ke2e_master in a home: the expansion runs there.
    let master_handle = store
        .import(
            &home,
            &KeyId::new("e2e-master").unwrap(),
            KeyRole::PskMaster,
            Algorithm::HmacSha256,
            e2e_master_key(Some(SALT), &kpsa()).into_secret_bytes(),
        )
        .unwrap();
    let keys = e2e_keys(&HomeKey::<E2eMasterKey>::new(&store, &master_handle).unwrap()).unwrap();
    assert_eq!(hex::encode(keys.att_conf.expose()), E2E_HEX[3]);
    assert_eq!(
        python(&["e2e", E2E_MASTER_HEX]).split(' ').nth(3).unwrap(),
        E2E_HEX[3]
    );

    // GBA Ks in a home.
    let ks_handle = store
        .import(
            &home,
            &KeyId::new("gba-ks").unwrap(),
            KeyRole::PskMaster,
            Algorithm::HmacSha256,
            SecretBytes::new(bytes(0xa0..0xc0)),
        )
        .unwrap();
    let naf = NafId {
        fqdn: fqdn(MAF_ID),
        ua_protocol: UaSecurityProtocolId([1, 0, 0, 0, 0]),
    };
    let int = gba_naf_key(
        &HomeKey::<GbaBootstrapKey>::new(&store, &ks_handle).unwrap(),
        GbaNafKeyKind::KsIntNaf,
        &GbaRand([0x5a; 16]),
        &Impi::new(IMPI).unwrap(),
        &naf,
    )
    .unwrap();
    assert_eq!(hex::encode(int.expose()), KS_INT_NAF_HEX);
}

#[test]
fn home_key_refuses_non_hmac_keys() {
    let (_tmp, store, home) = store();
    let signing = store
        .generate(
            &home,
            &KeyId::new("audit").unwrap(),
            KeyRole::AuditLog,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    assert!(matches!(
        HomeKey::<EnrolmentKey>::new(&store, &signing),
        Err(KdfError::NotAnHmacKey { .. })
    ));
}
