//! Property tests of the key derivations beside the fixed vectors of `kdf_vectors.rs`: for
//! random keys and identifiers, every derivation equals its TS-0003 clause 10.3 formula
//! computed here with OpenSSL's HMAC (an implementation independent of the RustCrypto one
//! the code uses), is deterministic, is 32 bytes, and separates domains (another label,
//! another identifier or another parent key gives another key). Identifiers that are equal
//! under NFKC derive equal keys, and the scoped key identifiers round-trip through text.
#![allow(clippy::unwrap_used, missing_docs)]

use manager::kdf::*;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use proptest::prelude::*;

/// HMAC-SHA-256 by OpenSSL: the reference.
fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = PKey::hmac(key).unwrap();
    let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
    s.update(data).unwrap();
    s.sign_to_vec().unwrap()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn key32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

/// Identifiers of printable ASCII (NFKC leaves them as they are).
fn ident() -> impl Strategy<Value = String> {
    "[!-~][ -~]{0,40}"
}

fn fqdn() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9][a-z0-9-]{0,8}", 1..4).prop_map(|l| l.join("."))
}

/// The same text with some ASCII letters in their fullwidth forms (U+FF21..), which NFKC
/// maps back.
fn fullwidth(s: &str, mask: &[bool]) -> String {
    s.chars()
        .zip(mask.iter().cycle())
        .map(|(c, &wide)| {
            if wide && c.is_ascii_alphanumeric() {
                char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap()
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Clause 10.3.1: identifier = the 16 most significant bytes, key = the 32 least; the
    /// exporter output must be 48 bytes and come from the right label.
    #[test]
    fn exporter_outputs_split_into_id_and_key(bytes in prop::collection::vec(any::<u8>(), 48), wrong in 0usize..100) {
        let (ke, id) = enrolment_key(ExporterOutput::new(ExporterLabel::Bootstrap, &bytes).unwrap()).unwrap();
        prop_assert_eq!(&ke.expose()[..], &bytes[16..]);
        prop_assert_eq!(&id.as_bytes()[..], &bytes[..16]);
        let (kc, kc_id) = secure_connection_key(ExporterOutput::new(ExporterLabel::Connection, &bytes).unwrap()).unwrap();
        prop_assert_eq!(&kc.expose()[..], &bytes[16..]);
        prop_assert_eq!(&kc_id.as_bytes()[..], &bytes[..16]);
        let (pk, pk_id) = pairwise_e2e_key(ExporterOutput::new(ExporterLabel::EsCertKe, &bytes).unwrap()).unwrap();
        prop_assert_eq!(&pk.expose()[..], &bytes[16..]);
        prop_assert_eq!(&pk_id.as_bytes()[..], &bytes[..16]);
        // Another label's output is refused.
        prop_assert!(enrolment_key(ExporterOutput::new(ExporterLabel::Connection, &bytes).unwrap()).is_err());
        prop_assert!(secure_connection_key(ExporterOutput::new(ExporterLabel::EsCertKe, &bytes).unwrap()).is_err());
        prop_assert!(pairwise_e2e_key(ExporterOutput::new(ExporterLabel::Bootstrap, &bytes).unwrap()).is_err());
        // Any other length is refused.
        if wrong != 48 {
            prop_assert!(ExporterOutput::new(ExporterLabel::Bootstrap, &vec![0u8; wrong]).is_err());
        }
    }

    /// Clauses 10.3.2, 10.3.3, 10.3.7: Km, Kpsa and the usage-constrained key are the HMAC of
    /// their label and identifier under Ke; deterministic; apart from each other.
    #[test]
    fn derivations_from_ke_follow_the_formulas(ke in key32(), other in key32(), a in ident(), b in ident(), suid in 21u8..=25) {
        let k = EnrolmentKey::from_bytes(ke);
        let maf = MafId::new(&a).unwrap();
        let enrolee = EnroleeId::new(&a).unwrap();
        let target = EnrolmentTargetId::new(&a).unwrap();
        let suid = serde_json::from_value::<Suid>(serde_json::json!(suid)).unwrap();

        let km = master_credential(&k, &maf).unwrap();
        let kpsa = provisioned_secure_connection_key(&k, &enrolee).unwrap();
        let kuc = usage_constrained_key(&k, suid, &target).unwrap();
        prop_assert_eq!(km.expose().to_vec(), hmac(&ke, &cat(&[LABEL_KM.as_bytes(), a.as_bytes()])));
        prop_assert_eq!(kpsa.expose().to_vec(), hmac(&ke, &cat(&[LABEL_KPSA.as_bytes(), a.as_bytes()])));
        let digits = suid.code().to_string();
        prop_assert_eq!(
            kuc.expose().to_vec(),
            hmac(&ke, &cat(&[LABEL_USAGE_CONSTRAINED.as_bytes(), digits.as_bytes(), a.as_bytes()]))
        );
        // Deterministic.
        prop_assert!(km.ct_eq(&master_credential(&k, &maf).unwrap()));
        // Domain separation: the same Ke and identifier give three different keys.
        prop_assert_ne!(km.expose(), kpsa.expose());
        prop_assert_ne!(km.expose(), kuc.expose());
        prop_assert_ne!(kpsa.expose(), kuc.expose());
        // Another identifier, or another Ke, gives another key.
        if a != b {
            prop_assert!(!km.ct_eq(&master_credential(&k, &MafId::new(&b).unwrap()).unwrap()));
            prop_assert!(!kpsa.ct_eq(&provisioned_secure_connection_key(&k, &EnroleeId::new(&b).unwrap()).unwrap()));
        }
        if ke != other {
            prop_assert!(!km.ct_eq(&master_credential(&EnrolmentKey::from_bytes(other), &maf).unwrap()));
        }
        // SUIDs outside 21-25 are not derivable.
        for code in Suid::DEFINED.iter().filter(|c| !(21..=25).contains(*c)) {
            let s = serde_json::from_value::<Suid>(serde_json::json!(code)).unwrap();
            prop_assert!(usage_constrained_key(&k, s, &target).is_err());
        }
    }

    /// Identifiers equal under NFKC derive the same key (clause 10.3: UTF-8 in NFKC).
    #[test]
    fn nfkc_equal_identifiers_derive_equal_keys(ke in key32(), a in "[a-zA-Z0-9]{1,20}", mask in prop::collection::vec(any::<bool>(), 1..8)) {
        let k = EnrolmentKey::from_bytes(ke);
        let wide = fullwidth(&a, &mask);
        let narrow = master_credential(&k, &MafId::new(&a).unwrap()).unwrap();
        let widened = master_credential(&k, &MafId::new(&wide).unwrap()).unwrap();
        prop_assert!(narrow.ct_eq(&widened), "{} vs {}", a, wide);
    }

    /// Clause 10.3.6: Ke2e_master = HMAC(salt or 32 zero bytes, Kpsa); T(i) = HMAC(master,
    /// T(i-1) || label_i || i); the four keys differ.
    #[test]
    fn end_to_end_keys_follow_the_formulas(kpsa in key32(), salt in prop::option::of(prop::collection::vec(any::<u8>(), 1..48))) {
        let k = ProvisionedSecureConnectionKey::from_bytes(kpsa);
        let master = e2e_master_key(salt.as_deref(), &k);
        let salt_bytes = salt.clone().unwrap_or_else(|| vec![0u8; 32]);
        let m = hmac(&salt_bytes, &kpsa);
        prop_assert_eq!(master.expose().to_vec(), m.clone());
        let keys = e2e_keys(&master).unwrap();
        let mut t: Vec<u8> = Vec::new();
        let got = [&keys.msg_auth, &keys.msg_conf, &keys.att_auth, &keys.att_conf];
        for (i, label) in LABELS_E2E.iter().enumerate() {
            t = hmac(&m, &cat(&[&t, label.as_bytes(), &[i as u8 + 1]]));
            prop_assert_eq!(got[i].expose().to_vec(), t.clone(), "T({})", i + 1);
        }
        for i in 0..4 {
            for j in i + 1..4 {
                prop_assert_ne!(got[i].expose(), got[j].expose());
            }
        }
    }

    /// Clause 10.3.8.2: sessionESPrimKey = HMAC(pairwise, receiver || originator || label);
    /// swapping the two rand objects gives another key.
    #[test]
    fn session_esprim_key_follows_the_formula(p in key32(), r in prop::collection::vec(any::<u8>(), 1..40), o in prop::collection::vec(any::<u8>(), 1..40)) {
        let pairwise = PairwiseEsprimKey::from_bytes(p);
        let s = session_esprim_key(&pairwise, &r, &o).unwrap();
        prop_assert_eq!(s.expose().to_vec(), hmac(&p, &cat(&[&r, &o, LABEL_SESSION_ESPRIM.as_bytes()])));
        if cat(&[&r, &o]) != cat(&[&o, &r]) {
            let swapped = session_esprim_key(&pairwise, &o, &r).unwrap();
            prop_assert_ne!(s.expose(), swapped.expose());
        }
    }

    /// Clauses 10.3.4, 10.3.5: KeID and the MAF key identifier are hexBinary(id) `@` FQDN,
    /// and parse back to the same value (hex in either case).
    #[test]
    fn key_identifiers_round_trip(id in any::<[u8; 16]>(), host in fqdn()) {
        let fqdn = Fqdn::new(&host).unwrap();
        let rel = ExportedKeyId::from_bytes(id);
        let ke_id = KeId::new(&rel, &fqdn);
        let text = ke_id.to_string();
        prop_assert_eq!(&text, &format!("{}@{}", hex::encode_upper(id), host));
        prop_assert_eq!(KeId::parse(&text).unwrap(), ke_id.clone());
        let lower = KeId::parse(&text.to_lowercase()).unwrap();
        prop_assert_eq!(lower.relative(), &rel);
        let maf_id = MafKeyId::new(&rel, &fqdn);
        prop_assert_eq!(MafKeyId::parse(&maf_id.to_string()).unwrap(), maf_id);
    }
}
