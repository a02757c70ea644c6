//! Who is on the other end of a request and how that was proven. Every request carries one;
//! the originator check and access control read it, and nothing else decides identity.

use std::net::SocketAddr;

/// The security context of one request, built by the binding that received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityContext {
    /// Name of the listener the request arrived on (as configured, e.g. `http`).
    pub listener: String,
    /// The peer's transport address, when there is one.
    pub peer: Option<SocketAddr>,
    /// The security association the request travelled over, or why there is none.
    pub association: Association,
}

/// The security association behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Association {
    /// No security association: the originator is only what it claims, so the strict
    /// rules of TS-0004 clause 7.3.2.1 for unauthenticated requests apply.
    None(NoAssociation),
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

    /// The context of the CSE acting on its own behalf.
    pub fn internal() -> Self {
        Self {
            listener: "internal".to_owned(),
            peer: None,
            association: Association::Internal,
        }
    }

    /// Whether the originator was authenticated by a security association (`rq_authn`).
    pub fn authenticated(&self) -> bool {
        matches!(self.association, Association::Internal)
    }
}
