//! Certificate-based enrolment at the MEF (TS-0003 clause 8.3.2.2, certificate provisioning):
//! a device holding a manufacturer (device) certificate buys a service-layer AE-ID certificate
//! from the CSE's certificate authority.
//!
//! 1. **MEF handshake.** The device opens mutual TLS to the device enrolment listener with its
//!    device certificate, which must chain to a configured manufacturer CA
//!    (`security::tls::TlsAcceptor::device_enrolment`). The association carries the
//!    `EXPORTER-oneM2M-Bootstrap` output, usable by one request.
//! 2. **Authorisation.** The device certificate's Credential-ID digest (`3x-<digest>`, the
//!    SHA-256 of what its issuer signed) is looked up in the [`DevicePolicy`]: a configured AE-ID, or a fresh
//!    random `C` AE-ID when any device certificate is accepted.
//! 3. **Issue.** `POST /.mef/certificate` with a PKCS#10 CSR (PEM or DER) as the body. The CA
//!    certifies the authorised AE-ID to the CSR's key; a CSR naming another identity is
//!    refused. `certificate-issued` and `enrolled` are written durably to the audit log, then
//!    the answer (2001) carries the certificate (PEM), its serial and the AE-ID:
//!
//! ```text
//! {"m2m:certRsp": {"aeId": "Cdev1", "serial": "4A0B...", "notAfter": "2030-01-01T00:00:00Z",
//!                  "certificate": "-----BEGIN CERTIFICATE-----\n..."}}
//! ```
//!
//! | refusal | status |
//! |---|---|
//! | not over a device enrolment association | 4107 |
//! | a second request on the same association | 4005 |
//! | a device certificate the policy does not authorise | 4103 |
//! | a CSR naming another identity than the authorised one | 4103 |
//! | an unreadable or forged CSR, a key that is not P-256 | 4000 |
//!
//! Nothing is issued unless every check passed; a certificate whose audit record cannot be
//! written is revoked at once and not handed out.

use crate::security_manager::audit::AuditTrail;
use crate::SecurityContext;
use manager::audit::Event;
use manager::ca::{CaError, CertificateAuthority, Grant, RevocationReason, Validity};
use manager::kdf::{self, ExporterLabel, ExporterOutput, Fqdn, KeId};
use model::{Error, ResponseStatusCode, Result};
use security::enrolment::{rfc3339, unix};
use serde_json::json;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The path of the certificate enrolment request.
pub const CERTIFICATE_PATH: &str = "/.mef/certificate";

/// The listener name of the device enrolment listener.
pub const DEVICE_ENROLMENT_LISTENER: &str = "device-enrolment";

/// Which device certificates may get which AE-ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevicePolicy {
    /// Device certificates by their Credential-ID digest (SHA-256 of the TBSCertificate,
    /// lowercase hex, as `m2m credentials id` prints it), and the AE-ID each may be
    /// certified for. A digest of what the issuer signed, not of the whole DER, so a copy
    /// with a re-encoded signature is the same device, withdrawn or authorised alike.
    pub devices: Vec<(String, String)>,
    /// Any other device certificate of a manufacturer CA gets a fresh random `C` AE-ID.
    pub any_device: bool,
}

impl DevicePolicy {
    /// Normalises a configured digest (`m2m credentials id` prints it; a `31-` prefix, colons
    /// and any case are accepted) into lowercase hex; `None` when it is not 32 bytes of hex.
    pub fn fingerprint(text: &str) -> Option<String> {
        let hex: String = text
            .trim()
            .trim_start_matches("31-")
            .trim_start_matches("sha256 Fingerprint=")
            .trim_start_matches("SHA256 Fingerprint=")
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
    }

    /// The AE-ID the device certificate with this fingerprint may get, if any.
    fn authorise(&self, fingerprint: &str) -> Option<String> {
        if let Some((_, ae)) = self.devices.iter().find(|(f, _)| f == fingerprint) {
            return Some(ae.clone());
        }
        self.any_device
            .then(|| format!("C{:016x}", rand::random::<u64>()))
    }
}

/// The certificate-based side of the MEF: the CA, the policy and the certificates' lifetime.
pub struct DeviceMef {
    ca: Arc<CertificateAuthority>,
    policy: DevicePolicy,
    validity: Duration,
    fqdn: Fqdn,
}

impl fmt::Debug for DeviceMef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceMef")
            .field("ca", &self.ca.dir())
            .field("devices", &self.policy.devices.len())
            .field("any_device", &self.policy.any_device)
            .field("validity", &self.validity)
            .finish()
    }
}

impl DeviceMef {
    /// A MEF issuing certificates from `ca`, valid `validity`, for what `policy` authorises.
    /// `fqdn` (the CSE's public domain name) names the KeID of each enrolment. Every AE-ID
    /// of the policy is checked now.
    pub fn new(
        ca: Arc<CertificateAuthority>,
        policy: DevicePolicy,
        validity: Duration,
        fqdn: &str,
    ) -> std::result::Result<Self, String> {
        if validity.is_zero() {
            return Err("the validity of enrolled certificates must not be zero".into());
        }
        for (fingerprint, ae) in &policy.devices {
            ca.names()
                .ae(ae)
                .map_err(|e| format!("device {fingerprint}: {e}"))?;
        }
        let fqdn = Fqdn::new(fqdn).map_err(|e| e.to_string())?;
        Ok(Self {
            ca,
            policy,
            validity,
            fqdn,
        })
    }

