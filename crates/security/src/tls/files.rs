//! Reading and checking the certificate framework's files at start-up, so that a wrong file
//! stops the CSE with a message naming it instead of failing every handshake later.

use super::error::TlsError;
use super::policy::{CertificateConfig, ServerKey};
use model::clock::Clock;
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::{X509Crl, X509Ref, X509VerifyResult, X509};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The certificate framework's material, checked.
#[derive(Debug)]
pub(crate) struct CertificateMaterial {
    /// The CSE's certificate, then its intermediates.
    pub(crate) chain: Vec<X509>,
    pub(crate) key: PKey<Private>,
    pub(crate) trust_anchors: Vec<X509>,
    /// CRL files that passed the checks, with whether they are PEM.
    pub(crate) crls: Vec<(PathBuf, bool)>,
    /// The CRLs those files hold, for checking resumed sessions.
    pub(crate) crl_list: super::resumption::Crls,
}

/// Reads and checks the material; validity and CRL freshness are judged at `clock`'s time.
pub(crate) fn load(
    config: &CertificateConfig,
    clock: &Clock,
) -> Result<CertificateMaterial, TlsError> {
    let now = asn1_now(clock)?;
    let chain = load_chain(&config.chain, &now)?;
    let key = match &config.key {
        ServerKey::File(path) => load_key(path)?,
        ServerKey::Home(signing) => home_key(signing)?,
    };
    let matches = chain[0]
        .public_key()
        .map(|public| public.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        return Err(TlsError::KeyMismatch {
            certificate: config.chain.clone(),
            key: config.key.describe(),
        });
    }
    if config.trust_anchors.is_empty() {
        return Err(TlsError::InvalidPolicy(
            "the certificate framework needs at least one trust anchor to verify client certificates".into(),
        ));
    }
    let mut trust_anchors = Vec::new();
    let mut anchor_files = Vec::new();
    for path in &config.trust_anchors {
        for cert in read_certificates(path)? {
            check_validity(path, &cert, &now, "trust anchor")?;
            trust_anchors.push(cert);
            anchor_files.push(path.clone());
        }
    }
    let mut crls = Vec::new();
    let mut crl_list = Vec::new();
    let mut covered = vec![false; trust_anchors.len()];
    for path in &config.crls {
        if path.to_str().is_none_or(|p| p.contains('\0')) {
            // OpenSSL's CRL loader takes a C string path.
            return Err(TlsError::crl(path, "the path must be valid UTF-8"));
        }
        let (pem, list) = read_crls(path)?;
        for crl in &list {
            let issuer = trust_anchors.iter().position(|anchor| {
                anchor
                    .subject_name()
                    .try_cmp(crl.issuer_name())
                    .map(|o| o == Ordering::Equal)
                    .unwrap_or(false)
                    && anchor
                        .public_key()
                        .and_then(|k| crl.verify(&k))
                        .unwrap_or(false)
            });
            let Some(issuer) = issuer else {
                return Err(TlsError::crl(
                    path,
                    "not issued (or not signed) by any configured trust anchor",
                ));
            };
            covered[issuer] = true;
            match crl.next_update().map(|next| compare(next, &now)) {
                Some(Ordering::Less) => {
                    return Err(TlsError::crl(
                        path,
                        format!(
                            "expired: its nextUpdate was {}",
                            crl.next_update().map(|t| t.to_string()).unwrap_or_default()
                        ),
                    ));
                }
                _ if compare(crl.last_update(), &now) == Ordering::Greater => {
                    return Err(TlsError::crl(
                        path,
                        format!("not valid before {}", crl.last_update()),
                    ));
                }
                _ => {}
            }
        }
        crls.push((path.clone(), pem));
        crl_list.extend(list);
    }
    if !crls.is_empty() {
        if let Some(i) = covered.iter().position(|c| !c) {
            return Err(TlsError::crl(
                &anchor_files[i],
                format!(
                    "CRL checking is on (crls are configured) but no CRL is given for the trust anchor {}: every client it issued would be refused",
                    subject(&trust_anchors[i])
                ),
            ));
        }
    }
    Ok(CertificateMaterial {
        chain,
        key,
        trust_anchors,
        crls,
        crl_list: super::resumption::Crls(crl_list),
    })
}

