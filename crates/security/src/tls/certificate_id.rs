//! What names a certificate in its Credential-ID (`3x-<digest>`, TS-0003 clause 10.4): the
//! SHA-256 of its TBSCertificate, the part its issuer signed.
//!
//! NOTE(certificate-identity): the digest is over the signed part only, never over the whole
//! DER. An ECDSA signature is malleable (`(r, s)` and `(r, n - s)` both verify, both are
//! valid DER) and it sits outside the signed part, so anyone holding a certificate can make
//! a byte-different copy that OpenSSL accepts as readily as the original. A digest of the
//! whole DER would give that copy a new Credential-ID, and every withdrawal keyed by the old
//! one would miss it. The TBSCertificate cannot change without breaking the signature, and
//! it holds the issuer, serial, key, validity and names: two certificates with the same
//! digest are the same issued certificate. Issuer and serial alone would merge two
//! certificates a careless external CA gave one serial (a binding for one would apply to the
//! other); the key alone would merge every certificate issued for a reused key. OpenSSL
//! itself refuses a signature that is not DER, so the value is the only malleable part left.
//!
//! Journals written before this digest hold `3x-<SHA-256 of the whole DER>`;
//! [`legacy_digest`] computes that form so that those entries keep matching the exact
//! encoding they were made for (see [`crate::tls`]'s identity checks).

use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a certificate has no Credential-ID digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an X.509 certificate in DER: {0}")]
pub struct NotACertificate(String);

/// The digest of a certificate's Credential-ID: lowercase hex SHA-256 of the DER of its
/// TBSCertificate, the same for every encoding of the signature.
pub fn certificate_digest(der: &[u8]) -> Result<String, NotACertificate> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| NotACertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(NotACertificate("bytes after the certificate".into()));
    }
    Ok(hex::encode(openssl::sha::sha256(
        cert.tbs_certificate.as_ref(),
    )))
}

/// The digest earlier versions used (SHA-256 of the whole DER), still matched against
/// withdrawals and credential entries recorded in that form.
pub fn legacy_digest(der: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(der))
}

/// The digest of a certificate in a PEM or DER file's bytes (the first certificate of a
/// PEM chain), for tools that print Credential-IDs (`m2m cert-id`).
pub fn certificate_digest_of_file(bytes: &[u8]) -> Result<String, NotACertificate> {
    let der = match openssl::x509::X509::from_pem(bytes) {
        Ok(cert) => cert.to_der().map_err(|e| NotACertificate(e.to_string()))?,
        Err(_) => bytes.to_vec(),
    };
    certificate_digest(&der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::ecdsa::EcdsaSig;
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder, X509};

    fn certificate() -> (X509, BigNum) {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "t").expect("cn");
        let name = name.build();
        let mut b = X509Builder::new().expect("builder");
        b.set_version(2).expect("v3");
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        b.set_pubkey(&key).expect("key");
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("t"))
            .expect("nb");
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).expect("t"))
            .expect("na");
        b.sign(&key, MessageDigest::sha256()).expect("sign");
        let mut order = BigNum::new().expect("bn");
        group
            .order(&mut order, &mut BigNumContext::new().expect("ctx"))
            .expect("order");
        (b.build(), order)
    }

    /// The certificate with its signature's `s` replaced by `n - s`: a different, equally
    /// valid encoding of the same certificate.
    fn with_other_s(der: &[u8], sig_der: &[u8], order: &BigNum) -> Vec<u8> {
        let sig = EcdsaSig::from_der(sig_der).expect("ecdsa sig");
        let mut s = BigNum::new().expect("bn");
        s.checked_sub(order, sig.s()).expect("n - s");
        let other = EcdsaSig::from_private_components(sig.r().to_owned().expect("r"), s)
            .expect("sig")
            .to_der()
            .expect("der");
        let at = der
            .windows(sig_der.len())
            .rposition(|w| w == sig_der)
            .expect("signature in the certificate");
        // Outer SEQUENCE and BIT STRING lengths change with the signature: rebuild both.
        let (_, cert) = X509Certificate::from_der(der).expect("parse");
        let tbs = cert.tbs_certificate.as_ref();
        let tbs_at = der.windows(tbs.len()).position(|w| w == tbs).expect("tbs");
        let algorithm = &der[tbs_at + tbs.len()..at - 3];
        let mut bits = vec![0u8];
        bits.extend_from_slice(&other);
        let mut body = tbs.to_vec();
        body.extend_from_slice(algorithm);
        body.extend(der_tlv(0x03, &bits));
        der_tlv(0x30, &body)
    }

    fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn a_re_encoded_signature_keeps_the_digest_and_changes_the_legacy_one() {
        let (cert, order) = certificate();
        let der = cert.to_der().expect("der");
        let copy = with_other_s(&der, cert.signature().as_slice(), &order);
        assert_ne!(copy, der);
        let parsed = X509::from_der(&copy).expect("the copy parses");
        let key = cert.public_key().expect("key");
        assert!(parsed.verify(&key).expect("verify"), "the copy verifies");
        assert_eq!(
            certificate_digest(&copy).expect("copy"),
            certificate_digest(&der).expect("original")
        );
        assert_ne!(legacy_digest(&copy), legacy_digest(&der));
        let pem = cert.to_pem().expect("pem");
        assert_eq!(
            certificate_digest_of_file(&pem).expect("pem"),
            certificate_digest(&der).expect("der")
        );
    }

    #[test]
    fn garbage_has_no_digest() {
        assert!(certificate_digest(b"not a certificate").is_err());
        let (cert, _) = certificate();
        let mut der = cert.to_der().expect("der");
        der.push(0);
        assert!(certificate_digest(&der).is_err(), "trailing bytes");
    }
}