    /// Runs one certificate enrolment (see the module documentation): the content of the
    /// 2001 answer, or the refusal.
    pub async fn enrol(
        &self,
        ctx: &SecurityContext,
        audit: Option<&AuditTrail>,
        csr: &[u8],
    ) -> Result<serde_json::Value> {
        let sa = ctx
            .security_association()
            .filter(|_| {
                ctx.role == crate::ListenerRole::DeviceEnrolment
                    && ctx.admit(crate::Service::Enrolment).is_ok()
            })
            .ok_or_else(|| {
                Error::security_association_required(
                    "certificate enrolment needs a device enrolment association (mutual TLS with a device certificate, on the device enrolment listener)",
                )
            })?;
        let bootstrap = sa
            .established
            .bootstrap
            .as_ref()
            .ok_or_else(|| Error::internal("enrolment association without an exporter"))?;
        let ekm = bootstrap.take().ok_or_else(|| {
            Error::operation_not_allowed(
                "this association already made its enrolment request (one per MEF handshake)",
            )
        })?;
        let device = sa.established.credential_id.clone();
        let fingerprint = device.get(3..).unwrap_or_default().to_owned();
        let ae_id = self.policy.authorise(&fingerprint).ok_or_else(|| {
            Error::new(
                ResponseStatusCode::OriginatorHasNoPrivilege,
                "this device certificate is not authorised for a service-layer certificate",
            )
        })?;
        let identity = self
            .ca
            .names()
            .ae(&ae_id)
            .map_err(|e| Error::internal(format!("the authorised AE-ID: {e}")))?;
        let internal = |e: kdf::KdfError| Error::internal(format!("key derivation: {e}"));
        let ekm = ExporterOutput::new(ExporterLabel::Bootstrap, &ekm[..]).map_err(internal)?;
        let (_ke, relative) = kdf::enrolment_key(ekm).map_err(internal)?;
        let ke_id = KeId::new(&relative, &self.fqdn).to_string();

        let (ca, csr, grant) = (
            self.ca.clone(),
            csr.to_vec(),
            Grant::new(identity, Validity::For(self.validity)),
        );
        let issued = tokio::task::spawn_blocking(move || ca.issue(&csr, &grant))
            .await
            .map_err(|e| Error::internal(format!("issuing the certificate: {e}")))?
            .map_err(refusal)?;
        let serial = issued.serial.to_string();
        let not_after = rfc3339(unix(issued.not_after));
        let recorded = async {
            if let Some(audit) = audit {
                audit
                    .record_durably(Event::CertificateIssued {
                        subject: issued.identity.as_str().to_owned(),
                        serial: serial.clone(),
                        not_after: not_after.clone(),
                    })
                    .await?;
                audit
                    .record_durably(Event::Enrolled {
                        enrolee: device.clone(),
                        ke_id: ke_id.clone(),
                    })
                    .await?;
            }
            Ok::<(), Error>(())
        };
        if let Err(e) = recorded.await {
            tracing::error!(error = %e, serial, "the issued certificate could not be audited: revoked");
            let (ca, s) = (self.ca.clone(), issued.serial.clone());
            let _ =
                tokio::task::spawn_blocking(move || ca.revoke(&s, RevocationReason::Unspecified))
                    .await;
            return Err(Error::internal("the enrolment could not be recorded"));
        }
        tracing::info!(
            enrolee = %security::privacy::credential_tag(&device),
            serial,
            "enrolment: issued a service-layer certificate"
        );
        Ok(json!({"m2m:certRsp": {
            "aeId": ae_id,
            "serial": serial,
            "notAfter": not_after,
            "certificate": issued.pem(),
        }}))
    }
}

/// The CA's refusal as a response status.
fn refusal(e: CaError) -> Error {
    match e {
        CaError::IdentityMismatch { .. } => {
            Error::new(ResponseStatusCode::OriginatorHasNoPrivilege, e.to_string())
        }
        CaError::InvalidCsr(_) | CaError::CsrSignature | CaError::UnsupportedKey(_) => {
            Error::bad_request(e.to_string())
        }
        other => Error::internal(format!("the certificate authority: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_and_the_policy() {
        let hex = "ab".repeat(32);
        let colons = format!("sha256 Fingerprint={}", vec!["AB"; 32].join(":"));
        assert_eq!(DevicePolicy::fingerprint(&colons), Some(hex.clone()));
        assert_eq!(DevicePolicy::fingerprint(&hex), Some(hex.clone()));
        assert_eq!(
            DevicePolicy::fingerprint(&format!("31-{hex}")),
            Some(hex.clone())
        );
        assert_eq!(DevicePolicy::fingerprint("AB:CD"), None);
        assert_eq!(DevicePolicy::fingerprint(&"zz".repeat(32)), None);

        let listed = DevicePolicy {
            devices: vec![(hex.clone(), "Cdev".into())],
            any_device: false,
        };
        assert_eq!(listed.authorise(&hex), Some("Cdev".to_owned()));
        assert_eq!(listed.authorise(&"cd".repeat(32)), None);
        let any = DevicePolicy {
            any_device: true,
            ..listed
        };
        let (a, b) = (any.authorise("x"), any.authorise("x"));
        assert!(a
            .as_deref()
            .is_some_and(|a| a.starts_with('C') && a.len() == 17));
        assert_ne!(a, b, "a fresh AE-ID each time");
    }
}