/// `clock`'s time as OpenSSL compares it.
pub(crate) fn asn1_now(clock: &Clock) -> Result<Asn1Time, TlsError> {
    let secs = i64::try_from(clock.unix()).unwrap_or(i64::MAX);
    Asn1Time::from_unix(secs).map_err(TlsError::library("the current time"))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<X509>, TlsError> {
    let bytes = read(path)?;
    let certs = X509::stack_from_pem(&bytes)
        .map_err(|_| TlsError::file(path, "is not a PEM certificate file"))?;
    if certs.is_empty() {
        return Err(TlsError::file(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn load_chain(path: &Path, now: &Asn1Time) -> Result<Vec<X509>, TlsError> {
    let chain = read_certificates(path)?;
    for (i, cert) in chain.iter().enumerate() {
        check_validity(
            path,
            cert,
            now,
            if i == 0 {
                "certificate"
            } else {
                "chain certificate"
            },
        )?;
        if let Some(issuer) = chain.get(i + 1) {
            if issuer.issued(cert) != X509VerifyResult::OK {
                return Err(TlsError::file(
                    path,
                    format!("certificate {} did not issue certificate {}: the chain must be in order, leaf first", i + 2, i + 1),
                ));
            }
        }
    }
    let leaf_key = chain[0]
        .public_key()
        .map_err(|_| TlsError::file(path, "the certificate's public key cannot be read"))?;
    if leaf_key.id() != Id::EC {
        return Err(TlsError::file(
            path,
            "the certificate's key is not an ECDSA key: the certificate framework (ECDHE_ECDSA suites, TS-0003 10.1.1.1) needs ECDSA P-256",
        ));
    }
    let curve = leaf_key
        .ec_key()
        .ok()
        .and_then(|ec| ec.group().curve_name());
    if curve != Some(Nid::X9_62_PRIME256V1) {
        tracing::warn!(file = %path.display(), "the server certificate's key is not on P-256 as TS-0003 10.1.1.1 requires; some oneM2M clients will refuse it");
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PKey<Private>, TlsError> {
    check_private(path)?;
    let bytes = Zeroizing::new(read(path)?);
    PKey::private_key_from_pem(&bytes).map_err(|_| {
        TlsError::file(
            path,
            "is not an unencrypted PEM private key (PKCS#8 or SEC1)",
        )
    })
}

/// An OpenSSL key for a key-home key: the public key from the home, signatures by the home
/// (see `openssl_keyhome`).
fn home_key(signing: &keystore::SigningKey) -> Result<PKey<Private>, TlsError> {
    let describe = || ServerKey::Home(signing.clone()).describe();
    let signer = std::sync::Arc::new(HomeSigner {
        key: signing.clone(),
    });
    openssl_keyhome::remote_ec_key(signing.public_key().as_der(), signer).map_err(|e| {
        TlsError::HomeKey {
            key: describe(),
            problem: e.to_string(),
        }
    })
}

thread_local! {
    /// Why the home failed to sign during the handshake running on this thread (OpenSSL calls
    /// the signer on the thread that drives the handshake, and reports only "EVP lib").
    static SIGN_FAILURE: std::cell::Cell<Option<String>> = const { std::cell::Cell::new(None) };
}

/// Takes the reason the key's home failed to sign on this thread, if it did.
pub(crate) fn take_sign_failure() -> Option<String> {
    SIGN_FAILURE.with(std::cell::Cell::take)
}

/// Signs TLS handshakes inside the key's home. A failure is logged and fails that
/// handshake; the listener goes on.
struct HomeSigner {
    key: keystore::SigningKey,
}

impl openssl_keyhome::DigestSigner for HomeSigner {
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, openssl_keyhome::SignRefused> {
        // Only a TPM signature (milliseconds) hands the worker over; see `home_call`.
        let result =
            crate::credentials::home_call(self.key.level(), || self.key.sign_digest(digest));
        match result {
            Ok(signature) => Ok(signature.as_der().to_vec()),
            Err(e) => {
                tracing::error!(
                    key = %self.key.handle().id(),
                    home = %self.key.handle().home(),
                    error = %e,
                    "the TLS server key's home could not sign: handshake refused"
                );
                SIGN_FAILURE.with(|f| f.replace(Some(e.to_string())));
                Err(openssl_keyhome::SignRefused)
            }
        }
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(TlsError::file(
            path,
            "holds a private key but is readable by group or others (chmod 600)",
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), TlsError> {
    Ok(())
}

/// A CRL file's first CRL in DER, the form relying parties download from a CRL
/// distribution point.
pub fn crl_der(path: &Path) -> Result<Vec<u8>, TlsError> {
    let (_, crls) = read_crls(path)?;
    let first = crls
        .first()
        .ok_or_else(|| TlsError::crl(path, "holds no CRL"))?;
    first
        .to_der()
        .map_err(|_| TlsError::crl(path, "cannot be encoded as DER"))
}

/// The CRLs of a file, PEM (one or more) or DER (one), and whether it is PEM.
fn read_crls(path: &Path) -> Result<(bool, Vec<X509Crl>), TlsError> {
    let bytes = read(path)?;
    const BEGIN: &[u8] = b"-----BEGIN X509 CRL-----";
    if bytes.windows(BEGIN.len()).any(|w| w == BEGIN) {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| TlsError::crl(path, "is neither PEM nor DER"))?;
        let mut crls = Vec::new();
        for block in text
            .split_inclusive("-----END X509 CRL-----")
            .filter(|b| b.contains("-----BEGIN X509 CRL-----"))
        {
            crls.push(
                X509Crl::from_pem(block.as_bytes())
                    .map_err(|_| TlsError::crl(path, "holds a PEM CRL that cannot be parsed"))?,
            );
        }
        Ok((true, crls))
    } else {
        let crl = X509Crl::from_der(&bytes)
            .map_err(|_| TlsError::crl(path, "is neither a PEM nor a DER CRL"))?;
        Ok((false, vec![crl]))
    }
}

fn check_validity(path: &Path, cert: &X509Ref, now: &Asn1Time, what: &str) -> Result<(), TlsError> {
    if compare(cert.not_after(), now) == Ordering::Less {
        return Err(TlsError::file(
            path,
            format!(
                "the {what} {} expired on {}",
                subject(cert),
                cert.not_after()
            ),
        ));
    }
    if compare(cert.not_before(), now) == Ordering::Greater {
        return Err(TlsError::file(
            path,
            format!(
                "the {what} {} is not valid before {}",
                subject(cert),
                cert.not_before()
            ),
        ));
    }
    Ok(())
}

fn compare(a: &Asn1TimeRef, b: &Asn1TimeRef) -> Ordering {
    a.compare(b).unwrap_or(Ordering::Equal)
}

/// The subject of a certificate in one line, for messages.
fn subject(cert: &X509Ref) -> String {
    let parts: Vec<String> = cert
        .subject_name()
        .entries()
        .filter_map(|e| {
            Some(format!(
                "{}={}",
                e.object().nid().short_name().ok()?,
                e.data().to_string().ok()?
            ))
        })
        .collect();
    if parts.is_empty() {
        "(empty subject)".into()
    } else {
        format!("'{}'", parts.join(", "))
    }
}
