//! Reading a PKCS#10 certificate signing request (TS-0003 clause 10.1.4): the CA checks its
//! self-signature (proof that the requester holds the private key) and takes from it only the
//! public key and, to compare with the identity the caller authorised, the names its
//! subjectAltName asks for. The subject, the other requested extensions and any attributes
//! are ignored: what goes into the certificate is the CA's decision.

use super::error::CaError;
use super::identity::SanName;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ECDSA_WITH_SHA256,
    OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Longest CSR accepted (a P-256 CSR is a few hundred bytes).
const MAX_CSR: usize = 64 * 1024;

/// An ECDSA P-256 public key as the uncompressed point `04 || X || Y`: what rcgen writes into
/// a certificate's subjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct P256PublicKey(Vec<u8>);

impl rcgen::PublicKeyData for P256PublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl P256PublicKey {
    /// The point.
    pub(super) fn point(&self) -> &[u8] {
        &self.0
    }
}

/// A CSR whose self-signature verified.
#[derive(Debug)]
pub(super) struct VerifiedCsr {
    pub(super) public_key: P256PublicKey,
    /// The subjectAltName entries it asks for.
    pub(super) names: Vec<SanName>,
}

/// Reads a PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER CSR and verifies
/// its self-signature.
pub(super) fn read(input: &[u8]) -> Result<VerifiedCsr, CaError> {
    if input.len() > MAX_CSR {
        return Err(CaError::InvalidCsr(format!(
            "it is longer than {MAX_CSR} bytes"
        )));
    }
    let pem;
    let der = if input.trim_ascii_start().starts_with(b"-----BEGIN") {
        pem = x509_parser::pem::parse_x509_pem(input.trim_ascii_start())
            .map_err(|e| CaError::InvalidCsr(format!("bad PEM: {e}")))?
            .1;
        if !matches!(
            pem.label.as_str(),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"
        ) {
            return Err(CaError::InvalidCsr(format!(
                "the PEM block is a {:?}, not a CERTIFICATE REQUEST",
                pem.label
            )));
        }
        pem.contents.as_slice()
    } else {
        input
    };
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| CaError::InvalidCsr(format!("not a PKCS#10 request: {e}")))?;
    if !rest.is_empty() {
        return Err(CaError::InvalidCsr(
            "trailing bytes after the request".into(),
        ));
    }
    if csr.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA256 {
        return Err(CaError::UnsupportedKey(format!(
            "it is signed with {}, not ecdsa-with-SHA256",
            csr.signature_algorithm.algorithm
        )));
    }
    let public_key =
        p256_point(&csr.certification_request_info.subject_pki).map_err(CaError::UnsupportedKey)?;
    csr.verify_signature().map_err(|_| CaError::CsrSignature)?;
    Ok(VerifiedCsr {
        public_key,
        names: requested_names(&csr)?,
    })
}

/// The uncompressed P-256 point of a SubjectPublicKeyInfo, or why it is not one.
pub(super) fn p256_point(spki: &SubjectPublicKeyInfo<'_>) -> Result<P256PublicKey, String> {
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return Err(format!(
            "the key is of type {}, not an EC key",
            spki.algorithm.algorithm
        ));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    if curve.as_ref() != Some(&OID_EC_P256) {
        return Err("the EC key is not on P-256 (prime256v1)".into());
    }
    let point = spki.subject_public_key.data.as_ref();
    if point.len() != 65 || point[0] != 0x04 {
        return Err("the P-256 point is not in uncompressed form".into());
    }
    Ok(P256PublicKey(point.to_vec()))
}

/// The subjectAltName entries of the request's extensionRequest attribute.
fn requested_names(csr: &X509CertificationRequest<'_>) -> Result<Vec<SanName>, CaError> {
    let mut names = Vec::new();
    for attribute in csr.certification_request_info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() else {
            continue;
        };
        for ext in &request.extensions {
            if ext.oid != OID_X509_EXT_SUBJECT_ALT_NAME {
                continue;
            }
            let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() else {
                return Err(CaError::InvalidCsr(
                    "its subjectAltName cannot be parsed".into(),
                ));
            };
            for name in &san.general_names {
                names.push(match name {
                    GeneralName::URI(u) => SanName::Uri((*u).to_owned()),
                    GeneralName::DNSName(d) => SanName::Dns((*d).to_owned()),
                    other => SanName::Other(other.to_string()),
                });
            }
        }
    }
    Ok(names)
}
