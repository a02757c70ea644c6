//! The certificate authority: creates or opens its CA certificate, issues AE and CSE
//! certificates from CSRs, keeps their records, revokes, suspends and resumes them, and signs
//! CRLs. Every signature is made by the key store.

use super::config::CaConfig;
use super::crl::{self, Crl};
use super::csr::{self, P256PublicKey};
use super::der;
use super::error::CaError;
use super::files;
use super::identity::{Identity, LocalNames};
use super::records::{from_unix, unix, CertificateRecord, Records, RevocationReason, Status};
use super::serials::Serial;
use super::signer::CaKey;
use keystore::{Algorithm, KeyHandle, KeyRole, KeyStore, Level};
use model::clock::Clock;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyUsagePurpose,
    SerialNumber,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// The CA certificate's file in the CA directory (PEM).
pub const CA_CERTIFICATE_FILE: &str = "ca.pem";
/// The issued-certificate records' file in the CA directory (SQLite).
pub const RECORDS_FILE: &str = "records.sqlite";

/// How long a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From now (whole seconds) for this long.
    For(Duration),
    /// Exactly this window (rounded down to whole seconds), for example back-dated a few
    /// minutes for peers whose clocks run late.
    Window {
        /// notBefore.
        not_before: SystemTime,
        /// notAfter.
        not_after: SystemTime,
    },
}

/// What the subject field of an issued certificate holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectName {
    /// Empty (the default): the identity is only in the subjectAltName, which is then
    /// critical (RFC 5280 clause 4.2.1.6). Nothing the CSR put in its subject is copied, so a
    /// device name or owner does not end up in every TLS handshake the AE makes.
    #[default]
    Anonymous,
    /// CN = the identity (absolute AE-ID or CSE-ID), for tools that show only the subject.
    Identity,
}

/// The caller's decision for one certificate: which identity it certifies, for how long, and
/// what the subject shows. The CSR contributes only the public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The identity authorised (from `LocalNames::ae` or `LocalNames::cse`).
    pub identity: Identity,
    /// notBefore/notAfter.
    pub validity: Validity,
    /// The subject field.
    pub subject: SubjectName,
}

impl Grant {
    /// `identity` for `validity`, with an empty subject.
    pub fn new(identity: Identity, validity: Validity) -> Self {
        Self {
            identity,
            validity,
            subject: SubjectName::Anonymous,
        }
    }
}

/// What happens to the certificate a renewal replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRenewal {
    /// It stays valid until it expires (overlap while the new one is deployed); the records
    /// note that it was superseded.
    KeepUntilExpiry,
    /// It is revoked at once with reason `superseded` and appears on the next CRL.
    Revoke,
}

/// A certificate just issued and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// Its serial number.
    pub serial: Serial,
    /// The identity it certifies.
    pub identity: Identity,
    /// notBefore.
    pub not_before: SystemTime,
    /// notAfter.
    pub not_after: SystemTime,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl IssuedCertificate {
    /// The certificate as PEM.
    pub fn pem(&self) -> String {
        files::pem("CERTIFICATE", &self.der)
    }
}

/// A certificate authority whose key lives in the key store.
pub struct CertificateAuthority {
    dir: PathBuf,
    config: CaConfig,
    key: CaKey,
    /// rcgen's view of the CA certificate, to issue with (see `CaKey::public_only`).
    issuer: rcgen::Certificate,
    certificate: Vec<u8>,
    key_identifier: Vec<u8>,
    not_after: SystemTime,
    permitted_dns: Vec<String>,
    permitted_uri_hosts: Vec<String>,
    records: Records,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("dir", &self.dir)
            .field("key", &self.key.handle.id())
            .field("home", &self.key.handle.home())
            .field("level", &self.key.handle.level())
            .finish_non_exhaustive()
    }
}

/// `clock`'s now, rounded down to whole seconds (certificates carry no fractions).
fn now(clock: &Clock) -> SystemTime {
    from_unix(unix(clock.system_time()))
}

/// Checks the handle and fetches the public key; the key store checks the policy here.
fn ca_key(store: Arc<KeyStore>, handle: KeyHandle) -> Result<CaKey, CaError> {
    if handle.role() != KeyRole::CaSigning {
        return Err(CaError::WrongKeyRole {
            key: handle.id().to_string(),
            role: handle.role(),
        });
    }
    if handle.algorithm() != Algorithm::EcdsaP256Sha256 {
        return Err(CaError::WrongKeyAlgorithm {
            key: handle.id().to_string(),
            algorithm: handle.algorithm(),
        });
    }
    let spki = store.public_key(&handle)?;
    let (_, parsed) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki.as_der())
        .map_err(|e| CaError::Encoding(format!("the key store's public key: {e}")))?;
    let public = csr::p256_point(&parsed).map_err(CaError::UnsupportedKey)?;
    Ok(CaKey {
        store,
        handle,
        public,
    })
}

