//! The acceptor of a MEF's device enrolment listener: the certificate-based RSPF of TS-0003
//! clause 8.3.2.2. The enrolee authenticates with a device (manufacturer) certificate that
//! chains to one of the configured manufacturer CAs; the association it gets serves one
//! certificate enrolment request and nothing else.

use super::error::TlsError;
use super::policy::{LocalIdentity, TlsPolicy};
use super::TlsAcceptor;
use crate::association::{BootstrapExporter, BOOTSTRAP_EXPORTER_LABEL, BOOTSTRAP_EXPORTER_LEN};
use crate::association::{CredentialBinding, Established, Framework, PeerIdentity};
use crate::credentials::{CredentialStore, PskCredential};
use openssl::ssl::SslRef;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The credential store of a device enrolment listener: every device certificate that
/// chained to a manufacturer CA is known, bound to no AE (the MEF decides which identity it
/// may be certified for). No PSK.
#[derive(Debug, Default, Clone, Copy)]
pub struct AnyDeviceCertificate;

impl CredentialStore for AnyDeviceCertificate {
    fn psk(&self, _identity: &str) -> Option<PskCredential> {
        None
    }

    fn certificate_binding(&self, _credential_id: &str) -> Option<CredentialBinding> {
        Some(CredentialBinding {
            identity: PeerIdentity::AllowedAes(Vec::new()),
            admin: false,
            allowed_apps: Vec::new(),
            level: None,
        })
    }
}

impl TlsAcceptor {
    /// Builds the acceptor of a MEF device enrolment listener (certificate-based RSPF, TS-0003
    /// clause 8.3.2.2): mutual TLS where the client certificate must chain to one of
    /// `policy.certificate`'s trust anchors (the manufacturer CAs). Every association has the
    /// device certificate's Credential-ID (`31-<digest>`, or `32-`/`33-` when it names an
    /// identity) and carries the `EXPORTER-oneM2M-Bootstrap` output, which makes it an
    /// enrolment association (one request, no oneM2M request). Certificate only; no session
    /// resumption. `devices` is usually [`AnyDeviceCertificate`], maybe behind withdrawals.
    pub fn device_enrolment(
        policy: &TlsPolicy,
        devices: Arc<dyn CredentialStore>,
        local_names: LocalIdentity,
    ) -> Result<Self, TlsError> {
        if policy.certificate.is_none() || policy.psk {
            return Err(TlsError::InvalidPolicy(
                "a device enrolment listener uses the certificate framework only".into(),
            ));
        }
        let policy = TlsPolicy {
            session_resumption: false,
            ..policy.clone()
        };
        let mut acceptor = Self::new(&policy, devices, local_names)?;
        match Arc::get_mut(&mut acceptor.inner) {
            Some(inner) => inner.device_enrolment = true,
            None => {
                return Err(TlsError::InvalidPolicy(
                    "the enrolment acceptor is already shared".into(),
                ))
            }
        }
        Ok(acceptor)
    }
}

/// Turns the association of a finished handshake on a device enrolment listener into an
/// enrolment association: a full certificate handshake only, with the bootstrap exporter.
pub(crate) fn establish(ssl: &SslRef, mut established: Established) -> Result<Established, String> {
    if established.framework != Framework::Certificate || established.resumed {
        return Err("a device enrolment needs a full handshake with a device certificate".into());
    }
    let mut ekm = Zeroizing::new([0u8; BOOTSTRAP_EXPORTER_LEN]);
    ssl.export_keying_material(&mut ekm[..], BOOTSTRAP_EXPORTER_LABEL, None)
        .map_err(|e| format!("the TLS exporter failed: {e}"))?;
    established.bootstrap = Some(BootstrapExporter::new(ekm));
    Ok(established)
}
