//! Who is on the other end of a request and how that was proven. Every request carries one;
//! the originator check and access control read it, and nothing else decides identity.

use model::{Error, Result};
use security::association::{Level, Registration, SecurityAssociation};
use std::net::SocketAddr;
use std::sync::Arc;

/// The security context of one request, built by the binding that received it.
#[derive(Debug, Clone)]
pub struct SecurityContext {
    /// Name of the listener the request arrived on (as configured, e.g. `http`).
    pub listener: String,
    /// What that listener is for: which services its requests may reach ([`Self::admit`]).
    pub role: ListenerRole,
    /// The peer's transport address, when there is one.
    pub peer: Option<SocketAddr>,
    /// The security association the request travelled over, or why there is none.
    pub association: Association,
}

/// The security association behind a request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Association {
    /// No security association: the originator is only what it claims, so the strict
    /// rules of TS-0004 clause 7.3.2.1 for unauthenticated requests apply.
    None(NoAssociation),
    /// A TLS session whose credential is bound to an identity (TS-0003 clause 8.2.1). The
    /// registration keeps the association listed for as long as its connection lives.
    Established(Arc<Registration>),
    /// A request the CSE makes to itself (expiry, internal housekeeping).
    Internal,
}

/// What a listener is for. An association grants only what its listener and the trust
/// anchors behind it are for: a manufacturer's CA vouches for devices that want to enrol,
/// never for AEs or the admin, so whatever a certificate on a device enrolment listener
/// names, it reaches the enrolment request and nothing else. The role is fixed by whoever
/// builds the listener and checked here, in the CSE, so every binding gets the same rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerRole {
    /// The Mca reference point (plaintext or TLS): oneM2M requests, the admin interface,
    /// AE-ID rotation, the key functions (MAF, fetchCredentials).
    Mca,
    /// The MEF's enrolment listener (TLS-PSK with enrolee keys, TS-0003 clause 8.3.2.1):
    /// the enrolment request only.
    MefEnrolment,
    /// The device enrolment listener (certificates from manufacturer CAs, TS-0003 clause
    /// 8.3.2.2): the certificate enrolment request only.
    DeviceEnrolment,
}

/// What a request asks the CSE for, as far as listener roles are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// A oneM2M request primitive on the resource tree.
    Resources,
    /// An administration request (`/.admin/...`).
    Admin,
    /// An AE asking for a fresh AE-ID (`/.privacy/rotate-ae-id`).
    Rotation,
    /// The key functions: the MAF (`/.maf/...`) and fetchCredentials.
    KeyFunctions,
    /// An enrolment request to the MEF (`/.mef/enrol`), either framework.
    Enrolment,
}

impl ListenerRole {
    /// Whether requests on a listener of this role may reach `service`.
    pub fn serves(self, service: Service) -> bool {
        match self {
            Self::Mca => service != Service::Enrolment,
            Self::MefEnrolment | Self::DeviceEnrolment => service == Service::Enrolment,
        }
    }

    /// Whether the listener's associations are enrolment associations.
    fn enrols(self) -> bool {
        self != Self::Mca
    }

    /// A short name for logs and refusals.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mca => "Mca",
            Self::MefEnrolment => "MEF enrolment",
            Self::DeviceEnrolment => "device enrolment",
        }
    }
}

/// Why a request has no security association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAssociation {
    /// Plain HTTP on a listener the operator allows without TLS (loopback or declared trusted).
    Plaintext,
}

impl SecurityContext {
    /// The context of a plaintext request on `listener` from `peer`.
    pub fn plaintext(listener: impl Into<String>, peer: Option<SocketAddr>) -> Self {
        Self {
            listener: listener.into(),
            role: ListenerRole::Mca,
            peer,
            association: Association::None(NoAssociation::Plaintext),
        }
    }

    /// The context of a request over an established security association, on a listener
    /// of `role`.
    pub fn established(role: ListenerRole, registration: Arc<Registration>) -> Self {
        let sa = &registration.association;
        Self {
            listener: sa.listener.clone(),
            role,
            peer: Some(sa.peer),
            association: Association::Established(registration),
        }
    }

    /// The context of the CSE acting on its own behalf.
    pub fn internal() -> Self {
        Self {
            listener: "internal".to_owned(),
            role: ListenerRole::Mca,
            peer: None,
            association: Association::Internal,
        }
    }

    /// Refuses (4005) a request for a service its listener is not for, or over an
    /// association that does not match its listener's role (an enrolment association on an
    /// Mca listener, or the reverse), which would mean a listener was built wrong.
    pub fn admit(&self, service: Service) -> Result<()> {
        let enrolment = self
            .security_association()
            .is_some_and(|sa| sa.established.is_enrolment());
        if matches!(self.association, Association::Internal)
            || (self.role.serves(service) && enrolment == self.role.enrols())
        {
            return Ok(());
        }
        Err(Error::operation_not_allowed(format!(
            "listener '{}' is a {} listener: it does not serve {}",
            self.listener,
            self.role.name(),
            match service {
                Service::Resources => "oneM2M requests",
                Service::Admin => "administration requests",
                Service::Rotation => "AE-ID rotation",
                Service::KeyFunctions => "the key functions",
                Service::Enrolment => "enrolment requests",
            }
        )))
    }

    /// The association itself, shared, for whoever must outlive this context (the connection
    /// that ends when the association is withdrawn).
    pub fn shared_association(&self) -> Option<Arc<SecurityAssociation>> {
        match &self.association {
            Association::Established(r) => Some(r.association.clone()),
            _ => None,
        }
    }

    /// The association, when the request travelled over one.
    pub fn security_association(&self) -> Option<&SecurityAssociation> {
        match &self.association {
            Association::Established(r) => Some(&r.association),
            _ => None,
        }
    }

    /// The security level (1 software, 2 TPM, 3 HSM) of the home that holds the key of the
    /// credential the request's association was established with, as the credential store
    /// records it. `None` without an association, for the CSE's own requests, and for
    /// credentials whose level nothing records (a certificate naming its AE-ID or CSE-ID
    /// without a credential entry). Access decisions may require a minimum level; our
    /// extension of TS-0003, which defines the levels but not this field.
    pub fn credential_level(&self) -> Option<Level> {
        self.security_association()
            .and_then(|sa| sa.established.credential_level())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use security::association::{
        CredentialBinding, Established, Framework, PeerIdentity, Registry,
    };

    fn over(level: Option<Level>) -> SecurityContext {
        let registry = Arc::new(Registry::default());
        let established = Established {
            framework: Framework::Psk,
            credential_id: "12-a@sp.example".into(),
            binding: CredentialBinding {
                identity: PeerIdentity::Ae("Ca".into()),
                admin: false,
                allowed_apps: Vec::new(),
                level,
            },
            protocol: "TLSv1.3".into(),
            cipher: "TLS_AES_128_GCM_SHA256".into(),
            server_name: None,
            resumed: false,
            bootstrap: None,
        };
        let peer = SocketAddr::from(([127, 0, 0, 1], 5000));
        SecurityContext::established(
            ListenerRole::Mca,
            Arc::new(registry.open("https", peer, established)),
        )
    }

    #[test]
    fn the_credential_level_travels_with_the_request() {
        assert_eq!(over(Some(Level::Hsm)).credential_level(), Some(Level::Hsm));
        assert_eq!(over(None).credential_level(), None);
        assert_eq!(
            SecurityContext::plaintext("http", None).credential_level(),
            None
        );
        assert_eq!(SecurityContext::internal().credential_level(), None);
    }
}