impl CertificateAuthority {
    /// Creates a CA in `dir` (created if missing): a self-signed CA certificate for `key`
    /// (basicConstraints CA with path length 0, keyUsage keyCertSign and cRLSign, name
    /// constraints from the configuration) in `ca.pem`, and empty records. Refuses a directory
    /// that already holds a CA, a key that is not a `ca-signing` ECDSA P-256 key, and a key
    /// below the key store policy's minimum level for `ca-signing`.
    pub fn create(
        dir: &Path,
        config: CaConfig,
        store: Arc<KeyStore>,
        key: KeyHandle,
    ) -> Result<Self, CaError> {
        config.check()?;
        let key = ca_key(store, key)?;
        let cert_path = dir.join(CA_CERTIFICATE_FILE);
        if cert_path.exists() {
            return Err(CaError::AlreadyExists {
                dir: dir.to_owned(),
            });
        }
        std::fs::create_dir_all(dir).map_err(CaError::io(dir))?;
        let spki = key.store.public_key(&key.handle)?;
        // RFC 7093 method 1 style: the leftmost 160 bits of SHA-256 over the key.
        let key_identifier = openssl::sha::sha256(spki.as_der())[..20].to_vec();
        let not_before = now(&config.clock);
        let not_after = not_before + config.ca_validity;
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from_slice(Serial::random()?.as_bytes()));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, config.common_name.as_str());
        params.distinguished_name = dn;
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier.clone());
        params.custom_extensions = vec![der::name_constraints(
            &config.permitted_dns,
            &config.permitted_uri_hosts,
        )];
        let issuer = key.with_signer(|kp| params.self_signed(kp))?;
        let certificate = issuer.der().to_vec();
        let records = Records::open(&dir.join(RECORDS_FILE))?;
        // Written last: its presence marks a complete CA.
        files::create_new(
            &cert_path,
            files::pem("CERTIFICATE", &certificate).as_bytes(),
        )
        .map_err(|e| match e {
            CaError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                CaError::AlreadyExists {
                    dir: dir.to_owned(),
                }
            }
            other => other,
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            permitted_dns: config.permitted_dns.clone(),
            permitted_uri_hosts: config.permitted_uri_hosts.clone(),
            config,
            key,
            issuer,
            certificate,
            key_identifier,
            not_after,
            records,
        })
    }

    /// Opens the CA in `dir` with its key: the CA certificate must be a CA certificate for
    /// exactly this key and still valid. Its name constraints (not the configuration's) bound
    /// what it issues. Costs no signature.
    pub fn open(
        dir: &Path,
        config: CaConfig,
        store: Arc<KeyStore>,
        key: KeyHandle,
    ) -> Result<Self, CaError> {
        config.check()?;
        let key = ca_key(store, key)?;
        let path = dir.join(CA_CERTIFICATE_FILE);
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CaError::NotFound {
                    dir: dir.to_owned(),
                })
            }
            Err(e) => return Err(CaError::io(&path)(e)),
        };
        let invalid = |reason: String| CaError::InvalidCaCertificate {
            path: path.clone(),
            reason,
        };
        let (_, block) = x509_parser::pem::parse_x509_pem(&pem)
            .map_err(|e| invalid(format!("not a PEM certificate: {e}")))?;
        let certificate = block.contents.clone();
        let loaded = LoadedCa::read(&certificate).map_err(invalid)?;
        if loaded.public != key.public {
            return Err(CaError::KeyMismatch {
                path,
                key: key.handle.id().to_string(),
            });
        }
        if loaded.not_after <= config.clock.system_time() {
            return Err(invalid("it has expired".into()));
        }
        let pem_text =
            std::str::from_utf8(&pem).map_err(|_| invalid("not a PEM certificate".into()))?;
        let params = CertificateParams::from_ca_cert_pem(pem_text)
            .map_err(|e| invalid(format!("rcgen cannot read it: {e}")))?;
        let issuer = params
            .self_signed(&key.public_only()?)
            .map_err(|e| CaError::Encoding(e.to_string()))?;
        let records = Records::open(&dir.join(RECORDS_FILE))?;
        Ok(Self {
            dir: dir.to_owned(),
            config,
            key,
            issuer,
            certificate,
            key_identifier: loaded.key_identifier,
            not_after: loaded.not_after,
            permitted_dns: loaded.permitted_dns,
            permitted_uri_hosts: loaded.permitted_uri_hosts,
            records,
        })
    }

    /// [`CertificateAuthority::open`] when `dir` holds a CA, else
    /// [`CertificateAuthority::create`].
    pub fn open_or_create(
        dir: &Path,
        config: CaConfig,
        store: Arc<KeyStore>,
        key: KeyHandle,
    ) -> Result<Self, CaError> {
        if dir.join(CA_CERTIFICATE_FILE).exists() {
            Self::open(dir, config, store, key)
        } else {
            Self::create(dir, config, store, key)
        }
    }

    /// The CA certificate (DER): the trust anchor relying parties configure.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }

    /// The CA certificate as PEM (as in `ca.pem`).
    pub fn certificate_pem(&self) -> String {
        files::pem("CERTIFICATE", &self.certificate)
    }

    /// The security level of the CA key's home, for records and reports.
    pub fn key_level(&self) -> Level {
        self.key.handle.level()
    }

    /// The names identities are certified relative to: build grants with
    /// `ca.names().ae("Cxyz")` or `ca.names().cse("id-mn")`.
    pub fn names(&self) -> &LocalNames {
        &self.config.names
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Issues a certificate for `grant.identity` to the key in `csr` (PKCS#10, PEM or DER).
    ///
    /// The CSR's self-signature must verify and its key must be ECDSA P-256. If its
    /// subjectAltName names anything other than the authorised identity, the request is
    /// refused with [`CaError::IdentityMismatch`]; nothing else from the CSR is used. The
    /// certificate is recorded (durably) before this returns.
    pub fn issue(&self, csr: &[u8], grant: &Grant) -> Result<IssuedCertificate, CaError> {
        self.issue_recorded(csr, grant, None)
    }

    /// Renews the certificate `old`: a new certificate (new serial) for the same identity, to
    /// the key in `csr` (a new key, or the same one), with the same subject choice. `old`
    /// must be active and not renewed before; it is marked superseded and, with
    /// [`AfterRenewal::Revoke`], revoked with reason `superseded` in the same transaction.
    pub fn renew(
        &self,
        old: &Serial,
        csr: &[u8],
        validity: Validity,
        after: AfterRenewal,
    ) -> Result<IssuedCertificate, CaError> {
        let (grant, _) = self.renewal_grant(old, validity)?;
        let csr = csr::read(csr)?;
        self.issue_verified(csr, &grant, Some((old, after == AfterRenewal::Revoke)))
    }

    /// Renews `old` like [`renew`](Self::renew), to the public key `old` certifies (no CSR:
    /// the holder keeps its key).
    pub fn renew_same_key(
        &self,
        old: &Serial,
        validity: Validity,
        after: AfterRenewal,
    ) -> Result<IssuedCertificate, CaError> {
        let (grant, der) = self.renewal_grant(old, validity)?;
        let public_key = match X509Certificate::from_der(&der) {
            Ok((_, cert)) => csr::p256_point(cert.public_key()).map_err(CaError::UnsupportedKey)?,
            Err(e) => {
                return Err(CaError::InvalidCsr(format!(
                    "the recorded certificate {old} cannot be read: {e}"
                )))
            }
        };
        let key = csr::VerifiedCsr {
            public_key,
            names: Vec::new(),
        };
        self.issue_verified(key, &grant, Some((old, after == AfterRenewal::Revoke)))
    }

    /// The grant that renews `old` (active, not renewed before), and its recorded DER.
    fn renewal_grant(&self, old: &Serial, validity: Validity) -> Result<(Grant, Vec<u8>), CaError> {
        let record = self.records.get(old)?;
        if record.status != Status::Active {
            return Err(CaError::InvalidTransition {
                serial: old.to_string(),
                status: record.status.name(),
                operation: "renew",
            });
        }
        if record.superseded_by.is_some() {
            return Err(CaError::InvalidTransition {
                serial: old.to_string(),
                status: "superseded",
                operation: "renew",
            });
        }
        let subject = match X509Certificate::from_der(&record.der) {
            Ok((_, cert)) if cert.subject().iter_attributes().next().is_some() => {
                SubjectName::Identity
            }
            _ => SubjectName::Anonymous,
        };
        let grant = Grant {
            identity: record.identity,
            validity,
            subject,
        };
        Ok((grant, record.der))
    }

    fn issue_recorded(
        &self,
        csr: &[u8],
        grant: &Grant,
        supersedes: Option<(&Serial, bool)>,
    ) -> Result<IssuedCertificate, CaError> {
        self.issue_verified(csr::read(csr)?, grant, supersedes)
    }

    fn issue_verified(
        &self,
        csr: csr::VerifiedCsr,
        grant: &Grant,
        supersedes: Option<(&Serial, bool)>,
    ) -> Result<IssuedCertificate, CaError> {
        let names = &self.config.names;
        if let Some(other) = csr.names.iter().find(|n| !names.states(n, &grant.identity)) {
            return Err(CaError::IdentityMismatch {
                authorised: grant.identity.to_string(),
                requested: other.to_string(),
            });
        }
        let san = names.san(&grant.identity, self.config.ae_uri_scheme.as_deref());
        if !der::permitted(&san, &self.permitted_dns, &self.permitted_uri_hosts) {
            return Err(CaError::OutsideNameConstraints {
                name: san.to_string(),
                constraints: format!(
                    "DNS {:?}, URI hosts {:?}",
                    self.permitted_dns, self.permitted_uri_hosts
                ),
            });
        }
        let (not_before, not_after) = self.window(grant.validity)?;
        let serial = self.fresh_serial()?;
        let params = self.leaf_params(grant, &serial, not_before, not_after, san);
        let certificate = self
            .key
            .with_signer(|kp| params.signed_by(&csr.public_key, &self.issuer, kp))?;
        let record = CertificateRecord {
            serial: serial.clone(),
            identity: grant.identity.clone(),
            not_before,
            not_after,
            issued_at: now(&self.config.clock),
            status: Status::Active,
            superseded_by: None,
            der: certificate.der().to_vec(),
        };
        self.records.insert(&record, supersedes)?;
        Ok(IssuedCertificate {
            serial,
            identity: record.identity,
            not_before,
            not_after,
            der: record.der,
        })
    }

    fn leaf_params(
        &self,
        grant: &Grant,
        serial: &Serial,
        not_before: SystemTime,
        not_after: SystemTime,
        san: super::identity::SanName,
    ) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
        let mut dn = DistinguishedName::new();
        if grant.subject == SubjectName::Identity {
            dn.push(DnType::CommonName, grant.identity.as_str());
        }
        params.distinguished_name = dn;
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match grant.identity {
            Identity::Ae(_) => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Identity::Cse(_) => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        if !self.config.crl_distribution_points.is_empty() {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: self.config.crl_distribution_points.clone(),
            }];
        }
        params.custom_extensions = vec![der::subject_alt_name(
            &[san],
            grant.subject == SubjectName::Anonymous,
        )];
        params
    }

    /// notBefore/notAfter of a grant, checked: not empty and not beyond the CA certificate.
    fn window(&self, validity: Validity) -> Result<(SystemTime, SystemTime), CaError> {
        let (not_before, not_after) = match validity {
            Validity::For(duration) => {
                let start = now(&self.config.clock);
                (start, start + duration)
            }
            Validity::Window {
                not_before,
                not_after,
            } => (from_unix(unix(not_before)), from_unix(unix(not_after))),
        };
        if not_after <= not_before {
            return Err(CaError::InvalidValidity(
                "notAfter must be at least one second after notBefore".into(),
            ));
        }
        if not_after > self.not_after {
            return Err(CaError::InvalidValidity(
                "the certificate would outlive the CA certificate".into(),
            ));
        }
        Ok((not_before, not_after))
    }

    fn fresh_serial(&self) -> Result<Serial, CaError> {
        // 126 random bits collide with negligible probability; the check makes it certain.
        for _ in 0..4 {
            let serial = Serial::random()?;
            if !self.records.contains(&serial)? {
                return Ok(serial);
            }
        }
        Err(CaError::Encoding(
            "the random generator repeats serial numbers".into(),
        ))
    }

    /// Revokes a certificate (active or suspended) for good; it appears on every later CRL.
    pub fn revoke(
        &self,
        serial: &Serial,
        reason: RevocationReason,
    ) -> Result<CertificateRecord, CaError> {
        self.records.set_status(
            serial,
            |status| match status {
                Status::Revoked { .. } => Err(CaError::InvalidTransition {
                    serial: serial.to_string(),
                    status: status.name(),
                    operation: "revoke",
                }),
                _ => Ok(()),
            },
            Status::Revoked {
                reason,
                at: now(&self.config.clock),
            },
        )
    }

    /// Suspends an active certificate: the next CRLs list it with reason `certificateHold`
    /// until it is resumed or revoked.
    pub fn suspend(&self, serial: &Serial) -> Result<CertificateRecord, CaError> {
        self.records.set_status(
            serial,
            |status| match status {
                Status::Active => Ok(()),
                _ => Err(CaError::InvalidTransition {
                    serial: serial.to_string(),
                    status: status.name(),
                    operation: "suspend",
                }),
            },
            Status::Suspended {
                since: now(&self.config.clock),
            },
        )
    }

    /// Ends a suspension: the certificate is active again and simply left off the next CRL
    /// (the effect of `removeFromCRL` in a full CRL, RFC 5280 clause 5.3.1).
    pub fn resume(&self, serial: &Serial) -> Result<CertificateRecord, CaError> {
        self.records.set_status(
            serial,
            |status| match status {
                Status::Suspended { .. } => Ok(()),
                _ => Err(CaError::InvalidTransition {
                    serial: serial.to_string(),
                    status: status.name(),
                    operation: "resume",
                }),
            },
            Status::Active,
        )
    }

    /// Every certificate issued, oldest first.
    pub fn list(&self) -> Result<Vec<CertificateRecord>, CaError> {
        self.records.list()
    }

    /// The certificates issued for one identity, oldest first.
    pub fn list_for(&self, identity: &Identity) -> Result<Vec<CertificateRecord>, CaError> {
        self.records.for_identity(identity)
    }

    /// One certificate's record.
    pub fn show(&self, serial: &Serial) -> Result<CertificateRecord, CaError> {
        self.records.get(serial)
    }

    /// Signs a new CRL: every suspended and revoked certificate, thisUpdate now, nextUpdate
    /// after the configured CRL validity, the next CRL number. Write it where the TLS
    /// listeners and `/.well-known/crl/<name>` read it ([`Crl::write_der`]).
    pub fn crl(&self) -> Result<Crl, CaError> {
        let this_update = now(&self.config.clock);
        let next_update = this_update + self.config.crl_validity;
        self.records.with_next_crl_number(|number, withdrawn| {
            let revoked_certs: Vec<_> = withdrawn.iter().filter_map(crl::entry).collect();
            let entries = revoked_certs.len();
            let params = CertificateRevocationListParams {
                this_update: this_update.into(),
                next_update: next_update.into(),
                crl_number: SerialNumber::from(number),
                issuing_distribution_point: None,
                revoked_certs,
                key_identifier_method: KeyIdMethod::PreSpecified(self.key_identifier.clone()),
            };
            let signed = self
                .key
                .with_signer(|kp| params.signed_by(&self.issuer, kp))?;
            Ok(Crl {
                der: signed.der().to_vec(),
                number,
                this_update,
                next_update,
                entries,
            })
        })
    }
}

