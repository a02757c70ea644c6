//! Who is on the other end of a request and how that was proven. Every request carries one;
//! the originator check and access control read it, and nothing else decides identity.

use security::association::{Level, Registration, SecurityAssociation};
use std::net::SocketAddr;
use std::sync::Arc;

/// The security context of one request, built by the binding that received it.
#[derive(Debug, Clone)]
pub struct SecurityContext {
    /// Name of the listener the request arrived on (as configured, e.g. `http`).
    pub listener: String,
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
            peer,
            association: Association::None(NoAssociation::Plaintext),
        }
    }

    /// The context of a request over an established security association.
    pub fn established(registration: Arc<Registration>) -> Self {
        let sa = &registration.association;
        Self {
            listener: sa.listener.clone(),
            peer: Some(sa.peer),
            association: Association::Established(registration),
        }
    }

    /// The context of the CSE acting on its own behalf.
    pub fn internal() -> Self {
        Self {
            listener: "internal".to_owned(),
            peer: None,
            association: Association::Internal,
        }
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
        SecurityContext::established(Arc::new(registry.open("https", peer, established)))
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