/// What `open` needs from an existing CA certificate.
struct LoadedCa {
    public: P256PublicKey,
    key_identifier: Vec<u8>,
    not_after: SystemTime,
    permitted_dns: Vec<String>,
    permitted_uri_hosts: Vec<String>,
}

impl LoadedCa {
    fn read(der: &[u8]) -> Result<Self, String> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err("it is not a CA certificate (basicConstraints CA is not set)".into());
        }
        let public = csr::p256_point(cert.public_key())?;
        let mut key_identifier = None;
        let mut permitted_dns = Vec::new();
        let mut permitted_uri_hosts = Vec::new();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(ski) => key_identifier = Some(ski.0.to_vec()),
                ParsedExtension::NameConstraints(nc) => {
                    for subtree in nc.permitted_subtrees.iter().flatten() {
                        match subtree.base {
                            GeneralName::DNSName(d) => permitted_dns.push(d.to_owned()),
                            GeneralName::URI(u) => permitted_uri_hosts.push(u.to_owned()),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let key_identifier =
            key_identifier.ok_or("it has no subjectKeyIdentifier to name it in certificates")?;
        let not_after = from_unix(cert.validity().not_after.timestamp());
        Ok(Self {
            public,
            key_identifier,
            not_after,
            permitted_dns,
            permitted_uri_hosts,
        })
    }
}
